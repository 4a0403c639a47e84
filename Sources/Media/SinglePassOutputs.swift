import Foundation
import Logging

/// The main `video` output as a transcode: libx264 video and, when the source has audio, AAC,
/// into an MP4 with its index first (faststart).
final class MainTranscode {
    let path: URL
    let encoding: VideoEncoding
    let video: VideoEncodeBranch
    let audio: AudioEncodeBranch?
    private let container: OutputContainer

    init(_ opened: Probe.Opened, encoding: VideoEncoding, path: URL, threads: Int) throws(FFmpegError) {
        self.path = path
        self.encoding = encoding
        container = try OutputContainer(path: path.path, format: "mp4")
        video = try VideoEncodeBranch(
            encoding: encoding, video: opened.info.video, stream: opened.videoStream, container: container,
            threads: threads, declaredEnd: opened.videoEnd)
        if let source = opened.info.audio {
            audio = try AudioEncodeBranch(
                audio: source, kilobitsPerSecond: encoding.audioKbps ?? 128, container: container)
        } else {
            audio = nil
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
            path: "transcode", codec: "h264", preset: encoding.preset, crf: encoding.crf,
            maxrateKbps: encoding.maxrateKbps, bufsizeKbps: encoding.bufsizeKbps,
            audioKbps: audio.map { $0.bitsPerSecond / 1000 }, width: video.size.width, height: video.size.height,
            fps: video.frameRate)
    }
}

/// The main `video` output as a remux: the source's H.264 and AAC packets copied into an MP4
/// with faststart and none of the source's tags. Nothing of the uploader rides along: SEI units
/// (free text a camera or a person wrote into the stream, GPS from drones and dashcams, the
/// source encoder's settings) are filtered out of every video packet, and the display matrix is
/// one made here for the exact rotation, not the source's bytes.
final class Remux {
    let path: URL
    private let container: OutputContainer
    /// Input stream index → (output stream index, input time base, offset to start at zero).
    private var streams: [Int: (index: Int, timeBase: Rational, offset: Int64)] = [:]
    private var filters: [Int: BitstreamFilter] = [:]
    private var lastDecodingTimestamps: [Int: Int64] = [:]

    init(_ opened: Probe.Opened, path: URL) throws(FFmpegError) {
        self.path = path
        container = try OutputContainer(path: path.path, format: "mp4")
        let start = opened.file.startMicroseconds
        let video = opened.videoStream
        if let units = Self.seiUnits[opened.info.video.codec] {
            filters[video.index] = try BitstreamFilter(
                "filter_units", options: ["remove_types": units], input: opened.file, stream: video.index)
        }
        for stream in [video] + (opened.audioStream.map { [$0] } ?? []) {
            let index = try container.addStream(
                copying: opened.file, stream: stream.index, filter: filters[stream.index],
                clockwiseQuarterTurns: stream.index == video.index ? opened.info.video.rotation / 90 : 0)
            streams[stream.index] = (
                index, stream.timeBase, rescale(start, from: microsecondTimeBase, to: stream.timeBase)
            )
        }
        try container.writeHeader(options: ["movflags": "+faststart"])
    }

    /// NAL unit types that carry SEI, by codec (H.264: 6; HEVC: prefix and suffix SEI).
    static let seiUnits = ["h264": "6", "hevc": "39|40"]

    /// Copies one packet of input stream `stream` (and consumes it). Timestamps a muxer would
    /// refuse (missing, going backwards, absurd durations) are mended as `ffmpeg -c copy` mends
    /// them; a packet that still cannot be written means the input is damaged.
    func write(_ packet: Packet, stream: Int) throws(MediaError) {
        guard let target = streams[stream] else { return }
        do {
            if let filter = filters[stream], try !filter.filter(packet) { return }
        } catch {
            throw .corruptInput("the video's packets cannot be read for copying (\(error)); upload it again")
        }
        packet.mendTimestamps(after: lastDecodingTimestamps[stream])
        lastDecodingTimestamps[stream] = packet.decodingTimestamp
        do {
            try container.write(packet, stream: target.index, timeBase: target.timeBase, offset: target.offset)
        } catch {
            if error.isFileTooLarge { throw .outputTooLarge }
            throw .corruptInput("the video's packets cannot be copied (\(error)); the file is damaged, upload it again")
        }
    }

    func finish() throws(FFmpegError) { try container.finish() }

    func report(_ info: MediaInfo) -> EncoderReport {
        EncoderReport(
            path: "remux", codec: "h264", preset: nil, crf: nil, maxrateKbps: nil, bufsizeKbps: nil,
            audioKbps: info.audio?.bitRate.map { Int($0 / 1000) }, width: info.video.width,
            height: info.video.height, fps: info.video.frameRate)
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
            path: "transcode", codec: "h264", preset: encoding.preset, crf: encoding.crf,
            maxrateKbps: encoding.maxrateKbps, bufsizeKbps: encoding.bufsizeKbps, audioKbps: nil,
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
