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
    /// Which outputs this pass makes.
    struct Plan {
        var main: VideoEncoding?
        var preview: Bool
        var thumbnails: Bool
        var allowRemux: Bool
        /// Why nothing is copied when `allowRemux` is false (for the report).
        var noCopyReason = "copies are off"
        /// Beside the main video: a copy of an upload that already is HEVC or AV1 and fits
        /// (`video_hevc`, `video_av1`), unless `.off`; with `.always`, an encode with
        /// `variantEncoding` when there is no such copy.
        var efficientVariant = MediaProcessor.EfficientVariant.whenFree
        var variantEncoding: VideoEncoding?
        /// Only the variant (background work on a result made earlier), kept when smaller than
        /// `variantSmallerThan` bytes (the `video` made then).
        var variantOnly = false
        var variantSmallerThan: Int?
        /// The main video a variant made alone is compared with (nil: none at hand).
        var variantComparedWith: URL?
        /// The main video was made elsewhere (in pieces): `main` only says what the variant
        /// copy must fit, and the variant must be smaller than `variantSmallerThan`.
        var mainMadeElsewhere = false
        /// The gain that levels every output's audio, in dB (0: none).
        var audioGainDB = 0.0
        /// A storyboard for scrubbing, from the frames this pass decodes (nil: none).
        var storyboard: StoryboardPlan?
        /// The storyboard's tiles the pieces of a long video made, in order (nil: none; then this
        /// pass takes them from keyframes).
        var storyboardPieces: [[UInt8]]?
    }

    /// What the pass wrote, before the caller names the files.
    struct Result {
        var mainPath: URL?
        var mainEncoder: EncoderReport?
        var previewPath: URL?
        var previewEncoder: EncoderReport?
        var variant: (role: OutputRole, path: URL, encoder: EncoderReport)?
        var stills: [OutputFile] = []
        /// Why the variant planned was left out (nil: none was).
        var variantLeftOut: String?
        /// The storyboard's sprite and cues, already in the folder (empty: none).
        var storyboard: [OutputFile] = []
        var damage: DamageReport?
    }

    private let opened: Probe.Opened
    private let plan: Plan
    private let directory: URL
    private let threads: Int
    private let limits: MediaLimits
    private let settings: ThumbnailSettings
    private let logger: Logger

    // Set up by `prepare()`.
    private var transcode: MainTranscode?
    /// Why the efficient variant was left out, for the report.
    private var variantLeftOut: String?
    private var remux: Remux?
    /// The efficient variant: a copy or an encode, never both.
    private var variantRemux: Remux?
    private var variantEncode: MainTranscode?
    private var variantRole = OutputRole.videoAv1
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

    /// The efficient variant: a copy of an HEVC or AV1 upload that fits the profile as the main
    /// copy would (tagged `hvc1` for Apple's players), else, when asked for always, an AV1 encode
    /// in this same decode.
    private func prepareVariant(_ encoding: VideoEncoding) throws {
        let info = opened.info
        let copyRole: OutputRole? = ["hevc": .videoHevc, "av1": .videoAv1][info.video.codec]
        if plan.allowRemux, let copyRole {
            let check = CopyCheck(info, encoding: encoding, videoCodec: info.video.codec)
            if check.videoWithinProfile {
                variantRole = copyRole
                variantRemux = try Remux(
                    opened, why: "the upload's \(info.video.codec) fits",
                    audio: AudioTrack.Decision(opened, encoding: encoding, gainDB: plan.audioGainDB),
                    path: directory.appendingPathComponent(".\(copyRole.rawValue).partial"))
                return
            }
            logger.debug("the upload's own codec is not copied", metadata: ["why": "\(check.videoReason)"])
        }
        guard plan.efficientVariant == .always, let variantEncoding = plan.variantEncoding else { return }
        variantRole = .videoAv1
        // Optional work never costs the job: sizes SVT-AV1 refuses are not tried, and an encoder
        // that cannot start leaves the variant out, with why.
        let size = variantEncoding.outputSize(width: info.video.width, height: info.video.height)
        guard (64...16384).contains(size.width), (64...16384).contains(size.height) else {
            dropVariant("SVT-AV1 takes pictures of 64 to 16384 pixels a side, not \(size.width)x\(size.height)")
            return
        }
        do {
            variantEncode = try MainTranscode(
                opened, encoding: variantEncoding, why: "asked for",
                audio: AudioTrack.Decision(opened, encoding: variantEncoding, gainDB: plan.audioGainDB),
                path: directory.appendingPathComponent(".\(variantRole.rawValue).partial"), threads: threads,
                sampled: true)
        } catch {
            dropVariant("the AV1 encoder could not start (\(error))")
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
    private func dropVariant(_ reason: String) {
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
        if !continuity.jumps.isEmpty {
            let times = continuity.jumps.map { String(format: "%.2f s", $0) }.joined(separator: ", ")
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

    /// The variant, when there is one and it came out smaller than the main video (a larger one
    /// would cost its clients more than `video` does).
    private func finishVariant(mainPath: URL?) throws -> (role: OutputRole, path: URL, encoder: EncoderReport)? {
        try variantRemux?.finish()
        try variantEncode?.finish()
        guard let path = variantRemux?.path ?? variantEncode?.path,
            let encoder = variantRemux?.report(opened.info) ?? variantEncode?.report
        else { return nil }
        let (size, main) = (fileSize(path), mainPath.map(fileSize) ?? plan.variantSmallerThan ?? Int.max)
        guard size < main else {
            dropVariant("it came out at \(size) bytes, not smaller than the main video's \(main)")
            return nil
        }
        var report = encoder
        if let samples = variantEncode?.video.samples, let mainVideo = mainPath ?? plan.variantComparedWith {
            // Clients that take the variant see a picture as good as `video`'s, or none.
            let started = ProcessCPU.seconds()
            let (variantScore, mainScore) = (
                try samples.similarity(of: path, limits: limits), try samples.similarity(of: mainVideo, limits: limits)
            )
            if let variantScore, let mainScore {
                let comparison = String(
                    format: "SSIM %.4f against the video's %.4f (%.2f CPU s to measure)", variantScore, mainScore,
                    ProcessCPU.seconds() - started)
                guard variantScore >= mainScore - SinglePass.variantSimilarityMargin else {
                    dropVariant("its picture came out worse: \(comparison)")
                    return nil
                }
                report.why.append(comparison)
            }
        }
        return (variantRole, path, report)
    }

    private func fileSize(_ url: URL) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    }

    /// The remux when there is no transcode, or when the transcode came out larger: an output
    /// is never bigger than a copy that plays as well.
    private func chooseMain() -> (URL?, EncoderReport?) {
        guard let remux else { return (transcode?.path, transcode?.report) }
        guard let transcode else { return (remux.path, remux.report(opened.info)) }
        let (encoded, copied) = (fileSize(transcode.path), fileSize(remux.path))
        let comparison = "the encode is \(encoded) bytes, the copy \(copied)"
        if encoded > copied {
            logger.debug("the encode came out larger than the copy: keeping the copy")
            try? FileManager.default.removeItem(at: transcode.path)
            var report = remux.report(opened.info)
            report.why.append("kept the copy: \(comparison)")
            return (remux.path, report)
        }
        try? FileManager.default.removeItem(at: remux.path)
        var report = transcode.report
        report.why.append("kept the encode: \(comparison)")
        return (transcode.path, report)
    }
}

/// Each byte of a file belongs to one packet at most: a stream whose packets add up to more than
/// the file (an MP4 edit list replaying a clip thousands of times, chunk offsets all pointing at
/// one frame) plays its data again and again. Refused before it costs a decode or a copy of it.
struct ReplayCheck {
    let fileBytes: Int64
    private var read: [Int: Int64] = [:]

    init(fileBytes: Int64) { self.fileBytes = fileBytes }

    /// Some containers share a little between streams (DV's audio lives in its video frames).
    var allowance: Int64 { fileBytes + fileBytes / 20 + (256 << 10) }

    mutating func count(_ bytes: Int, stream: Int) throws(MediaError) {
        let total = read[stream, default: 0] + Int64(bytes)
        read[stream] = total
        if total > allowance {
            throw .limitsExceeded(
                "the file's index plays the same data more than once (over \(total) bytes of packets from a "
                    + "\(fileBytes)-byte file); it is crafted or damaged: re-export it")
        }
    }
}
