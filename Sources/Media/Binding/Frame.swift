import CFFmpeg

/// Owns one `AVFrame`. Decoders and filters fill it; `reset()` drops its buffers for reuse.
final class Frame {
    let pointer: UnsafeMutablePointer<AVFrame>

    init() throws(FFmpegError) {
        pointer = try allocated("av_frame_alloc", av_frame_alloc())
    }

    /// A frame with its own zeroed picture buffers of the given size and format.
    convenience init(width: Int, height: Int, format: AVPixelFormat) throws(FFmpegError) {
        try self.init()
        pointer.pointee.width = Int32(width)
        pointer.pointee.height = Int32(height)
        pointer.pointee.format = format.rawValue
        try check("av_frame_get_buffer") { av_frame_get_buffer(pointer, 0) }
    }

    /// An RGB24 frame holding `bitmap`'s pixels (which must be RGB).
    convenience init(bitmap: Bitmap) throws(FFmpegError) {
        precondition(bitmap.channels == 3, "not an RGB bitmap")
        try self.init(width: bitmap.width, height: bitmap.height, format: AV_PIX_FMT_RGB24)
        let stride = Int(pointer.pointee.linesize.0)
        let rowBytes = bitmap.width * 3
        bitmap.bytes.withUnsafeBytes { source in
            for row in 0..<bitmap.height {
                (pointer.pointee.data.0! + row * stride).update(
                    from: source.baseAddress!.assumingMemoryBound(to: UInt8.self) + row * rowBytes, count: rowBytes)
            }
        }
    }

    deinit {
        var frame: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&frame)
    }

    var width: Int { Int(pointer.pointee.width) }
    var height: Int { Int(pointer.pointee.height) }
    var pixelFormat: AVPixelFormat { AVPixelFormat(rawValue: pointer.pointee.format) }
    var colorSpace: AVColorSpace { pointer.pointee.colorspace }
    var colorRange: AVColorRange { pointer.pointee.color_range }

    /// The best timestamp FFmpeg could work out for the frame, in its stream's time base.
    var timestamp: Int64? {
        let value = pointer.pointee.best_effort_timestamp
        return value == noTimestamp ? nil : value
    }

    /// Gives a frame that came without one a timestamp (presentation and best effort).
    func stamp(_ timestamp: Int64) {
        pointer.pointee.pts = timestamp
        pointer.pointee.best_effort_timestamp = timestamp
    }

    /// The presentation timestamp the next filter or encoder sees (nil: none).
    var presentationTimestamp: Int64? {
        get { pointer.pointee.pts == noTimestamp ? nil : pointer.pointee.pts }
        set { pointer.pointee.pts = newValue ?? noTimestamp }
    }

    /// How long the frame is shown, in its stream's time base, as the source said (nil: unknown).
    var duration: Int64? { pointer.pointee.pkt_duration > 0 ? pointer.pointee.pkt_duration : nil }

    /// Lets the encoder choose the picture type and duration, whatever the decoder said (a damaged
    /// index can claim a frame lasts for years, which the muxer then refuses).
    func clearDecoderHints() {
        pointer.pointee.pict_type = AV_PICTURE_TYPE_NONE
        pointer.pointee.pkt_duration = 0
    }

    /// Samples per channel, for audio frames.
    var sampleCount: Int { Int(pointer.pointee.nb_samples) }

    /// Channels of an audio frame.
    var channelCount: Int { Int(pointer.pointee.ch_layout.nb_channels) }

    /// How long an audio frame plays, in seconds (0 when its rate is unknown).
    var sampleDuration: Double {
        pointer.pointee.sample_rate > 0 ? Double(pointer.pointee.nb_samples) / Double(pointer.pointee.sample_rate) : 0
    }

    /// The samples of a planar float audio frame (what `AudioResampler` gives), one buffer per
    /// channel, for `body`; empty for any other format.
    func withFloatPlanes<R>(_ body: ([UnsafeMutableBufferPointer<Float>]) throws -> R) rethrows -> R {
        let raw = pointer.pointee
        guard raw.format == AV_SAMPLE_FMT_FLTP.rawValue, let data = raw.extended_data else { return try body([]) }
        let planes = (0..<channelCount).compactMap { channel in
            data[channel].map { plane in
                UnsafeMutableBufferPointer(
                    start: UnsafeMutableRawPointer(plane).assumingMemoryBound(to: Float.self), count: sampleCount)
            }
        }
        return try withExtendedLifetime(self) { try body(planes) }
    }

    /// Drops the frame's buffers so it can be filled again.
    func reset() { av_frame_unref(pointer) }

    /// Makes this frame a new reference to `other`'s buffers (no pixel copy).
    func reference(_ other: Frame) throws(FFmpegError) {
        av_frame_unref(pointer)
        try check("av_frame_ref") { av_frame_ref(pointer, other.pointer) }
    }

    /// Whether `other` holds the same picture: size, format and every byte of every row (a frame a
    /// decoder repeats: VP9's "show the previous frame", an all-skip H.264 picture). Stops at the
    /// first difference, which real video reaches within a few rows.
    func hasSamePicture(as other: Frame) -> Bool {
        let (a, b) = (pointer.pointee, other.pointer.pointee)
        guard a.width == b.width, a.height == b.height, a.format == b.format, a.format >= 0,
            let descriptor = av_pix_fmt_desc_get(AVPixelFormat(rawValue: a.format)),
            descriptor.pointee.flags & UInt64(AV_PIX_FMT_FLAG_HWACCEL) == 0
        else { return false }
        let format = AVPixelFormat(rawValue: a.format)
        let planes = Int(av_pix_fmt_count_planes(format))
        let chromaShift = Int32(descriptor.pointee.log2_chroma_h)
        for plane in 0..<max(0, planes) {
            let rows = plane == 1 || plane == 2 ? Int(-((-a.height) >> chromaShift)) : Int(a.height)
            let rowBytes = Int(av_image_get_linesize(format, a.width, Int32(plane)))
            guard rowBytes > 0, let first = Self.plane(a, plane), let second = Self.plane(b, plane) else {
                return false
            }
            let (firstStride, secondStride) = (Self.stride(a, plane), Self.stride(b, plane))
            for row in 0..<rows where memcmp(first + row * firstStride, second + row * secondStride, rowBytes) != 0 {
                return false
            }
        }
        return true
    }

    private static func plane(_ frame: AVFrame, _ index: Int) -> UnsafeMutablePointer<UInt8>? {
        withUnsafeBytes(of: frame.data) {
            $0.load(
                fromByteOffset: index * MemoryLayout<UnsafeMutablePointer<UInt8>?>.stride,
                as: UnsafeMutablePointer<UInt8>?.self)
        }
    }

    private static func stride(_ frame: AVFrame, _ index: Int) -> Int {
        withUnsafeBytes(of: frame.linesize) {
            Int($0.load(fromByteOffset: index * MemoryLayout<Int32>.stride, as: Int32.self))
        }
    }

    /// Copies a packed frame (RGB24 or GRAY8) out as a `Bitmap`.
    func packedBitmap() -> Bitmap {
        precondition(pixelFormat == AV_PIX_FMT_RGB24 || pixelFormat == AV_PIX_FMT_GRAY8, "not a packed format")
        let channels = pixelFormat == AV_PIX_FMT_GRAY8 ? 1 : 3
        let rowBytes = width * channels
        let stride = Int(pointer.pointee.linesize.0)
        let source = pointer.pointee.data.0!
        var bytes = [UInt8](repeating: 0, count: rowBytes * height)
        bytes.withUnsafeMutableBytes { target in
            for row in 0..<height {
                (target.baseAddress! + row * rowBytes).copyMemory(from: source + row * stride, byteCount: rowBytes)
            }
        }
        return Bitmap(width: width, height: height, channels: channels, bytes: bytes)
    }
}
