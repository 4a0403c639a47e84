import CFFmpeg

/// Owns an encoding `AVCodecContext` (libx264 or SVT-AV1 for video, FFmpeg's `aac` for audio).
final class StreamEncoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    let timeBase: Rational

    /// What a video encoder is asked for. `options` go to the codec's private options
    /// (x264's or SVT-AV1's `preset`, `crf`, …), as `-preset`/`-crf` would on the command line.
    struct Video {
        var codec: String
        /// Which of two passes this encode is (nil: a single pass).
        var pass: VideoEncoding.RatePass?
        var width: Int
        var height: Int
        var timeBase: Rational
        var frameRate: Rational?
        var maxRateBitsPerSecond: Int
        var bufferBits: Int
        var options: [String: String]
        var threads: Int
    }

    /// What an audio encoder is asked for.
    struct Audio {
        var codec: String
        var sampleRate: Int
        var channels: Int
        var bitsPerSecond: Int
    }

    init(video: Video, globalHeader: Bool) throws(FFmpegError) {
        timeBase = video.timeBase
        context = try Self.open(codecName: video.codec, globalHeader: globalHeader, options: video.options) {
            context in
            context.pointee.width = Int32(video.width)
            context.pointee.height = Int32(video.height)
            context.pointee.pix_fmt = AV_PIX_FMT_YUV420P
            context.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
            context.pointee.time_base = video.timeBase.av
            if let rate = video.frameRate { context.pointee.framerate = rate.av }
            switch video.pass {
            case nil: break
            case .first: context.pointee.flags |= AV_CODEC_FLAG_PASS1
            case .second(_, let kilobitsPerSecond):
                context.pointee.flags |= AV_CODEC_FLAG_PASS2
                context.pointee.bit_rate = Int64(kilobitsPerSecond) * 1000
            }
            context.pointee.rc_max_rate = Int64(video.maxRateBitsPerSecond)
            context.pointee.rc_buffer_size = Int32(video.bufferBits)
            context.pointee.thread_count = Int32(video.threads)
            context.pointee.color_primaries = AVCOL_PRI_BT709
            context.pointee.color_trc = AVCOL_TRC_BT709
            context.pointee.colorspace = AVCOL_SPC_BT709
            context.pointee.color_range = AVCOL_RANGE_MPEG
        }
    }

    init(audio: Audio, globalHeader: Bool) throws(FFmpegError) {
        timeBase = Rational(1, Int32(audio.sampleRate))
        context = try Self.open(codecName: audio.codec, globalHeader: globalHeader, options: [:]) { context in
            context.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
            context.pointee.sample_rate = Int32(audio.sampleRate)
            av_channel_layout_default(&context.pointee.ch_layout, Int32(audio.channels))
            context.pointee.bit_rate = Int64(audio.bitsPerSecond)
            context.pointee.time_base = AVRational(num: 1, den: Int32(audio.sampleRate))
        }
    }

    deinit {
        avcodec_free_context(&context)
    }

    private static func open(
        codecName: String, globalHeader: Bool, options: [String: String],
        configure: (UnsafeMutablePointer<AVCodecContext>) -> Void
    ) throws(FFmpegError) -> UnsafeMutablePointer<AVCodecContext> {
        guard let codec = avcodec_find_encoder_by_name(codecName) else {
            throw FFmpegError(call: "avcodec_find_encoder_by_name(\(codecName))", code: cffmpeg_averror(ENOSYS))
        }
        var context: UnsafeMutablePointer<AVCodecContext>? = try allocated(
            "avcodec_alloc_context3", avcodec_alloc_context3(codec))
        configure(context!)
        if globalHeader { context!.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER }
        var dictionary: OpaquePointer?
        defer { av_dict_free(&dictionary) }
        for (key, value) in options { av_dict_set(&dictionary, key, value, 0) }
        let result = avcodec_open2(context, codec, &dictionary)
        if result < 0 {
            avcodec_free_context(&context)
            throw FFmpegError(call: "avcodec_open2(\(codecName))", code: result)
        }
        return context!
    }

    /// Samples per audio frame the encoder takes (AAC: 1024).
    var frameSize: Int { Int(context!.pointee.frame_size) }

    /// Sends one frame (nil: the end, to drain the encoder's delay).
    func send(_ frame: Frame?) throws(FFmpegError) {
        try check("avcodec_send_frame") { avcodec_send_frame(context, frame?.pointer) }
    }

    /// Takes the next encoded packet, if one is ready.
    func receive(into packet: Packet) throws(FFmpegError) -> Received {
        packet.reset()
        return try Received("avcodec_receive_packet", returned: avcodec_receive_packet(context, packet.pointer))
    }

    /// Copies the encoder's parameters into a stream's `codecpar`.
    func copyParameters(to parameters: UnsafeMutablePointer<AVCodecParameters>) throws(FFmpegError) {
        try check("avcodec_parameters_from_context") { avcodec_parameters_from_context(parameters, context) }
    }
}
