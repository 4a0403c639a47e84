import Foundation
import Logging

/// COMPRESSION, PREVIEW and FULL_PROCESSING in ONE read of the input: the demuxer feeds one video
/// decoder whose frames go to every consumer (main encoder, preview encoder, thumbnail scorer),
/// each with its own filter graph and scaler, and one audio decoder feeding the AAC encoder.
/// Stream copies (remux) take the packets as read. Everything runs on the calling thread, one
/// frame at a time, so memory does not grow with the input's length.
final class SinglePass {
    /// How much lower than `video`'s an AV1 variant's SSIM may be, and the variant kept.
    static let variantSimilarityMargin = 0.005
    let opened: Probe.Opened
    let plan: Plan
    let directory: URL
    let threads: Int
    let limits: MediaLimits
    private let settings: ThumbnailSettings
    let logger: Logger

    // Set up by `prepare()`.
    var transcode: MainTranscode?
    /// Why the efficient variant was left out, for the report.
    var variantLeftOut: String?
    var remux: Remux?
    /// The efficient variant: a copy or an encode, never both.
    var variantRemux: Remux?
    var variantEncode: MainTranscode?
    var variantRole = OutputRole.videoAv1
    /// Where copied packets go, rebuilt when an output is set up or dropped.
    private var videoSinks: [CopySink] = []
    private var preview: PreviewEncode?
    private var scorer: CandidateScorer
    private var videoDecoder: StreamDecoder?
    private var audioDecoder: StreamDecoder?
    private var storyboard: StoryboardCollector?
    /// Decodes keyframes alone for the storyboard once nothing else needs the video decoded.
    private var keyframeDecoder: StreamDecoder?
    private let videoStart: Int64
    private let durationSeconds: Double
    private var budget: DecodeBudget
    private var continuity: TimestampContinuity
    private var videoDamage: DamagedPackets
    private var audioDamage: DamagedPackets
    private let frame: Frame
    private let packet: Packet
    /// More references to `packet`, when several outputs copy the same packet.
    private var spares: [Packet] = []

    init(
        _ opened: Probe.Opened, plan: Plan, directory: URL, threads: Int, limits: MediaLimits,
        settings: ThumbnailSettings, logger: Logger
    ) throws(MediaError) {
        self.opened = opened
        self.plan = plan
        self.directory = directory
        self.threads = threads
        self.limits = limits
        self.settings = settings
        self.logger = logger
        // The transcode's zero is the video's first timestamp.
        let video = opened.videoStream
        videoStart = rescale(opened.videoStartMicroseconds, from: microsecondTimeBase, to: video.timeBase)
        durationSeconds = max(0.001, Double(opened.info.durationMs ?? 0) / 1000)
        budget = DecodeBudget(limits: limits, durationMs: opened.info.durationMs)
        continuity = TimestampContinuity(opened.file, video: opened.videoStream.index)
        videoDamage = DamagedPackets(video: opened)
        audioDamage = DamagedPackets(audio: opened)
        let times =
            plan.thumbnails || plan.preview ? settings.candidateTimes(durationMs: opened.info.durationMs ?? 0) : []
        scorer = CandidateScorer(times: times, logger: logger)
        do {
            frame = try Frame()
            packet = try Packet()
        } catch {
            throw .internalFailure("could not allocate frames (\(error))")
        }
    }

    /// Makes the plan's outputs. Throws `CopyRefused` when a copy the plan chose cannot be made
    /// (the caller runs the plan again without copies).
    func run(progress: (Double) throws(MediaError) -> Void) throws -> Result {
        do {
            try prepare()
            try readAll(progress: progress)
            return try finish()
        } catch let refused as CopyRefused {
            throw refused
        } catch {
            throw MediaError.decoding(error)
        }
    }

    /// Opens the outputs, encoders and decoders the plan needs.
    private func prepare() throws {
        let input = opened.file
        let video = opened.videoStream
        input.discardAllStreams(except: Set([video.index] + (opened.audioStream.map { [$0.index] } ?? [])))
        if let encoding = plan.main, !plan.variantOnly, !plan.mainMadeElsewhere {
            // The main output: the video copied, encoded, or both (then the smaller wins); its
            // audio copied or encoded on its own account.
            let check = CopyCheck(opened.info, encoding: encoding)
            let copyVideo = plan.allowRemux && check.videoFitsPicture
            logger.debug(
                "main output",
                metadata: [
                    "video": "\(check.videoReason)", "copy": "\(copyVideo)",
                ])
            if !(copyVideo && check.videoWithinProfile) {
                transcode = try MainTranscode(
                    opened, encoding: encoding, why: plan.allowRemux ? check.videoReason : plan.noCopyReason,
                    audio: AudioTrack.Decision(opened, encoding: encoding, gainDB: plan.audioGainDB),
                    path: directory.appendingPathComponent(".video.transcode.partial"), threads: threads)
            }
            if copyVideo {
                remux = try Remux(
                    opened,
                    why: check.videoWithinProfile
                        ? "fits" : "fits the picture (\(check.videoReason)): made beside the encode",
                    audio: AudioTrack.Decision(opened, encoding: encoding, gainDB: plan.audioGainDB),
                    path: directory.appendingPathComponent(".video.remux.partial"))
            }
        }
        if let encoding = plan.main, plan.efficientVariant != .off {
            try prepareVariant(encoding)
        }
        rebuildSinks()
        if plan.preview {
            preview = try PreviewEncode(
                opened, path: directory.appendingPathComponent(".preview.partial"), threads: threads)
        }
        if decodingVideo {
            videoDecoder = try StreamDecoder(
                input: input, stream: video.index, timeBase: video.timeBase, threads: threads,
                maxPixels: limits.maxPixels, frameDuration: video.nominalFrameDuration)
        }
        if decodingAudio, let audio = opened.audioStream {
            audioDecoder = try StreamDecoder(
                input: input, stream: audio.index, timeBase: audio.timeBase, threads: 1, maxPixels: 0)
        }
        storyboard = plan.storyboard.map {
            StoryboardCollector(plan: $0, video: opened.info.video, timeBase: video.timeBase, threads: threads)
        }
        if let pieces = plan.storyboardPieces, storyboard?.adopt(pieces: pieces) == false {
            logger.warning("the pieces' storyboard tiles do not fit: taking them from keyframes")
        }
    }

    /// Whether an output has audio (so it is decoded: audio is always encoded).
    private var decodingAudio: Bool {
        [transcode?.audio, remux?.audio, variantRemux?.audio, variantEncode?.audio].contains { $0 != nil }
    }

    /// Whether decoded video is still needed: for a transcode always; for stills and the preview
    /// only until their windows have passed (a remux copies the rest without decoding).
    private var decodingVideo: Bool {
        transcode != nil || variantEncode != nil || (plan.thumbnails && !scorer.done)
            || (preview.map { !$0.finished } ?? false)
    }

    private func readAll(progress: (Double) throws(MediaError) -> Void) throws {
        let video = opened.videoStream
        let input = opened.file
        var replay = ReplayCheck(fileBytes: opened.info.sizeBytes)
        while try input.read(into: packet) {
            try replay.count(packet.size, stream: packet.streamIndex)
            if packet.streamIndex == video.index {
                continuity.mend(packet, timeBase: video.timeBase)
                if decodingVideo, let videoDecoder {
                    try videoDecoder.decode(packet, into: frame, damage: &videoDamage) {
                        try takeVideoFrame(progress: progress)
                    }
                } else if let timestamp = packet.timestamp {
                    let seconds = Double(timestamp - videoStart) * video.timeBase.doubleValue
                    try budget.check(seconds: seconds)
                    try progress(min(0.99, seconds / durationSeconds))
                    if packet.isKeyframe, storyboard?.wants(seconds) == true {
                        try decodeKeyframe(packet)
                    }
                }
                try copyVideo(packet)
            } else if let audio = opened.audioStream, packet.streamIndex == audio.index {
                continuity.mend(packet, timeBase: audio.timeBase)
                if let audioDecoder {
                    try audioDecoder.decode(packet, into: frame, damage: &audioDamage) { try takeAudioFrame() }
                }
            }
            if videoSinks.isEmpty && !decodingVideo && !decodingAudio && storyboard?.wants(.infinity) != true { break }
        }
        if decodingVideo, let videoDecoder {
            try videoDecoder.decode(nil, into: frame, damage: &videoDamage) { try takeVideoFrame(progress: progress) }
        }
        if let audioDecoder {
            try audioDecoder.decode(nil, into: frame, damage: &audioDamage) { try takeAudioFrame() }
        }
    }

    /// A place copied packets go, and what becomes of it when it refuses one.
    private struct CopySink {
        let write: (Packet) throws(MediaError) -> Void
        let refused: (String) throws -> Void
    }

    /// Lists where copied video packets go: the outputs that copy the video. A refusal by the main
    /// copy drops it (or, without an encode beside it, refuses the plan); by the variant, drops the
    /// variant.
    private func rebuildSinks() {
        let dropRemux: (String) throws -> Void = { [unowned self] in try self.dropRemux($0) }
        let dropVariant: (String) throws -> Void = { [unowned self] in self.dropVariant($0) }
        videoSinks = [(remux, dropRemux), (variantRemux, dropVariant)].compactMap { output, refused in
            output.map { CopySink(write: $0.writeVideo, refused: refused) }
        }
    }

    private func copyVideo(_ packet: Packet) throws { try fanOut(packet, to: videoSinks) }

    /// Writes `packet` to every sink; writing consumes a packet, so all but the last get a
    /// reference of their own.
    private func fanOut(_ packet: Packet, to sinks: [CopySink]) throws {
        for (index, sink) in sinks.enumerated() {
            var copy = packet
            if index < sinks.count - 1 {
                if spares.count <= index { spares.append(try Packet()) }
                copy = spares[index]
                try copy.reference(packet)
            }
            do {
                try sink.write(copy)
            } catch {
                guard case .corruptInput(let reason) = error else { throw error }
                try sink.refused(reason)
            }
        }
    }

    /// A packet the muxer refuses (a stream whose picture size or audio format changes mid-way)
    /// ends the copy: the encode made alongside wins, and without one the caller encodes instead
    /// (`CopyRefused`).
    private func dropRemux(_ reason: String) throws {
        guard let remux else { return }
        logger.info("the stream cannot be copied; it is encoded instead", metadata: ["why": "\(reason)"])
        self.remux = nil
        try? FileManager.default.removeItem(at: remux.path)
        rebuildSinks()
        if transcode == nil { throw CopyRefused(reason: reason) }
    }

    /// The variant is optional: one that cannot be made is left out, and the job goes on.
    func dropVariant(_ reason: String) {
        logger.info("the efficient variant is left out", metadata: ["why": "\(reason)"])
        variantLeftOut = reason
        for path in [variantRemux?.path, variantEncode?.path].compactMap({ $0 }) {
            try? FileManager.default.removeItem(at: path)
        }
        (variantRemux, variantEncode) = (nil, nil)
        rebuildSinks()
    }

    /// The copy the plan chose failed part-way (why): encode instead.
    struct CopyRefused: Error {
        let reason: String
    }

    private func takeVideoFrame(progress: (Double) throws(MediaError) -> Void) throws {
        guard let timestamp = frame.timestamp else { return }
        let shifted = timestamp - videoStart
        let seconds = Double(shifted) * opened.videoStream.timeBase.doubleValue
        try budget.charge(width: frame.width, height: frame.height, seconds: seconds)
        try storyboard?.offer(frame, seconds: seconds)
        if let preview, !preview.started {
            if let candidate = try scorer.offer(frame, seconds: seconds), !candidate.score.isUnusable {
                preview.start(at: shifted)  // the first usable candidate: not a black opening
            } else if scorer.done {
                preview.start(at: shifted)  // no usable candidate at all: start after the last one
            }
        } else {
            _ = try scorer.offer(frame, seconds: seconds)
        }
        if let preview, preview.started, !preview.finished {
            try preview.consume(frame, timestamp: shifted)
        }
        for encode in [transcode, variantEncode].compactMap({ $0 }) {
            frame.presentationTimestamp = shifted
            try encode.video.consume(frame)
        }
        try progress(min(0.99, seconds / durationSeconds))
    }

    /// A keyframe of a video nothing else decodes any more, for the storyboard alone.
    private func decodeKeyframe(_ packet: Packet) throws {
        let video = opened.videoStream
        if keyframeDecoder == nil {
            keyframeDecoder = try StreamDecoder(
                input: opened.file, stream: video.index, timeBase: video.timeBase, threads: threads,
                maxPixels: limits.maxPixels, frameDuration: video.nominalFrameDuration)
        }
        // Each keyframe on its own, as the first picture of a stream: decoded, drained, and the
        // decoder flushed (an HEVC CRA fed after another from a different GOP clashes with it).
        guard let keyframeDecoder else { return }
        try keyframeDecoder.decode(packet, into: frame, damage: &videoDamage) { try takeKeyframe() }
        try keyframeDecoder.decode(nil, into: frame, damage: &videoDamage) { try takeKeyframe() }
        keyframeDecoder.flush()
    }

    private func takeKeyframe() throws {
        guard let timestamp = frame.timestamp else { return }
        let seconds = Double(timestamp - videoStart) * opened.videoStream.timeBase.doubleValue
        try budget.charge(width: frame.width, height: frame.height, seconds: seconds)
        try storyboard?.offer(frame, seconds: seconds)
    }

    private func takeAudioFrame() throws {
        for track in [transcode?.audio, remux?.audio, variantRemux?.audio, variantEncode?.audio] {
            try track?.consume(frame)
        }
    }

    private func finish() throws -> Result {
        var result = Result()
        if videoDamage.skipped + audioDamage.skipped > 0 {
            result.damage = DamageReport(
                videoPacketsSkipped: videoDamage.skipped, audioPacketsSkipped: audioDamage.skipped)
            logger.warning("skipped undecodable packets", metadata: ["damage": "\(result.damage!)"])
        }
        if let preview {
            // The video ended before the preview could start: the preview is its beginning.
            if !preview.started { try encodePreviewFromStart(preview) }
            try preview.finish()
            result.previewPath = preview.path
            result.previewEncoder = preview.report
        }
        try transcode?.finish()
        try remux?.finish()
        (result.mainPath, result.mainEncoder) = chooseMain()
        result.variant = try finishVariant(mainPath: result.mainPath)
        if let variantLeftOut { result.mainEncoder?.why.append("\(variantRole.rawValue) left out: \(variantLeftOut)") }
        result.variantLeftOut = variantLeftOut
        if let times = continuity.jumpsDescription {
            logger.info("the input's timestamps jump: what follows plays after it", metadata: ["at": "\(times)"])
            result.mainEncoder?.why.append("the input's timestamps jump at \(times): what follows plays after it")
        }
        result.storyboard = try storyboard?.write(to: directory, durationSeconds: durationSeconds) ?? []
        if plan.thumbnails {
            guard let best = scorer.best else {
                throw MediaError.corruptInput("no video frame could be decoded; the file is damaged, upload it again")
            }
            result.stills = try StillWriter(settings: settings, threads: threads)
                .write(best, video: opened.info.video, timeBase: opened.videoStream.timeBase, to: directory)
        }
        return result
    }

    /// Seeks back to the start and feeds the preview its first seconds.
    private func encodePreviewFromStart(_ preview: PreviewEncode) throws {
        let reader = try VideoFrameReader(opened, threads: threads, limits: limits)
        try reader.seek(toKeyframeBefore: opened.videoStream.startTime ?? 0)
        preview.start(at: 0)
        while !preview.finished, try reader.next(into: frame), let timestamp = frame.timestamp {
            try preview.consume(frame, timestamp: timestamp - videoStart)
        }
    }
}
