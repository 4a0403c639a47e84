/// What a stream's display matrix asks of a player.
struct DisplayOrientation: Equatable, Sendable {
    /// Clockwise quarter turns (0…3).
    var quarterTurns: Int
    /// Shown mirrored left to right, after the turn.
    var mirrored: Bool
    /// Exactly one of the eight upright orientations (a copy may carry it, rewritten). False for
    /// other angles, skew, scaling or a singular matrix: only a transcode shows those right.
    var exact: Bool
}

/// What turns a decoded frame into what a viewer should see: the display matrix's rotation and,
/// for HDR, tone mapping to SDR BT.709. Both need libavfilter (swscale can do neither).
struct DisplayTransform: Equatable {
    var orientation: DisplayOrientation
    /// The HDR transfer to tone-map from (zscale's name), or nil for SDR.
    var hdrTransfer: String?
    var fullRange: Bool

    init(video: VideoInfo) {
        orientation = DisplayOrientation(
            quarterTurns: video.rotation / 90, mirrored: video.mirrored, exact: video.orientationExact)
        hdrTransfer = video.hdr ? video.colorTransfer : nil
        fullRange = video.colorRange == "pc"
    }

    /// The filter chain, or nil when frames are shown as decoded.
    var filterDescription: String? {
        let filters = filters
        return filters.isEmpty ? nil : filters.joined(separator: ",")
    }

    /// The chain for an encode: this transform, then scaling to `width`×`height` in BT.709
    /// limited-range 4:2:0 (what every player assumes). Untagged sources are read as players read
    /// them: BT.709 from 720 lines up, BT.601 below.
    func encodingFilter(width: Int, height: Int, sourceHeight: Int, sourceMatrix: String?) -> String {
        var chain = filters
        let inputMatrix =
            hdrTransfer != nil
            ? "bt709" : sourceMatrix.flatMap(Self.scaleMatrixName) ?? (sourceHeight >= 720 ? "bt709" : "bt601")
        chain.append(
            "scale=\(width):\(height):in_color_matrix=\(inputMatrix):out_color_matrix=bt709:out_range=tv")
        // Square pixels: the size above is already the display size.
        chain.append("format=yuv420p,setsar=1")
        return chain.joined(separator: ",")
    }

    /// The `scale` filter's name for a stream's colour matrix, when it has one.
    private static func scaleMatrixName(_ space: String) -> String? {
        switch space {
        case "bt709": "bt709"
        case "smpte170m", "bt470bg": "bt601"
        case "bt2020nc", "bt2020c": "bt2020"
        case "smpte240m": "smpte240m"
        case "fcc": "fcc"
        default: nil
        }
    }

    private var filters: [String] {
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
        switch orientation.quarterTurns {
        case 1: filters.append("transpose=clock")
        case 2: filters += ["hflip", "vflip"]
        case 3: filters.append("transpose=cclock")
        default: break
        }
        if orientation.mirrored { filters.append("hflip") }
        return filters
    }

    /// Applies the transform to one frame (a new graph each call: for stills, not for streams).
    func apply(to frame: Frame, timeBase: Rational, threads: Int) throws(FFmpegError) -> Frame {
        guard let description = filterDescription else { return frame }
        let graph = try FilterGraph(
            description: description, input: frame.shape, timeBase: timeBase, threads: threads)
        try graph.push(frame)
        try graph.push(nil)
        let output = try Frame()
        guard try graph.pull(into: output) == .ready else {
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
