import CFFmpeg

/// Encodes single frames as images with FFmpeg's encoders: baseline JPEG (`mjpeg`) for the
/// stills, lossy WebP (`libwebp`) for the storyboard, PNG for small pictures drawn for people (a
/// BlurHash on the contact sheet).
enum ImageEncoder {
    /// The JPEG bytes of `frame`, which must be `yuvj420p`. `quality` is the `-q:v` scale
    /// (2 best … 31 worst).
    static func jpeg(_ frame: Frame, quality: Int) throws(FFmpegError) -> [UInt8] {
        try encode(frame, encoder: "mjpeg", format: AV_PIX_FMT_YUVJ420P) { encoder in
            encoder.pointee.color_range = AVCOL_RANGE_JPEG
            encoder.pointee.flags |= AV_CODEC_FLAG_QSCALE
            encoder.pointee.global_quality = Int32(quality) * cffmpeg_qp2lambda()
            frame.pointer.pointee.quality = encoder.pointee.global_quality
        }
    }

    /// The lossy WebP bytes of `frame`, which must be `yuv420p` (BT.601 limited range).
    /// `quality` is libwebp's 0 … 100 (best).
    static func webp(_ frame: Frame, quality: Int) throws(FFmpegError) -> [UInt8] {
        try encode(frame, encoder: "libwebp", format: AV_PIX_FMT_YUV420P) { encoder in
            encoder.pointee.flags |= AV_CODEC_FLAG_QSCALE
            encoder.pointee.global_quality = Int32(quality) * cffmpeg_qp2lambda()
        }
    }

    /// The PNG bytes of `frame`, which must be `rgb24`.
    static func png(_ frame: Frame) throws(FFmpegError) -> [UInt8] {
        try encode(frame, encoder: "png", format: AV_PIX_FMT_RGB24) { _ in }
    }

    private static func encode(
        _ frame: Frame, encoder name: String, format: AVPixelFormat,
        configure: (UnsafeMutablePointer<AVCodecContext>) -> Void
    ) throws(FFmpegError) -> [UInt8] {
        guard let codec = avcodec_find_encoder_by_name(name) else {
            throw FFmpegError(call: "avcodec_find_encoder(\(name))", code: cffmpeg_averror(ENOSYS))
        }
        var context: UnsafeMutablePointer<AVCodecContext>? = try allocated(
            "avcodec_alloc_context3", avcodec_alloc_context3(codec))
        defer { avcodec_free_context(&context) }
        let encoder = context!
        encoder.pointee.width = Int32(frame.width)
        encoder.pointee.height = Int32(frame.height)
        encoder.pointee.pix_fmt = format
        encoder.pointee.time_base = AVRational(num: 1, den: 25)
        configure(encoder)
        try check("avcodec_open2(\(name))") { avcodec_open2(encoder, codec, nil) }

        frame.pointer.pointee.pts = 0
        try check("avcodec_send_frame") { avcodec_send_frame(encoder, frame.pointer) }
        try check("avcodec_send_frame(flush)") { avcodec_send_frame(encoder, nil) }
        let packet = try Packet()
        var bytes: [UInt8] = []
        while true {
            let result = avcodec_receive_packet(encoder, packet.pointer)
            if result == cffmpeg_averror_eof() { break }
            if result < 0 { throw FFmpegError(call: "avcodec_receive_packet", code: result) }
            bytes.append(
                contentsOf: UnsafeBufferPointer(
                    start: packet.pointer.pointee.data, count: Int(packet.pointer.pointee.size)))
            packet.reset()
        }
        return bytes
    }
}
