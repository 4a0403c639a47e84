import Foundation
import Logging

/// A video output as a transcode (`video` with libx264, `video_av1` with SVT-AV1): the video
/// encoded and the source's audio copied or encoded as `AudioTrack` decides, into an MP4 with its
/// index first (faststart).
final class MainTranscode {
    let path: URL
    let encoding: VideoEncoding
    let video: VideoEncodeBranch
    let audio: AudioTrack?
    private let container: OutputContainer
    private let videoWhy: String

    init(
        _ opened: Probe.Opened, encoding: VideoEncoding, why: String, audio: AudioTrack.Decision?, path: URL,
        threads: Int, sampled: Bool = false
    )
        throws(FFmpegError)
    {
        self.path = path
        self.encoding = encoding
        videoWhy = why
        let container = try OutputContainer(path: path.path, format: "mp4")
        self.container = container
        video = try VideoEncodeBranch(
            encoding: encoding, video: opened.info.video, stream: opened.videoStream, container: container,
            threads: threads, declaredEnd: opened.videoEnd, sampled: sampled)
        // The output's zero is the video's first timestamp; audio keeps its offset from it.
        self.audio = try audio.map { decision throws(FFmpegError) in
            try AudioTrack(
                decision, opened: opened, container: container, zeroMicroseconds: opened.videoStartMicroseconds)
        }
        try container.writeHeader(options: ["movflags": "+faststart"])
    }

    func finish() throws {
        try video.finish()
        try audio?.finish()
        try container.finish()
    }

    var report: EncoderReport {
        EncoderReport(
            path: "transcode", audioPath: audio?.path,
            why: ["video encoded: \(videoWhy)"] + (audio.map { [$0.why] } ?? []),
            codec: encoding.codec.rawValue, preset: encoding.preset, crf: encoding.crf,
            maxrateKbps: encoding.maxrateKbps, bufsizeKbps: encoding.bufsizeKbps,
            audioKbps: audio?.kilobitsPerSecond, width: video.size.width,
            height: video.size.height, fps: video.frameRate)
    }
}

/// A video output as a remux (`video` from H.264, `video_hevc` from HEVC, tagged `hvc1`,
/// `video_av1` from AV1): the source's video packets copied into an MP4 with faststart and none of
/// the source's tags, beside its audio encoded (`AudioTrack`).
/// Nothing of the uploader rides along: every video packet keeps only the units a decoder needs
/// and the decoder configuration only the parameter sets (`ParameterSets`: an allow-list, so SEI,
/// filler, unspecified units and AV1 metadata OBUs, where dashcams and drones write GPS and device
/// strings, never pass), and the display matrix is one made here for the exact rotation, not the
/// source's bytes.
final class Remux {
    let path: URL
    let audio: AudioTrack?
    private let container: OutputContainer
    private let videoStream: Int
    private let videoIndex: Int
    private let videoTimeBase: Rational
    private let videoOffset: Int64
    private let filter: BitstreamFilter
    private let codec: String
    /// The sequence-level parameter sets of the decoder configuration, and how the packets'
    /// units are framed: an in-band parameter set that is not one of these changes the stream
    /// (a new size, depth or chroma format) and ends the copy.
    private let sequenceUnits: Set<[UInt8]>
    private let framing: ParameterSets.Framing
    private var lastDecodingTimestamp: Int64?
    private let frameDuration: Int64
    private let reorderDelay: Int
    private let videoWhy: String

    init(_ opened: Probe.Opened, why: String, audio: AudioTrack.Decision?, path: URL) throws(FFmpegError) {
        self.path = path
        videoWhy = why
        let container = try OutputContainer(path: path.path, format: "mp4")
        self.container = container
        let start = opened.file.startMicroseconds
        let video = opened.videoStream
        let codec = opened.info.video.codec
        // Only codecs with an allow-list are ever copied (CopyCheck); a configuration that cannot
        // be read as one is the input's fault.
        let units = ParameterSets.passedUnits[codec] ?? ""
        let filter = try BitstreamFilter(
            "filter_units", options: ["pass_types": units], input: opened.file, stream: video.index)
        guard try filter.rewriteOutputExtradata({ ParameterSets.decoderConfiguration($0, codec: codec) }) else {
            throw .invalidData("read the \(codec) decoder configuration")
        }
        self.filter = filter
        self.codec = codec
        let configuration = filter.outputExtradata
        sequenceUnits = ParameterSets.sequenceUnits(ofConfiguration: configuration, codec: codec)
        framing = ParameterSets.framing(ofConfiguration: configuration, codec: codec)
        videoStream = video.index
        videoTimeBase = video.timeBase
        frameDuration = video.nominalFrameDuration
        reorderDelay = video.reorderDelay
        videoOffset = rescale(start, from: microsecondTimeBase, to: video.timeBase)
        videoIndex = try container.addStream(
            copying: opened.file, stream: video.index, filter: filter,
            clockwiseQuarterTurns: opened.info.video.rotation / 90,
            tag: opened.info.video.codec == "hevc" ? "hvc1" : nil)
        self.audio = try audio.map { decision throws(FFmpegError) in
            try AudioTrack(decision, opened: opened, container: container, zeroMicroseconds: start)
        }
        try container.writeHeader(options: ["movflags": "+faststart"])
    }

    /// Copies one video packet (and consumes it). Timestamps a muxer would refuse (missing, going
    /// backwards, absurd durations) are mended as `ffmpeg -c copy` mends them; a packet that still
    /// cannot be written means the input is damaged.
    func writeVideo(_ packet: Packet) throws(MediaError) {
        do {
            if try !filter.filter(packet) { return }
        } catch {
            throw .corruptInput("the video's packets cannot be read for copying (\(error)); upload it again")
        }
        let inBand = packet.withPayload { ParameterSets.sequenceUnits(in: $0, codec: codec, framing: framing) }
        if !inBand.isSubset(of: sequenceUnits) {
            // Refused as a muxer refuses a copy it cannot take: the stream is encoded instead.
            throw .corruptInput("the video's parameter sets change mid-stream (its size, depth or chroma format)")
        }
        packet.mendTimestamps(after: lastDecodingTimestamp, frameDuration: frameDuration, reorderDelay: reorderDelay)
        lastDecodingTimestamp = packet.decodingTimestamp
        try container.writeCopied(packet, stream: videoIndex, timeBase: videoTimeBase, offset: videoOffset)
    }

    func finish() throws {
        try audio?.finish()
        try container.finish()
    }

    func report(_ info: MediaInfo) -> EncoderReport {
        EncoderReport(
            path: "remux", audioPath: audio?.path, why: ["video copied: \(videoWhy)"] + (audio.map { [$0.why] } ?? []),
            codec: info.video.codec, preset: nil, crf: nil, maxrateKbps: nil, bufsizeKbps: nil,
            audioKbps: audio?.kilobitsPerSecond,
            width: info.video.width, height: info.video.height, fps: info.video.frameRate)
    }
}

/// The audio of a video output, on the output's timeline (`zeroMicroseconds` is its start): the
/// source's decoded frames encoded as AAC, keeping their offset from the video, so a copied video
/// and its audio stay in sync. Audio is never copied: an AAC stream's frames can carry data stream
/// elements and fill elements, and its configuration a program config element's comment, free
/// bytes an uploader's app may have written that only a full parse would find, while an AAC encode
/// costs a few percent of a job (see the Media article).
final class AudioTrack {
    /// The rate an output's audio is encoded at, and why.
    struct Decision {
        var kilobitsPerSecond: Int
        var why: String
        /// The gain that levels the output's loudness, in dB (0: none).
        var gainDB = 0.0

        /// `opened`'s audio as `encoding` has it: AAC at the profile's rate, or at the source's own
        /// when that is lower (an encode never spends more bits than the audio had). Nil: no audio.
        init?(_ opened: Probe.Opened, encoding: VideoEncoding, gainDB: Double = 0) {
            guard opened.audioStream != nil, let source = opened.info.audio else { return nil }
            self.gainDB = gainDB
            let profileRate = encoding.audioKbps ?? 128
            kilobitsPerSecond = source.bitRate.map { min(profileRate, max(48, Int($0 / 1000))) } ?? profileRate
            why = source.codec == "aac" ? "AAC is encoded again, never copied" : "\(source.codec) is not AAC"
        }
    }

    let why: String
    private let encoder: AudioEncodeBranch
    private let timeBase: Rational
    /// The output's zero, in the source audio's time base.
    private let zero: Int64

    init(_ decision: Decision, opened: Probe.Opened, container: OutputContainer, zeroMicroseconds: Int64)
        throws(FFmpegError)
    {
        let stream = opened.audioStream!
        timeBase = stream.timeBase
        zero = rescale(zeroMicroseconds, from: microsecondTimeBase, to: stream.timeBase)
        encoder = try AudioEncodeBranch(
            audio: opened.info.audio!, kilobitsPerSecond: decision.kilobitsPerSecond,
            gain: LoudnessLevel.factor(decibels: decision.gainDB), container: container)
        why = "audio encoded: \(decision.why)"
    }

    var path: String { "encode" }
    var kilobitsPerSecond: Int { encoder.bitsPerSecond / 1000 }

    /// Encodes one decoded frame at its place on the output's timeline.
    func consume(_ frame: Frame) throws(MediaError) {
        try encoder.consume(frame, startSeconds: Double((frame.timestamp ?? zero) - zero) * timeBase.doubleValue)
    }

    func finish() throws(MediaError) { try encoder.finish() }
}

extension OutputContainer {
    /// Writes a copied packet; a muxer's refusal means the input is damaged (or, with EFBIG, that
    /// the output reached the file size limit).
    func writeCopied(_ packet: Packet, stream: Int, timeBase: Rational, offset: Int64) throws(MediaError) {
        do {
            try write(packet, stream: stream, timeBase: timeBase, offset: offset)
        } catch {
            if error.isFileTooLarge { throw .outputTooLarge }
            throw .corruptInput("the video's packets cannot be copied (\(error)); the file is damaged, upload it again")
        }
    }
}

/// The muted `preview` loop: the first `VideoEncoding.previewSeconds` from where it is started.
final class PreviewEncode {
    let path: URL
    private(set) var started = false
    private(set) var finished = false
    private var startTimestamp: Int64 = 0
    private let timeBase: Rational
    private let branch: VideoEncodeBranch
    private let container: OutputContainer

    init(_ opened: Probe.Opened, path: URL, threads: Int) throws(FFmpegError) {
        self.path = path
        timeBase = opened.videoStream.timeBase
        container = try OutputContainer(path: path.path, format: "mp4")
        branch = try VideoEncodeBranch(
            encoding: .preview, video: opened.info.video, stream: opened.videoStream, container: container,
            threads: threads, declaredEnd: nil)
        try container.writeHeader(options: ["movflags": "+faststart"])
    }

    /// Starts the clip at `timestamp` (in the video stream's time base, from zero).
    func start(at timestamp: Int64) {
        started = true
        startTimestamp = timestamp
    }

    /// Encodes `frame` if it falls inside the clip; marks the clip finished past its end.
    func consume(_ frame: Frame, timestamp: Int64) throws(MediaError) {
        let relative = timestamp - startTimestamp
        guard relative >= 0 else { return }
        if Double(relative) * timeBase.doubleValue >= VideoEncoding.previewSeconds - 0.0005 {
            finished = true
            return
        }
        frame.presentationTimestamp = relative
        try branch.consume(frame)
    }

    func finish() throws {
        finished = true
        try branch.finish()
        try container.finish()
    }

    var report: EncoderReport {
        let encoding = VideoEncoding.preview
        return EncoderReport(
            path: "transcode", audioPath: nil, why: ["video encoded: the loop is its own short, muted clip"],
            codec: "h264", preset: encoding.preset, crf: encoding.crf, maxrateKbps: encoding.maxrateKbps,
            bufsizeKbps: encoding.bufsizeKbps, audioKbps: nil,
            width: branch.size.width, height: branch.size.height, fps: branch.frameRate)
    }
}

/// Scores the frames that pass the candidate times during a linear decode and keeps the best.
struct CandidateScorer {
    let times: [Double]
    let logger: Logger
    private var next = 0
    private(set) var best: Candidate?

    init(times: [Double], logger: Logger) {
        self.times = times
        self.logger = logger
    }

    /// Whether every candidate time has passed.
    var done: Bool { next >= times.count }

    /// Scores `frame` if it is the first at or past the next candidate time; returns the candidate.
    mutating func offer(_ frame: Frame, seconds: Double) throws(FFmpegError) -> Candidate? {
        guard next < times.count, seconds >= times[next] - 0.0005 else { return nil }
        while next < times.count, times[next] <= seconds + 0.0005 { next += 1 }
        return try score(frame, timeMs: Int((seconds * 1000).rounded()))
    }

    /// Scores `frame` and keeps it if it beats the best so far (the first wins ties).
    mutating func score(_ frame: Frame, timeMs: Int) throws(FFmpegError) -> Candidate {
        let candidate = try Candidate(frame, timeMs: timeMs)
        candidate.log(logger)
        if best == nil || candidate.score > best!.score { best = candidate }
        return candidate
    }
}
