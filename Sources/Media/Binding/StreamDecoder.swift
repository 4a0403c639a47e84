import CFFmpeg

/// Owns a decoding `AVCodecContext` for one stream of an `InputFile`.
final class StreamDecoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    /// The decoded stream's time base: frame timestamps are in it.
    let timeBase: Rational
    /// What a frame lasts, in `timeBase`, for frames that come without a timestamp (a raw
    /// elementary stream has none): each is stamped one frame after the one before, as the
    /// `ffmpeg` program does. Nil: frames are left as decoded.
    private let frameDuration: Int64?
    private var nextTimestamp: Int64 = 0

    /// Opens the stream's decoder. `threads` 0 lets FFmpeg size the pool to the machine;
    /// `maxPixels` makes the decoder refuse frames larger than the limit before allocating them.
    init(
        input: InputFile, stream: Int, timeBase: Rational, threads: Int, maxPixels: Int, frameDuration: Int64? = nil
    ) throws(FFmpegError) {
        self.timeBase = timeBase
        self.frameDuration = frameDuration
        let codecContext = try input.withCodecParameters(stream: stream) { parameters throws(FFmpegError) in
            guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
                throw FFmpegError(call: "avcodec_find_decoder", code: cffmpeg_averror(ENOSYS))
            }
            let codecContext = try allocated("avcodec_alloc_context3", avcodec_alloc_context3(codec))
            var owned: UnsafeMutablePointer<AVCodecContext>? = codecContext
            do throws(FFmpegError) {
                try check("avcodec_parameters_to_context") { avcodec_parameters_to_context(codecContext, parameters) }
                codecContext.pointee.pkt_timebase = timeBase.av
                codecContext.pointee.thread_count = Int32(threads)
                codecContext.pointee.thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE
                codecContext.pointee.max_pixels = Int64(maxPixels)
                try check("avcodec_open2") { avcodec_open2(codecContext, codec, nil) }
            } catch {
                avcodec_free_context(&owned)
                throw error
            }
            return codecContext
        }
        context = codecContext
    }

    deinit {
        avcodec_free_context(&context)
    }

    /// Sends one packet (nil: the end of the stream, to drain what is buffered).
    /// Returns false when the decoder must hand out frames before it takes more input.
    func send(_ packet: Packet?) throws(FFmpegError) -> Bool {
        let result = avcodec_send_packet(context, packet?.pointer)
        if result == cffmpeg_averror_eagain() { return false }
        if result == cffmpeg_averror_eof() { return true }
        if result < 0 { throw FFmpegError(call: "avcodec_send_packet", code: result) }
        return true
    }

    /// Takes the next decoded frame, if one is ready.
    func receive(into frame: Frame) throws(FFmpegError) -> Received {
        frame.reset()
        let received = try Received("avcodec_receive_frame", returned: avcodec_receive_frame(context, frame.pointer))
        guard received == .ready else { return received }
        if let frameDuration {
            if let timestamp = frame.timestamp {
                nextTimestamp = timestamp + frameDuration
            } else {
                frame.stamp(nextTimestamp)
                nextTimestamp += frameDuration
            }
        }
        return .ready
    }

    /// Forgets buffered frames, after a seek (a stream without timestamps is only ever read again
    /// from its start).
    func flush() {
        avcodec_flush_buffers(context)
        nextTimestamp = 0
    }
}
