import CFFmpeg

/// Owns a demuxer (`AVFormatContext` opened for reading) on one local file.
final class InputFile {
    private var context: UnsafeMutablePointer<AVFormatContext>?

    /// Opens `path` and reads its headers (and, where the headers are not enough, the first few
    /// packets: `avformat_find_stream_info`). Nothing is decoded beyond that.
    init(path: String) throws(FFmpegError) {
        var opened: UnsafeMutablePointer<AVFormatContext>?
        try check("avformat_open_input") { avformat_open_input(&opened, path, nil, nil) }
        context = opened
        try check("avformat_find_stream_info") { avformat_find_stream_info(opened, nil) }
    }

    deinit {
        avformat_close_input(&context)
    }

    private var formatContext: UnsafeMutablePointer<AVFormatContext> { context! }

    /// The file's container and stream parameters as Swift values.
    func describe() -> ContainerDescription {
        let format = formatContext.pointee
        let streams = (0..<Int(format.nb_streams)).compactMap { position in
            format.streams[position].map(StreamDescription.init(stream:))
        }
        return ContainerDescription(
            formatName: String(cString: format.iformat.pointee.name),
            durationMicroseconds: format.duration == noTimestamp || format.duration <= 0 ? nil : format.duration,
            bitRate: format.bit_rate > 0 ? format.bit_rate : nil,
            metadata: dictionary(format.metadata),
            streams: streams
        )
    }

    /// The stream FFmpeg judges the main one of its kind (`av_find_best_stream`), or nil.
    func bestVideoStream() -> Int? {
        let index = av_find_best_stream(formatContext, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        return index >= 0 ? Int(index) : nil
    }

    /// Tells the demuxer to skip every stream but `kept`, so reads return only its packets.
    func discardAllStreams(except kept: Set<Int>) {
        for position in 0..<Int(formatContext.pointee.nb_streams) {
            formatContext.pointee.streams[position]!.pointee.discard =
                kept.contains(position) ? AVDISCARD_DEFAULT : AVDISCARD_ALL
        }
    }

    /// Borrows a stream's codec parameters (owned by the format context) for the length of `body`.
    func withCodecParameters<R>(
        stream: Int, _ body: (UnsafePointer<AVCodecParameters>) throws(FFmpegError) -> R
    ) throws(FFmpegError) -> R {
        try body(formatContext.pointee.streams[stream]!.pointee.codecpar)
    }

    /// Borrows a stream (owned by the format context) for the length of `body`.
    func withStream<R>(
        _ index: Int, _ body: (UnsafeMutablePointer<AVStream>) throws(FFmpegError) -> R
    ) throws(FFmpegError) -> R {
        try body(formatContext.pointee.streams[index]!)
    }

    /// The earliest timestamp of any stream, in microseconds (0 when unknown): what outputs shift
    /// to zero.
    var startMicroseconds: Int64 {
        let start = formatContext.pointee.start_time
        return start == noTimestamp ? 0 : start
    }

    /// Reads the next packet into `packet`. Returns false at the end of the file.
    func read(into packet: Packet) throws(FFmpegError) -> Bool {
        packet.reset()
        let result = av_read_frame(formatContext, packet.pointer)
        if result == cffmpeg_averror_eof() { return false }
        if result < 0 { throw FFmpegError(call: "av_read_frame", code: result) }
        return true
    }

    /// Seeks `stream` to the last keyframe at or before `timestamp` (in the stream's time base).
    func seek(stream: Int, toKeyframeBefore timestamp: Int64) throws(FFmpegError) {
        try check("av_seek_frame") { av_seek_frame(formatContext, Int32(stream), timestamp, AVSEEK_FLAG_BACKWARD) }
    }

    /// Guesses the container format from the first bytes of a file, as FFmpeg's probing would
    /// without the file name. Tells a damaged video (recognised, unreadable) from something that
    /// is not a video at all.
    static func guessFormat(header: [UInt8]) -> String? {
        var padded = header
        padded.append(contentsOf: repeatElement(0, count: Int(AVPROBE_PADDING_SIZE)))
        return padded.withUnsafeMutableBufferPointer { buffer in
            var probe = AVProbeData()
            probe.buf = buffer.baseAddress
            probe.buf_size = Int32(header.count)
            var score: Int32 = 0
            guard let format = av_probe_input_format2(&probe, 1, &score), score >= AVPROBE_SCORE_EXTENSION / 2
            else { return nil }
            return String(cString: format.pointee.name)
        }
    }
}
