import CFFmpeg

/// Owns a muxer (`AVFormatContext` opened for writing) on one local file. Writes no metadata but
/// what a stream needs to play: nothing of the source's tags is ever copied.
final class OutputContainer {
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var headerWritten = false
    private var finished = false
    private var streamTimeBases: [Rational] = []

    init(path: String, format: String) throws(FFmpegError) {
        var created: UnsafeMutablePointer<AVFormatContext>?
        try check("avformat_alloc_output_context2(\(format))") {
            avformat_alloc_output_context2(&created, nil, format, path)
        }
        context = created
        do throws(FFmpegError) {
            try check("avio_open(\(path))") { avio_open(&created!.pointee.pb, path, AVIO_FLAG_WRITE) }
        } catch {
            avformat_free_context(context)
            context = nil
            throw error
        }
    }

    deinit {
        if let context {
            if headerWritten && !finished { av_write_trailer(context) }
            avio_closep(&context.pointee.pb)
            avformat_free_context(context)
        }
    }

    /// Whether encoders must put codec headers in extradata (MP4 does).
    var needsGlobalHeader: Bool { context!.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 }

    /// Adds a stream fed by `encoder`. Returns its index.
    func addStream(encoder: StreamEncoder) throws(FFmpegError) -> Int {
        let stream = try allocated("avformat_new_stream", avformat_new_stream(context, nil))
        try encoder.copyParameters(to: stream.pointee.codecpar)
        stream.pointee.time_base = encoder.timeBase.av
        streamTimeBases.append(encoder.timeBase)
        return Int(stream.pointee.index)
    }

    /// Adds a stream that takes `input`'s stream packets as they are (a remux), or as `filter`
    /// rewrites them, shown turned `clockwiseQuarterTurns` by a display matrix made here (never the
    /// source's bytes), with the sample entry `tag` (e.g. `hvc1`, which Apple's players need for
    /// HEVC) or the muxer's default. Returns its index.
    func addStream(
        copying input: InputFile, stream index: Int, filter: BitstreamFilter?, clockwiseQuarterTurns: Int,
        tag: String? = nil
    ) throws(FFmpegError) -> Int {
        let stream = try allocated("avformat_new_stream", avformat_new_stream(context, nil))
        try input.withStream(index) { source throws(FFmpegError) in
            if let filter {
                _ = try filter.withOutputParameters { parameters throws(FFmpegError) in
                    try check("avcodec_parameters_copy") {
                        avcodec_parameters_copy(stream.pointee.codecpar, parameters)
                    }
                }
            } else {
                try check("avcodec_parameters_copy") {
                    avcodec_parameters_copy(stream.pointee.codecpar, source.pointee.codecpar)
                }
            }
            stream.pointee.codecpar.pointee.codec_tag = tag.map(Self.fourCC) ?? 0
            stream.pointee.time_base = source.pointee.time_base
        }
        if clockwiseQuarterTurns % 4 != 0 {
            let size = 9 * MemoryLayout<Int32>.size
            let matrix = try allocated(
                "av_stream_new_side_data", av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, size))
            matrix.withMemoryRebound(to: Int32.self, capacity: 9) {
                av_display_rotation_set($0, Double(clockwiseQuarterTurns % 4 * 90))
            }
        }
        streamTimeBases.append(Rational(stream.pointee.time_base) ?? microsecondTimeBase)
        return Int(stream.pointee.index)
    }

    /// Writes the header. `options` are the muxer's (`movflags=+faststart`, …).
    func writeHeader(options: [String: String]) throws(FFmpegError) {
        var dictionary: OpaquePointer?
        defer { av_dict_free(&dictionary) }
        for (key, value) in options { av_dict_set(&dictionary, key, value, 0) }
        try check("avformat_write_header") { avformat_write_header(context, &dictionary) }
        headerWritten = true
        // The muxer may have changed the time bases it asked for.
        streamTimeBases = (0..<Int(context!.pointee.nb_streams)).map {
            Rational(context!.pointee.streams[$0]!.pointee.time_base) ?? microsecondTimeBase
        }
    }

    /// Writes `packet` to stream `index`, rescaling its timestamps from `timeBase` and moving
    /// them back by `offset` (in the same time base) so the file starts at zero.
    func write(_ packet: Packet, stream index: Int, timeBase: Rational, offset: Int64 = 0) throws(FFmpegError) {
        let raw = packet.pointer
        if offset != 0 {
            if raw.pointee.pts != noTimestamp { raw.pointee.pts -= offset }
            if raw.pointee.dts != noTimestamp { raw.pointee.dts -= offset }
        }
        av_packet_rescale_ts(raw, timeBase.av, streamTimeBases[index].av)
        raw.pointee.stream_index = Int32(index)
        raw.pointee.pos = -1
        try check("av_interleaved_write_frame") { av_interleaved_write_frame(context, raw) }
    }

    /// Flushes interleaving buffers and writes the trailer (the index; with `faststart`, moves it
    /// before the media data).
    func finish() throws(FFmpegError) {
        finished = true
        try check("av_write_trailer") { av_write_trailer(context) }
    }

    /// A four-character code as FFmpeg's `MKTAG` packs it (first character lowest).
    private static func fourCC(_ code: String) -> UInt32 {
        code.utf8.prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }
}
