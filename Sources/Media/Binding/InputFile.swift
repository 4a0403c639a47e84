import CFFmpeg
import Glibc

/// Owns a demuxer (`AVFormatContext` opened for reading) on one local file, opened so that a
/// hostile file can make FFmpeg read nothing but its own bytes: the container format is decided
/// from the bytes alone and must be one the caller accepts, the file is read through an I/O
/// context we opened ourselves (only the `file` protocol), and every other open a demuxer may
/// attempt (playlist entries, data references, image sequences, URLs) is refused.
final class InputFile {
    /// Why a file could not be opened.
    enum OpenError: Error {
        /// No demuxer recognises the bytes.
        case unrecognised
        /// The bytes are a format uploads may not be (a playlist, a concat script, an image…).
        case refused(format: String)
        /// The file could not be read at all (`errno`).
        case io(Int32)
        /// A video stream's header declares frames of `width`×`height`, over the pixel limit.
        case oversized(width: Int, height: Int)
        /// FFmpeg recognised `format` but could not open it or read its headers.
        case unreadable(format: String, FFmpegError)
    }

    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var io: UnsafeMutablePointer<AVIOContext>?

    /// Opens `path` if its bytes are one of `acceptedFormats` (demuxer names as FFmpeg lists
    /// them, e.g. `mov,mp4,m4a,3gp,3g2,mj2`), and reads its headers (and, where the headers are
    /// not enough, the first packets: `avformat_find_stream_info`, whose probing decoders refuse
    /// any frame over `maxPixels` before allocating it).
    init(path: String, acceptedFormats: Set<String>, maxPixels: Int) throws(OpenError) {
        let format = try Self.detectFormat(path: path)
        let name = String(cString: format.pointee.name)
        guard acceptedFormats.contains(name) else { throw .refused(format: name) }
        do {
            try open(path: path, format: format)
        } catch {
            throw .unreadable(format: name, error)
        }
        if let oversized = largestVideoFrame(), oversized.width * oversized.height > maxPixels {
            throw .oversized(width: oversized.width, height: oversized.height)
        }
        do {
            try findStreamInfo(maxPixels: maxPixels)
        } catch {
            throw .unreadable(format: name, error)
        }
    }

    deinit {
        avformat_close_input(&context)
        avio_closep(&io)
    }

    private func open(path: String, format: UnsafePointer<AVInputFormat>) throws(FFmpegError) {
        var ioOptions: OpaquePointer?
        defer { av_dict_free(&ioOptions) }
        av_dict_set(&ioOptions, "protocol_whitelist", "file", 0)
        try check("avio_open2") { avio_open2(&io, "file:" + path, AVIO_FLAG_READ, nil, &ioOptions) }

        var opened = try allocated("avformat_alloc_context", avformat_alloc_context())
        opened.pointee.pb = io
        // Any file or URL a demuxer tries to open on its own is refused.
        opened.pointee.io_open = { _, _, _, _, _ in cffmpeg_averror(EPERM) }
        opened.pointee.protocol_whitelist = av_strdup("file")
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        av_dict_set(&options, "enable_drefs", "0", 0)  // MOV: never follow data references
        av_dict_set(&options, "use_absolute_path", "0", 0)
        var openedOptional: UnsafeMutablePointer<AVFormatContext>? = opened
        // On failure avformat_open_input frees the context (not our I/O context).
        try check("avformat_open_input") { avformat_open_input(&openedOptional, nil, format, &options) }
        opened = openedOptional!
        context = opened
    }

    /// Stream-info probing decodes a frame of every stream; each probing decoder gets the pixel
    /// limit, so an oversized stream is refused from its header instead of allocated.
    private func findStreamInfo(maxPixels: Int) throws(FFmpegError) {
        let count = Int(formatContext.pointee.nb_streams)
        var perStream = [OpaquePointer?](repeating: nil, count: count)
        for position in 0..<count { av_dict_set(&perStream[position], "max_pixels", "\(maxPixels)", 0) }
        defer { for position in 0..<count { av_dict_free(&perStream[position]) } }
        _ = try perStream.withUnsafeMutableBufferPointer { buffer throws(FFmpegError) in
            try check("avformat_find_stream_info") { avformat_find_stream_info(formatContext, buffer.baseAddress) }
        }
    }

    private var formatContext: UnsafeMutablePointer<AVFormatContext> { context! }

    /// The largest frame any video stream's header declares, before anything is decoded.
    private func largestVideoFrame() -> (width: Int, height: Int)? {
        (0..<Int(formatContext.pointee.nb_streams)).compactMap { position -> (width: Int, height: Int)? in
            guard let parameters = formatContext.pointee.streams[position]?.pointee.codecpar,
                parameters.pointee.codec_type == AVMEDIA_TYPE_VIDEO
            else { return nil }
            return (Int(parameters.pointee.width), Int(parameters.pointee.height))
        }.max { $0.width * $0.height < $1.width * $1.height }
    }

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

    /// Whether the container's timestamps may restart or leap mid-file (`AVFMT_TS_DISCONT`: MPEG
    /// transport and program streams).
    var timestampsMayJump: Bool { formatContext.pointee.iformat.pointee.flags & AVFMT_TS_DISCONT != 0 }

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

    /// Goes back to the file's first byte (a byte seek, which every demuxer of a local file can do).
    func seekToStart() throws(FFmpegError) {
        try check("av_seek_frame(byte 0)") { av_seek_frame(formatContext, -1, 0, AVSEEK_FLAG_BYTE) }
    }

    /// The demuxer FFmpeg's probing picks for the file's first bytes, with no file name to hint at
    /// it (so `clip.m3u8` and `clip.mp4` are judged alike). Reads growing prefixes as
    /// `av_probe_input_buffer2` does, accepting a confident match early and any match at the end.
    private static func detectFormat(path: String) throws(OpenError) -> UnsafePointer<AVInputFormat> {
        let maxProbe = 1 << 20
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(errno) }
        defer { close(descriptor) }
        var header = [UInt8](repeating: 0, count: maxProbe)
        var filled = 0
        while filled < maxProbe {
            let count = header.withUnsafeMutableBytes {
                Glibc.read(descriptor, $0.baseAddress! + filled, maxProbe - filled)
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw .io(errno) }
            if count == 0 { break }
            filled += count
        }
        header.removeSubrange(filled...)
        var size = min(2048, header.count)
        while true {
            let last = size >= header.count
            if let format = probe(Array(header[0..<size]), minimumScore: last ? 0 : AVPROBE_SCORE_RETRY) {
                return format
            }
            if last { throw .unrecognised }
            size = min(size * 2, header.count)
        }
    }

    private static func probe(_ header: [UInt8], minimumScore: Int32) -> UnsafePointer<AVInputFormat>? {
        var padded = header
        padded.append(contentsOf: repeatElement(0, count: Int(AVPROBE_PADDING_SIZE)))
        return padded.withUnsafeMutableBufferPointer { buffer in
            var data = AVProbeData()
            data.buf = buffer.baseAddress
            data.buf_size = Int32(header.count)
            var score = minimumScore
            return av_probe_input_format2(&data, 1, &score)
        }
    }
}
