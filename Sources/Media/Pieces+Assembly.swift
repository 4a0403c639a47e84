import Foundation
import Logging

/// The main video made of pieces, on this machine or from a fleet's pieces: the pieces encoded
/// one after another (`process --pieces`), then the audio made once and the join.
extension Pieces {
    /// What the main video made of pieces follows: the upload it comes from, how its video is
    /// encoded, the gain its audio gets, the staging folder and the limits every file opened obeys.
    struct Assembly {
        let source: String
        let encoding: VideoEncoding
        let audioGainDB: Double
        let directory: URL
        let limits: MediaLimits
    }

    /// The main video of `assembly.source` made in pieces of about `seconds`, one after another,
    /// then the audio and the join: what a fleet does in parallel, on this machine (`process
    /// --pieces`). Nil when the video makes one piece only (then one pass makes it).
    static func encodeAll(
        _ assembly: Assembly, seconds: Double, threads: Int, storyboard: StoryboardPlan? = nil, logger: Logger,
        progress: (Double) throws(MediaError) -> Void
    ) throws(MediaError) -> (path: URL, report: EncoderReport, tiles: [[UInt8]]?)? {
        let (path, encoding, directory, limits) = (
            assembly.source, assembly.encoding, assembly.directory, assembly.limits
        )
        let opened = try Probe.open(path: path, limits: limits)
        let stream = opened.videoStream
        let spans = try spans(opened, seconds: seconds)
        guard spans.count > 1 else { return nil }
        logger.info(
            "encoding in pieces",
            metadata: ["pieces": "\(spans.count)", "decodedBeforeCut": "\(spans.filter { !$0.onKeyframe }.count)"])
        var files: [URL] = []
        var tiles: [[UInt8]] = []
        defer { for file in files { try? FileManager.default.removeItem(at: file) } }
        for (index, span) in spans.enumerated() {
            let file = directory.appendingPathComponent(".piece-\(index).mp4")
            files.append(file)
            let startSeconds = Double(span.start) * stream.timeBase.doubleValue
            try timed("video", ["piece": "\(index)", "start": "\(startSeconds)"], logger: logger) {
                () throws(MediaError) in
                let piece = try encodeVideo(
                    try Probe.open(path: path, limits: limits), span: span, encoding: encoding, path: file,
                    threads: threads, limits: limits, storyboard: storyboard
                ) { fraction throws(MediaError) in try progress((Double(index) + fraction) / Double(spans.count)) }
                if let piece { tiles.append(piece) }
            }
        }
        let (joined, report) = try assemble(files, assembly, logger: logger)
        return (joined, report, storyboard == nil ? nil : tiles)
    }

    /// The main video from its encoded `pieces` (in order): the audio of the source made once,
    /// then the join; the report says how it was made.
    static func assemble(
        _ pieces: [URL], _ assembly: Assembly, logger: Logger
    ) throws(MediaError) -> (path: URL, report: EncoderReport) {
        let (encoding, directory) = (assembly.encoding, assembly.directory)
        let opened = try Probe.open(path: assembly.source, limits: assembly.limits)
        let info = opened.info
        let audioFile = directory.appendingPathComponent(".audio.mp4")
        defer { try? FileManager.default.removeItem(at: audioFile) }
        let audio = try timed("audio", logger: logger) { () throws(MediaError) in
            try encodeAudio(opened, encoding: encoding, gainDB: assembly.audioGainDB, path: audioFile)
        }
        let joined = directory.appendingPathComponent(".video.pieces.partial")
        try timed("join", logger: logger) { () throws(MediaError) in
            try join(pieces: pieces, audio: audio == nil ? nil : audioFile, to: joined)
        }
        let size = encoding.outputSize(width: info.video.width, height: info.video.height)
        let report = EncoderReport(
            path: "transcode", audioPath: audio?.path,
            why: ["video encoded in \(pieces.count) pieces, joined without re-encoding"]
                + (audio.map { [$0.why] } ?? []),
            codec: encoding.codec.rawValue, preset: encoding.preset, crf: encoding.crf,
            maxrateKbps: encoding.maxrateKbps, bufsizeKbps: encoding.bufsizeKbps, audioKbps: audio?.kilobitsPerSecond,
            width: size.width, height: size.height, fps: info.video.frameRate.map { min($0, encoding.fpsMax) })
        return (joined, report)
    }

    /// Runs one step, logging its wall and CPU time: what a fleet's critical path is made of.
    fileprivate static func timed<R>(
        _ step: String, _ metadata: Logger.Metadata = [:], logger: Logger, _ body: () throws(MediaError) -> R
    ) throws(MediaError) -> R {
        let (started, cpu) = (ContinuousClock.now, ProcessCPU.seconds())
        let result = try body()
        logger.debug(
            "piece step done",
            metadata: metadata.merging([
                "step": "\(step)", "seconds": "\((ContinuousClock.now - started) / .seconds(1))",
                "cpuSeconds": "\(ProcessCPU.seconds() - cpu)",
            ]) { $1 })
        return result
    }
}
