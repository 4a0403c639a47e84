import CFFmpeg

/// What a demuxer's headers say about the whole file, copied out of FFmpeg's structs.
struct ContainerDescription {
    /// The demuxer's short name list, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    var formatName: String
    /// In microseconds; nil when the container does not say.
    var durationMicroseconds: Int64?
    /// Bits per second over the whole file; nil when unknown.
    var bitRate: Int64?
    var metadata: [String: String]
    var streams: [StreamDescription]
}

/// What a demuxer's headers say about one stream.
struct StreamDescription {
    enum Kind { case video, audio, other }

    var index: Int
    var kind: Kind
    var codecName: String
    var profileName: String?
    var width: Int
    var height: Int
    /// The pixel aspect ratio the picture is shown with: nil for square or implausible pixels.
    var sampleAspectRatio: Rational?
    /// A non-square pixel aspect ratio the container or the bitstream declares (plausible or not),
    /// as "num:den": a copy of the stream would carry it to players.
    var declaredNonSquarePixels: String?
    var pixelFormatName: String?
    /// The decoder's output format (an `AVPixelFormat` or `AVSampleFormat` value), -1 if unknown.
    var rawFormat: Int32
    var bitDepth: Int?
    var colorPrimaries: String?
    var colorTransfer: String?
    var colorSpace: String?
    var colorRange: String?
    /// `avg_frame_rate`, as the container's timing gives it.
    var averageFrameRate: Rational?
    /// `r_frame_rate`: the lowest rate that represents every timestamp exactly.
    var realFrameRate: Rational?
    var timeBase: Rational
    var startTime: Int64?
    var duration: Int64?
    var frameCount: Int64?
    var bitRate: Int64?
    /// How many frames the decoder holds back to reorder them (B-frames): 0 when packets are
    /// stored in the order they are shown.
    var reorderDelay: Int
    /// What the display matrix asks of a player; nil without one.
    var displayOrientation: DisplayOrientation?
    var channels: Int
    var sampleRate: Int
    /// Cover art and other still images stored as a "video" stream.
    var isAttachedPicture: Bool
    /// This FFmpeg build has a decoder for the stream's codec.
    var hasDecoder: Bool
    /// The stream's fields are coded apart (`field_order` other than progressive or unknown).
    var interlaced: Bool
    /// One frame at the stream's rate (its average, its base rate, or 25 fps), in its time base.
    var nominalFrameDuration: Int64 {
        let rate =
            [averageFrameRate, realFrameRate].compactMap { $0 }.first { (1...1000).contains($0.doubleValue) }
            ?? Rational(25, 1)
        return max(1, rescale(1, from: Rational(rate.denominator, rate.numerator), to: timeBase))
    }

    /// Timestamps of the demuxer's index entries (every sample for MP4/MOV, keyframes elsewhere).
    var indexTimestamps: [Int64]
    /// The byte just past the last sample the index points at; nil without an index.
    var indexEndOffset: Int64?
}

/// An exact fraction, as FFmpeg's `AVRational`.
struct Rational: Equatable {
    var numerator: Int32
    var denominator: Int32

    init(_ numerator: Int32, _ denominator: Int32) {
        self.numerator = numerator
        self.denominator = denominator
    }

    init?(_ value: AVRational) {
        guard value.num != 0, value.den != 0 else { return nil }
        self.init(value.num, value.den)
    }

    /// A pixel aspect ratio a real camera or encoder could have written (1:8 … 8:1, both terms
    /// positive), or nil: a crafted file's 16:238239 or -1:1 would make a 0-pixel-wide picture or
    /// a filter graph that refuses to build, so such values count as square pixels, as if unset.
    init?(aspectRatio value: AVRational) {
        guard value.num > 0, value.den > 0 else { return nil }
        let ratio = Double(value.num) / Double(value.den)
        guard ratio >= 1.0 / 8, ratio <= 8 else { return nil }
        self.init(value.num, value.den)
    }

    var av: AVRational { AVRational(num: numerator, den: denominator) }
    var doubleValue: Double { Double(numerator) / Double(denominator) }
}

/// Rescales `value` from one time base to another, rounding to nearest (`av_rescale_q`).
func rescale(_ value: Int64, from source: Rational, to target: Rational) -> Int64 {
    av_rescale_q(value, source.av, target.av)
}

/// The microsecond time base of `AVFormatContext.duration` and `av_seek_frame(-1, …)`.
let microsecondTimeBase = Rational(cffmpeg_time_base_q())!

extension StreamDescription {
    /// Reads one stream's parameters; `stream` is borrowed from the format context.
    init(stream: UnsafeMutablePointer<AVStream>) {
        let parameters = stream.pointee.codecpar!.pointee
        switch parameters.codec_type {
        case AVMEDIA_TYPE_VIDEO: kind = .video
        case AVMEDIA_TYPE_AUDIO: kind = .audio
        default: kind = .other
        }
        index = Int(stream.pointee.index)
        codecName = String(cString: avcodec_get_name(parameters.codec_id))
        profileName = avcodec_profile_name(parameters.codec_id, parameters.profile).map { String(cString: $0) }
        width = Int(parameters.width)
        height = Int(parameters.height)
        // The container's aspect ratio wins over the bitstream's, as av_guess_sample_aspect_ratio
        // and every player decide.
        sampleAspectRatio =
            Rational(aspectRatio: stream.pointee.sample_aspect_ratio)
            ?? Rational(aspectRatio: parameters.sample_aspect_ratio)
        declaredNonSquarePixels = [stream.pointee.sample_aspect_ratio, parameters.sample_aspect_ratio]
            .first { $0.num != 0 && $0.den != 0 && $0.num != $0.den }
            .map { "\($0.num):\($0.den)" }
        rawFormat = parameters.format
        if kind == .video, parameters.format >= 0 {
            let format = AVPixelFormat(rawValue: parameters.format)
            pixelFormatName = av_get_pix_fmt_name(format).map { String(cString: $0) }
            bitDepth = av_pix_fmt_desc_get(format).map { Int($0.pointee.comp.0.depth) }
        }
        colorPrimaries = Self.name(
            av_color_primaries_name(parameters.color_primaries),
            unless: parameters.color_primaries == AVCOL_PRI_UNSPECIFIED)
        colorTransfer = Self.name(
            av_color_transfer_name(parameters.color_trc), unless: parameters.color_trc == AVCOL_TRC_UNSPECIFIED)
        colorSpace = Self.name(
            av_color_space_name(parameters.color_space), unless: parameters.color_space == AVCOL_SPC_UNSPECIFIED)
        colorRange = Self.name(
            av_color_range_name(parameters.color_range), unless: parameters.color_range == AVCOL_RANGE_UNSPECIFIED)
        averageFrameRate = Rational(stream.pointee.avg_frame_rate)
        realFrameRate = Rational(stream.pointee.r_frame_rate)
        timeBase = Rational(stream.pointee.time_base) ?? microsecondTimeBase
        startTime = stream.pointee.start_time == noTimestamp ? nil : stream.pointee.start_time
        duration =
            stream.pointee.duration == noTimestamp || stream.pointee.duration <= 0 ? nil : stream.pointee.duration
        frameCount = stream.pointee.nb_frames > 0 ? stream.pointee.nb_frames : nil
        bitRate = parameters.bit_rate > 0 ? parameters.bit_rate : nil
        reorderDelay = Int(max(0, min(16, parameters.video_delay)))
        channels = Int(parameters.ch_layout.nb_channels)
        sampleRate = Int(parameters.sample_rate)
        isAttachedPicture = stream.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0
        hasDecoder = avcodec_find_decoder(parameters.codec_id) != nil
        interlaced = ![AV_FIELD_UNKNOWN, AV_FIELD_PROGRESSIVE].contains(parameters.field_order)

        var sideDataSize: Int = 0
        if let matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &sideDataSize),
            sideDataSize >= 9 * MemoryLayout<Int32>.size
        {
            displayOrientation = matrix.withMemoryRebound(to: Int32.self, capacity: 9) {
                Self.orientation(Array(UnsafeBufferPointer(start: $0, count: 9)))
            }
        }

        let entryCount = Int(avformat_index_get_entries_count(stream))
        var timestamps: [Int64] = []
        timestamps.reserveCapacity(entryCount)
        var endOffset: Int64?
        for position in 0..<entryCount {
            guard let entry = avformat_index_get_entry(stream, Int32(position)) else { continue }
            timestamps.append(entry.pointee.timestamp)
            let end = entry.pointee.pos + Int64(entry.pointee.size)
            if entry.pointee.pos >= 0, end > endOffset ?? 0 { endOffset = end }
        }
        indexTimestamps = timestamps
        indexEndOffset = endOffset
    }

    /// Reads a display matrix exactly: a mirror (a negative determinant), then the rotation left
    /// once it is undone, and whether the matrix is precisely that orientation. A singular matrix
    /// means nothing a player can show: frames are shown as decoded.
    static func orientation(_ matrix: [Int32]) -> DisplayOrientation {
        var matrix = matrix
        let (a, b, c, d) = (Double(matrix[0]), Double(matrix[1]), Double(matrix[3]), Double(matrix[4]))
        let scale = max(hypot(a, c), hypot(b, d))
        let determinant = a * d - b * c
        guard scale > 0, abs(determinant) > 0.01 * scale * scale else {
            return DisplayOrientation(quarterTurns: 0, mirrored: false, exact: false)
        }
        let mirrored = determinant < 0
        if mirrored { av_display_matrix_flip(&matrix, 1, 0) }
        let degrees = av_display_rotation_get(matrix)
        let turns = degrees.isNaN ? 0 : ((Int((-degrees / 90).rounded()) % 4) + 4) % 4
        var upright = [Int32](repeating: 0, count: 9)
        av_display_rotation_set(&upright, Double(turns * 90))
        // Translations (x, y) are where a player puts the turned frame, so they may be anything.
        let exact =
            [0, 1, 3, 4].allSatisfy { abs(Int64(matrix[$0]) - Int64(upright[$0])) <= 64 }
            && matrix[2] == 0 && matrix[5] == 0 && matrix[8] == upright[8]
        return DisplayOrientation(quarterTurns: turns, mirrored: mirrored, exact: exact)
    }

    private static func name(_ pointer: UnsafePointer<CChar>?, unless unspecified: Bool) -> String? {
        guard !unspecified, let pointer else { return nil }
        return String(cString: pointer)
    }
}

/// Copies an `AVDictionary` into a Swift dictionary.
func dictionary(_ source: OpaquePointer?) -> [String: String] {
    var result: [String: String] = [:]
    var entry: UnsafeMutablePointer<AVDictionaryEntry>?
    while let next = av_dict_get(source, "", entry, AV_DICT_IGNORE_SUFFIX) {
        result[String(cString: next.pointee.key)] = String(cString: next.pointee.value)
        entry = next
    }
    return result
}
