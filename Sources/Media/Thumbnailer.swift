import Foundation
import JobVocabulary
import Logging

/// How THUMBNAIL picks and writes its frame.
public struct ThumbnailSettings: Sendable, Equatable, Codable {
    /// Longest side of the poster (never upscaled).
    public var posterMaxSide = 1280
    /// Longest side of the thumbnail (never upscaled).
    public var thumbnailMaxSide = 320
    /// How many candidate frames are scored.
    public var candidates = 6
    /// Candidates are spread over this many seconds from the start (or the whole video if shorter).
    public var searchSeconds = 30.0
    /// Frames decoded past a keyframe, at most, to reach a candidate time when seeking.
    public var maxFramesPerCandidate = 90
    /// JPEG quality on FFmpeg's `-q:v` scale (2 best … 31 worst).
    public var jpegQuality = 3

    public init() {}

    /// Candidate times in seconds from the start, for a video lasting `durationMs`.
    func candidateTimes(durationMs: Int) -> [Double] {
        let window = min(Double(durationMs) / 1000, searchSeconds)
        let count = window < 0.5 ? 1 : candidates
        return (0..<count).map { window * Double($0) / Double(count) }
    }
}

/// A scored candidate frame.
struct Candidate {
    let frame: Frame
    let timeMs: Int
    let score: FrameScore

    /// Scores `frame` (a reference to it is kept, so the caller may reuse its own `Frame`).
    init(_ frame: Frame, timeMs: Int) throws(FFmpegError) {
        let kept = try Frame()
        try kept.reference(frame)
        self.frame = kept
        self.timeMs = timeMs
        let gray = try Scaler(source: frame, width: 64, height: 64, layout: .gray).scale(frame)
        score = FrameScore(gray.packedBitmap())
    }

    func log(_ logger: Logger) {
        logger.debug(
            "thumbnail candidate",
            metadata: [
                "timeMs": "\(timeMs)", "mean": "\(Int(score.mean))", "contrast": "\(Int(score.deviation))",
                "edges": "\(Int(score.edges))", "usable": "\(!score.isUnusable)",
            ])
    }
}

/// THUMBNAIL on its own: reaches candidates by seeking to the keyframe before each candidate
/// time and decoding forward a bounded number of frames, so a one-hour input costs what a
/// ten-second one does.
struct Thumbnailer {
    let settings: ThumbnailSettings
    let threads: Int
    let logger: Logger

    func run(
        _ opened: Probe.Opened, outputDirectory: URL, limits: MediaLimits, progress: (Double) -> Void
    ) throws(MediaError) -> [OutputFile] {
        let best = try choose(opened, limits: limits, progress: progress)
        let stills = try StillWriter(settings: settings, threads: threads)
            .write(best, video: opened.info.video, timeBase: opened.videoStream.timeBase, to: outputDirectory)
        progress(1)
        return stills
    }

    /// Scores the candidates; the best wins, or the first decodable frame when none is usable.
    /// The keyframes before the candidate times come first (one decode each: a chat's picture in
    /// a fraction of a second); only when none of them is usable (a black or flat opening in one
    /// long group of pictures) are the candidate times themselves decoded to.
    func choose(
        _ opened: Probe.Opened, limits: MediaLimits, progress: (Double) -> Void
    ) throws(MediaError) -> Candidate {
        do {
            let reader = try VideoFrameReader(opened, threads: threads, limits: limits)
            let times = settings.candidateTimes(durationMs: opened.info.durationMs ?? 0)
            var scorer = CandidateScorer(times: times, logger: logger)
            for framesPerCandidate in [1, settings.maxFramesPerCandidate] {
                var seen: Set<Int64> = []
                for (position, time) in times.enumerated() {
                    progress(Double(position) / Double(times.count + 1))
                    let target = reader.timestamp(atSeconds: time)
                    guard let frame = try decodeFrame(reader, at: target, frames: framesPerCandidate),
                        let timestamp = frame.timestamp, seen.insert(timestamp).inserted
                    else { continue }
                    _ = try scorer.score(frame, timeMs: reader.milliseconds(of: timestamp))
                }
                if let best = scorer.best, !best.score.isUnusable { break }
            }
            guard let best = scorer.best else {
                throw MediaError.corruptInput("no video frame could be decoded; the file is damaged, upload it again")
            }
            return best
        } catch let error as MediaError {
            throw error
        } catch {
            throw MediaError.decoding(error)
        }
    }

    /// The first frame at or after `target`, decoding at most `frames` frames from the keyframe
    /// before it (then the last one decoded); nil when nothing decodes there.
    private func decodeFrame(_ reader: VideoFrameReader, at target: Int64, frames: Int) throws -> Frame? {
        try reader.seek(toKeyframeBefore: target)
        let frame = try Frame()
        var decodedAny = false
        for _ in 0..<frames {
            guard try reader.next(into: frame) else { break }
            decodedAny = true
            if let timestamp = frame.timestamp, timestamp >= target { break }
        }
        return decodedAny ? frame : nil
    }
}

/// Writes a chosen frame as the `poster` and `thumbnail` JPEGs: upright, tone-mapped, scaled
/// with the source's colour matrix, with one BlurHash for both.
struct StillWriter {
    let settings: ThumbnailSettings
    let threads: Int

    func write(
        _ candidate: Candidate, video: VideoInfo, timeBase: Rational, to directory: URL
    ) throws(MediaError) -> [OutputFile] {
        let upright: Frame
        let blurhash: String
        do {
            upright = try DisplayTransform(video: video).apply(
                to: candidate.frame, timeBase: timeBase, threads: threads)
            let small = fit(width: video.width, height: video.height, maxSide: 48)
            blurhash = BlurHash.encode(
                try Scaler(source: upright, width: small.width, height: small.height, layout: .rgb)
                    .scale(upright).packedBitmap())
        } catch {
            throw .internalFailure("could not turn the chosen frame upright and into RGB (\(error))")
        }
        return try [(OutputRole.poster, settings.posterMaxSide), (.thumbnail, settings.thumbnailMaxSide)].map {
            (role, maxSide) throws(MediaError) in
            let size = fit(width: video.width, height: video.height, maxSide: maxSide)
            return try write(
                upright, role: role, size: size, timeMs: candidate.timeMs, blurhash: blurhash, to: directory)
        }
    }

    /// Scales the upright frame to `size`, encodes it as JPEG and writes `<role>.jpg` atomically.
    private func write(
        _ frame: Frame, role: OutputRole, size: (width: Int, height: Int), timeMs: Int, blurhash: String,
        to directory: URL
    ) throws(MediaError) -> OutputFile {
        let jpeg: [UInt8]
        do {
            // Through RGB: the source's own matrix in, JPEG's BT.601 full range out.
            let rgb = try Scaler(source: frame, width: size.width, height: size.height, layout: .rgb)
                .scale(frame)
            let yuv = try Scaler(source: rgb, width: size.width, height: size.height, layout: .jpegYUV)
                .scale(rgb)
            jpeg = try ImageEncoder.jpeg(yuv, quality: settings.jpegQuality)
        } catch {
            throw .internalFailure("could not encode the \(role) JPEG (\(error))")
        }
        do {
            try Data(jpeg).write(to: directory.appendingPathComponent(role.fileName), options: .atomic)
        } catch {
            throw .outputUnwritable(reason: "\(role.fileName): \(systemReason(error))")
        }
        return OutputFile(
            still: role, width: size.width, height: size.height, bytes: jpeg.count, timeMs: timeMs, blurhash: blurhash)
    }
}

extension MediaError {
    /// A failure while demuxing or decoding the input. What the input's bytes cause (damaged
    /// data, a feature the decoder lacks, a read past the end) is the input's fault; out of
    /// memory is `limits_exceeded`; anything else is ours, and says which call failed.
    static func decoding(_ error: any Error) -> MediaError {
        if let error = error as? MediaError { return error }
        guard let error = error as? FFmpegError else { return .internalFailure("decoding failed (\(error))") }
        if error.isOutOfMemory { return .outOfMemory(error) }
        if error.isFileTooLarge { return .outputTooLarge }
        if error.isNotImplemented {
            return .unsupported(
                "the video uses a feature FFmpeg's decoder does not implement (\(error.text)); re-export it as H.264")
        }
        if error.isInvalidData || error.isEndOfFile || inputCalls.contains(error.call) {
            return .corruptInput("the video cannot be decoded (\(error)); the file is damaged, upload it again")
        }
        return .internalFailure("decoding failed (\(error))")
    }

    /// The calls whose failures come from the input's bytes.
    private static let inputCalls: Set<String> = [
        "av_read_frame", "av_seek_frame", "av_seek_frame(byte 0)", "avcodec_send_packet", "avcodec_receive_frame",
    ]
}
