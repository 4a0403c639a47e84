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

    /// Drops the frame's buffers so it can be filled again.
    func reset() { av_frame_unref(pointer) }

    /// Makes this frame a new reference to `other`'s buffers (no pixel copy).
    func reference(_ other: Frame) throws(FFmpegError) {
        av_frame_unref(pointer)
        try check("av_frame_ref") { av_frame_ref(pointer, other.pointer) }
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
