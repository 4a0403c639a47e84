import CFFmpeg
import Foundation
import Logging

/// THUMBNAIL: picks a representative frame near the start and writes it as an upright SDR
/// `poster` and `thumbnail` JPEG, with a BlurHash of it.
///
/// Candidates are reached by seeking to the keyframe before each candidate time and decoding
/// forward a bounded number of frames, so a one-hour input costs what a ten-second one does.
public struct ThumbnailSettings: Sendable, Equatable {
    /// Longest side of the poster (never upscaled).
    public var posterMaxSide = 1280
    /// Longest side of the thumbnail (never upscaled).
    public var thumbnailMaxSide = 320
    /// How many candidate frames are scored.
    public var candidates = 6
    /// Candidates are spread over this many seconds from the start (or the whole video if shorter).
    public var searchSeconds = 30.0
    /// Frames decoded past a keyframe, at most, to reach a candidate time.
    public var maxFramesPerCandidate = 90
    /// JPEG quality on FFmpeg's `-q:v` scale (2 best … 31 worst).
    public var jpegQuality = 3

    public init() {}
}

struct Thumbnailer {
    let settings: ThumbnailSettings
    let threads: Int
    let logger: Logger

    /// The chosen frame, upright and tone-mapped, as written.
    struct Result {
        let poster: StillImage
        let thumbnail: StillImage
    }

    func run(
        _ opened: Probe.Opened, outputDirectory: URL, limits: MediaLimits, progress: (Double) -> Void
    ) throws(MediaError) -> Result {
        let chosen: (frame: Frame, timeMs: Int)
        let reader: VideoFrameReader
        do {
            reader = try VideoFrameReader(
                input: opened.file, stream: opened.videoStream, threads: threads, maxPixels: limits.maxPixels)
            chosen = try chooseFrame(reader, durationMs: opened.info.durationMs ?? 0, progress: progress)
        } catch let error as MediaError {
            throw error
        } catch {
            throw MediaError.decoding(error)
        }
        let transform = DisplayTransform(video: opened.info.video)
        let upright: Frame
        do {
            upright = try transform.apply(to: chosen.frame, timeBase: reader.stream.timeBase, threads: threads)
        } catch {
            throw .internalFailure("could not turn the frame upright or tone-map it (\(error))")
        }
        let display = opened.info.video
        let blurhash: String
        do {
            let small = fit(width: display.width, height: display.height, maxSide: 48)
            blurhash = BlurHash.encode(
                try Scaler(source: upright, width: small.width, height: small.height, format: AV_PIX_FMT_RGB24)
                    .scale(upright).packedBitmap())
        } catch {
            throw .internalFailure("could not scale the frame for its BlurHash (\(error))")
        }
        let poster = try write(
            upright, role: "poster",
            size: fit(width: display.width, height: display.height, maxSide: settings.posterMaxSide),
            timeMs: chosen.timeMs, blurhash: blurhash, to: outputDirectory)
        let thumbnail = try write(
            upright, role: "thumbnail",
            size: fit(width: display.width, height: display.height, maxSide: settings.thumbnailMaxSide),
            timeMs: chosen.timeMs, blurhash: blurhash, to: outputDirectory)
        progress(1)
        return Result(poster: poster, thumbnail: thumbnail)
    }

    /// Scores candidates spread over the start of the video and returns the best, or the first
    /// decodable frame when none is usable.
    private func chooseFrame(
        _ reader: VideoFrameReader, durationMs: Int, progress: (Double) -> Void
    ) throws -> (frame: Frame, timeMs: Int) {
        let window = min(Double(durationMs) / 1000, settings.searchSeconds)
        let count = window < 0.5 ? 1 : settings.candidates
        var best: (frame: Frame, timeMs: Int, score: FrameScore)?
        var seen: Set<Int64> = []
        for candidate in 0..<count {
            let target = reader.timestamp(atSeconds: window * Double(candidate) / Double(count))
            progress(Double(candidate) / Double(count + 1))
            guard let frame = try decodeFrame(reader, at: target), let timestamp = frame.timestamp,
                seen.insert(timestamp).inserted
            else { continue }
            let score = FrameScore(
                try Scaler(source: frame, width: 64, height: 64, format: AV_PIX_FMT_GRAY8).scale(frame).packedBitmap())
            let timeMs = reader.milliseconds(of: timestamp)
            logger.debug(
                "thumbnail candidate",
                metadata: [
                    "timeMs": "\(timeMs)", "mean": "\(Int(score.mean))", "contrast": "\(Int(score.deviation))",
                    "edges": "\(Int(score.edges))", "usable": "\(!score.isUnusable)",
                ])
            if best == nil || score > best!.score { best = (frame, timeMs, score) }
        }
        guard let best else {
            throw MediaError.corruptInput("no video frame could be decoded; the file is damaged, upload it again")
        }
        return (best.frame, best.timeMs)
    }

    /// The first frame at or after `target`, decoding at most `maxFramesPerCandidate` frames past
    /// the keyframe before it (then the last one decoded); nil when nothing decodes there.
    private func decodeFrame(_ reader: VideoFrameReader, at target: Int64) throws(FFmpegError) -> Frame? {
        try reader.seek(toKeyframeBefore: target)
        var latest: Frame?
        for _ in 0..<settings.maxFramesPerCandidate {
            let frame = try Frame()
            guard try reader.next(into: frame) else { break }
            latest = frame
            if let timestamp = frame.timestamp, timestamp >= target { break }
        }
        return latest
    }

    /// Scales the upright frame to `size`, encodes it as JPEG and writes `<role>.jpg` atomically.
    private func write(
        _ frame: Frame, role: String, size: (width: Int, height: Int), timeMs: Int, blurhash: String,
        to directory: URL
    ) throws(MediaError) -> StillImage {
        let jpeg: [UInt8]
        do {
            // Through RGB: the source's own matrix in, JPEG's BT.601 full range out.
            let rgbFrame = try Scaler(source: frame, width: size.width, height: size.height, format: AV_PIX_FMT_RGB24)
                .scale(frame)
            let yuv = try Scaler(source: rgbFrame, width: size.width, height: size.height, format: AV_PIX_FMT_YUVJ420P)
                .scale(rgbFrame)
            jpeg = try ImageEncoder.jpeg(yuv, quality: settings.jpegQuality)
        } catch {
            throw .internalFailure("could not encode the \(role) JPEG (\(error))")
        }
        let file = directory.appendingPathComponent("\(role).jpg")
        do {
            try Data(jpeg).write(to: file, options: .atomic)
        } catch {
            throw .outputUnwritable(path: file.path, reason: error.localizedDescription)
        }
        return StillImage(
            role: role, path: file.lastPathComponent, width: size.width, height: size.height, bytes: jpeg.count,
            timeMs: timeMs, mimeType: "image/jpeg", blurhash: blurhash)
    }
}

extension MediaError {
    /// A failure while demuxing or decoding the input: damaged data is the input's fault,
    /// anything else is ours.
    static func decoding(_ error: any Error) -> MediaError {
        if let error = error as? FFmpegError, error.isInvalidData || error.isEndOfFile {
            return .corruptInput("the video cannot be decoded (\(error)); the file is damaged, upload it again")
        }
        return .internalFailure("decoding failed (\(error))")
    }
}
