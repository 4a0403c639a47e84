/// What turns a decoded frame into what a viewer should see: the display matrix's rotation and,
/// for HDR, tone mapping to SDR BT.709. Both need libavfilter (swscale can do neither).
struct DisplayTransform: Equatable {
    /// Clockwise quarter turns (0…3).
    var quarterTurns: Int
    /// The HDR transfer to tone-map from (zscale's name), or nil for SDR.
    var hdrTransfer: String?
    var fullRange: Bool

    init(video: VideoInfo) {
        quarterTurns = video.rotation / 90
        hdrTransfer = video.hdr ? video.colorTransfer : nil
        fullRange = video.colorRange == "pc"
    }

    /// The filter chain, or nil when frames are shown as decoded.
    var filterDescription: String? {
        var filters: [String] = []
        if let hdrTransfer {
            // Linearise (100 nits = SDR white), map BT.2020 to BT.709 primaries, compress only the
            // highlights with Möbius' curve (mid-tones and saturation stay as graded; Hable's
            // curve left the fixtures' white at 60 %), then re-encode as BT.709 SDR.
            filters += [
                "zscale=tin=\(hdrTransfer):pin=bt2020:min=2020_ncl:rin=\(fullRange ? "full" : "limited")"
                    + ":t=linear:npl=100",
                "format=gbrpf32le",
                "zscale=p=bt709",
                "tonemap=tonemap=mobius:desat=0",
                "zscale=t=bt709:m=bt709:r=limited",
                "format=yuv420p",
            ]
        }
        switch quarterTurns {
        case 1: filters.append("transpose=clock")
        case 2: filters += ["hflip", "vflip"]
        case 3: filters.append("transpose=cclock")
        default: break
        }
        return filters.isEmpty ? nil : filters.joined(separator: ",")
    }

    /// Applies the transform to one frame (a new graph each call: for stills, not for streams).
    func apply(to frame: Frame, timeBase: Rational, threads: Int) throws(FFmpegError) -> Frame {
        guard let description = filterDescription else { return frame }
        let graph = try FilterGraph(description: description, input: frame, timeBase: timeBase, threads: threads)
        try graph.push(frame)
        try graph.push(nil)
        let output = try Frame()
        guard try graph.pull(into: output) == .frame else {
            throw FFmpegError(call: "av_buffersink_get_frame(\(description))", code: cffmpegEndOfFile)
        }
        return output
    }
}

/// Fits `width`×`height` inside a square of `maxSide`, keeping the aspect ratio, never upscaling.
func fit(width: Int, height: Int, maxSide: Int) -> (width: Int, height: Int) {
    let longest = max(width, height)
    guard longest > maxSide else { return (width, height) }
    let scale = Double(maxSide) / Double(longest)
    return (max(1, Int((Double(width) * scale).rounded())), max(1, Int((Double(height) * scale).rounded())))
}
