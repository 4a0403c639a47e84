import Foundation
import JobVocabulary
public import Logging

/// Runs the stages of one job on a local file, writing outputs into a folder. Knows nothing of
/// queues or databases: the daemon and `media-worker process` both call this.
public enum MediaProcessor {
    /// How much of a job one run does: a job with a long pass may be done in two runs, a quick
    /// first look (in a host's fast lane) and the long pass (in an encode slot).
    public enum Part: String, Codable, Sendable {
        /// Everything the type asks for.
        case whole
        /// The probe, and for FULL_PROCESSING with `stillsFirst` the stills (by seeking).
        case firstLook
        /// Everything but the stills, which a first look already made.
        case longPass
        /// Only `video_av1`, for a result made earlier (background work on a popular video): kept
        /// only when smaller than `Request.variantSmallerThan`.
        case efficientVariant
    }

    /// When a job also makes its main video in a more efficient codec (`video_hevc`, `video_av1`).
    public enum EfficientVariant: String, Codable, Sendable, CaseIterable {
        /// Never.
        case off
        /// When it costs no encode: the upload already is HEVC or AV1 that fits the profile, and
        /// is copied.
        case whenFree = "free"
        /// Always: the copy when there is one, else an AV1 encode in the same decode.
        case always
    }

    /// A long video's main video made in pieces by many workers (`Pieces`): this run's share.
    public enum PieceWork: Codable, Sendable, Equatable {
        /// Cut a video lasting at least `after` seconds, whose video is encoded, into pieces of
        /// about `seconds`, and stop there (after the stills, when they come first): the report's
        /// `pieces`. Anything else runs as usual.
        case split(seconds: Double, after: Double)
        /// Encode one piece's video into `piece.mp4` in the output folder; nothing else.
        case encode(Pieces.Span)
        /// The main video is these piece files, in order: joined beside the audio made here; the
        /// rest of the type (preview, stills, a free variant copy) as usual.
        case join([String])
    }

    /// What to do.
    public struct Request: Sendable, Equatable, Codable {
        public var inputPath: String
        public var outputDirectory: String
        public var type: ProcessingType
        public var profile: QualityProfile
        public var limits: MediaLimits
        /// Decoder and encoder threads; 0 sizes them to the machine.
        public var threads: Int
        public var thumbnails: ThumbnailSettings
        /// Copy a source that already fits the profile instead of re-encoding it.
        public var allowRemux: Bool
        /// FULL_PROCESSING: make the stills first, by seeking, and hand them over before the long
        /// pass (a chat shows the picture within a second); otherwise they come from the pass.
        public var stillsFirst = true
        /// How much of the job this run does.
        public var part = Part.whole
        /// Whether COMPRESSION and FULL_PROCESSING also make `video_hevc` or `video_av1`.
        public var efficientVariant = MediaProcessor.EfficientVariant.whenFree
        /// The most the main video may weigh, in bytes: an encode that comes out larger is made
        /// again by x264's second pass to fit (`ByteBudget`). Nil: no budget.
        public var maxBytes: Int64?
        /// With `part` `.efficientVariant`: the bytes of the `video` the variant must beat.
        public var variantSmallerThan: Int?
        /// With `part` `.efficientVariant`: the `video` made then, whose picture the variant's must
        /// equal (SSIM within 0.005), as a variant made in the same pass as `video` must.
        public var variantComparedWith: String?
        /// Encode the main video of an input at least twice this long in pieces of about this
        /// many seconds, one after another, joined without re-encoding (`Pieces`). Nil: one pass.
        /// Not with a byte budget (its second pass needs the whole video's statistics) or a variant.
        public var pieceSeconds: Double?
        /// This run's share of a main video made in pieces by many workers (nil: none).
        public var pieceWork: PieceWork?
        /// The integrated loudness every output's audio is levelled to, in LUFS (nil: left as
        /// the source has it). See `LoudnessLevel`.
        public var loudnessTarget: Double? = LoudnessLevel.target
        /// FULL_PROCESSING of a video lasting at least this many seconds also makes a storyboard
        /// (`storyboard`, `storyboard_vtt`) in its pass. Nil: never.
        public var storyboardAfter: Double? = 30

        /// Whether the request may encode AV1 (the variant asked for always, or variant work).
        public var encodesAV1: Bool { efficientVariant == .always || part == .efficientVariant }

        /// The request's video encodes, counted in H.264 encodes of the profile, for its CPU
        /// budget: an AV1 variant costs about 1.8 more (SVT-AV1 preset 10 against libx264 on the
        /// benchmark's clips), a byte budget's second pass one more.
        public var encodeWork: Double {
            (efficientVariant == .always ? 2.8 : 1) + (maxBytes == nil ? 0 : 1)
        }

        public init(
            inputPath: String, outputDirectory: String, type: ProcessingType, profile: QualityProfile = .medium,
            limits: MediaLimits = .default, threads: Int = 0, thumbnails: ThumbnailSettings = ThumbnailSettings(),
            allowRemux: Bool = true
        ) {
            self.allowRemux = allowRemux
            self.inputPath = inputPath
            self.outputDirectory = outputDirectory
            self.type = type
            self.profile = profile
            self.limits = limits
            self.threads = threads
            self.thumbnails = thumbnails
        }
    }

    /// Runs `request`, calling `progress` with 0…1 as work advances (on the calling thread).
    /// Blocks: call it from a thread of its own, not from Swift's cooperative pool. Outputs are
    /// made in a private folder inside the output folder and moved in only when all succeeded.
    /// `probed` gets what METADATA found before any decoding starts, and `cpuBudget` says how many
    /// CPU seconds the work on it may take from then (nil: no limit); `stillsReady` the stills,
    /// already in the output folder, when FULL_PROCESSING makes them first (`stillsFirst`) and goes
    /// on with the long pass.
    public static func run(
        _ request: Request, logger: Logger, probed: (MediaInfo) -> Void = { _ in },
        cpuBudget: (MediaInfo) -> Int? = { _ in nil }, stillsReady: ([OutputFile]) -> Void = { _ in },
        progress: (Double) -> Void = { _ in }
    ) throws(MediaError) -> ProcessingReport {
        let started = ContinuousClock.now
        let outputDirectory = URL(fileURLWithPath: request.outputDirectory, isDirectory: true)
        let staging = outputDirectory.appendingPathComponent(".partial-\(UUID().uuidString)", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw .outputUnwritable(reason: "cannot create the output folder: \(systemReason(error))")
        }
        defer { try? FileManager.default.removeItem(at: staging) }

        let opened = try Probe.open(path: request.inputPath, limits: request.limits)
        logger.debug(
            "probed input", metadata: ["container": "\(opened.info.container)", "codec": "\(opened.info.video.codec)"])
        probed(opened.info)
        progress(0.02)
        // What the request does with this input, decided before any decoding.
        let media = MediaPlan(request, info: opened.info)
        let (encoding, storyboard) = (media.encoding, media.storyboard)
        func scaled(_ fraction: Double) { progress(0.02 + 0.97 * fraction) }
        // The CPU budget is kept here, where the work is, so going over it ends as a clean
        // failure (outputs removed); the kernel's RLIMIT_CPU is only the backstop.
        // A piece gets its share of the job's budget (its decode from the keyframe before its cut
        // to its end, plus a tenth), not all of it: a fleet never spends N budgets on one video.
        var share = 1.0
        if case .encode(let span) = request.pieceWork {
            let duration = rescale(
                Int64(opened.info.durationMs ?? 0) * 1000, from: microsecondTimeBase, to: opened.videoStream.timeBase)
            share = min(1, span.share(ofDuration: duration) + 0.1)
        }
        let budget = cpuBudget(opened.info).map {
            (seconds: share < 1 ? 10 + Int((Double($0) * share).rounded(.up)) : $0, from: ProcessCPU.seconds())
        }
        func budgeted(_ fraction: Double) throws(MediaError) {
            scaled(fraction)
            if let budget, ProcessCPU.seconds() - budget.from > Double(budget.seconds) {
                throw .limitsExceeded(
                    "processing the video needs more than the \(budget.seconds) CPU seconds its duration and size "
                        + "allow; re-export it, or reprocess it on a host with a larger MEDIA_WORKER_JOB_TIMEOUT")
            }
        }

        func report(
            _ outputs: [OutputRole: OutputFile], damage: DamageReport? = nil, pieces: [Pieces.Span]? = nil,
            variantLeftOut: String? = nil
        ) -> ProcessingReport {
            ProcessingReport(
                type: request.type, profile: request.profile, input: opened.info, outputs: outputs,
                elapsedMs: Int((ContinuousClock.now - started) / .milliseconds(1)), damage: damage, pieces: pieces,
                variantLeftOut: variantLeftOut)
        }
        if case .encode(let span) = request.pieceWork {
            // One piece of a long video, for the worker that claimed it, with its storyboard tiles.
            let piece = staging.appendingPathComponent(Pieces.fileName)
            let tiles = try Pieces.encodeVideo(
                opened, span: span, encoding: encoding, path: piece, threads: request.threads,
                limits: request.limits, storyboard: storyboard, progress: budgeted)
            if let tiles {
                do {
                    try Data(tiles).write(to: Pieces.tilesFile(of: piece))
                } catch {
                    throw .outputUnwritable(reason: "the piece's storyboard tiles: \(systemReason(error))")
                }
                try move(
                    Pieces.tilesFile(of: piece),
                    to: Pieces.tilesFile(of: outputDirectory.appendingPathComponent(Pieces.fileName)))
            }
            try move(piece, to: outputDirectory.appendingPathComponent(Pieces.fileName))
            progress(1)
            return report([:])
        }
        var outputs: [OutputRole: OutputFile] = [:]
        var stills: [OutputFile] = []
        var variantLeftOut: String?
        var damage: DamageReport?
        switch request.type {
        case .metadata:
            break
        case .thumbnail:
            stills = try Thumbnailer(settings: request.thumbnails, threads: request.threads, logger: logger)
                .run(opened, outputDirectory: staging, limits: request.limits, progress: scaled)
        case .compression, .preview, .fullProcessing:
            if request.part == .firstLook {
                if request.type == .fullProcessing && request.stillsFirst {
                    stills = try Thumbnailer(settings: request.thumbnails, threads: request.threads, logger: logger)
                        .run(opened, outputDirectory: staging, limits: request.limits, progress: scaled)
                }
                break
            }
            // A budget the video cannot fit is refused before any work (the stills included).
            let byteBudget = media.maxBytes.map {
                ByteBudget(maxBytes: $0, statistics: staging.appendingPathComponent("x264"))
            }
            try byteBudget?.check(opened.info, encoding: encoding)
            var input = opened
            let early = media.stillsFirst
            // A failure from here on leaves nothing behind, the stills handed over early included.
            var finished = false
            defer {
                if early && !finished {
                    for still in stills { unlink(outputDirectory.appendingPathComponent(still.path).path) }
                }
            }
            if early {
                // The stills by seeking (a fraction of a second), published at once; then the one
                // pass, on a freshly opened input, makes what is left.
                stills = try Thumbnailer(settings: request.thumbnails, threads: request.threads, logger: logger)
                    .run(opened, outputDirectory: staging, limits: request.limits, progress: { _ in })
                for still in stills {
                    try move(
                        staging.appendingPathComponent(still.path),
                        to: outputDirectory.appendingPathComponent(still.path))
                }
                stillsReady(stills)
                input = try Probe.open(path: request.inputPath, limits: request.limits)
            }
            if let seconds = media.splitSeconds {
                // A long video for the fleet: its cut points (and the stills, when they came
                // first); the rest is made once its pieces are. One piece is one pass.
                let spans = try Pieces.spans(
                    try Probe.open(path: request.inputPath, limits: request.limits), seconds: seconds)
                if spans.count > 1 {
                    finished = true
                    progress(1)
                    return report(Dictionary(uniqueKeysWithValues: stills.map { ($0.role, $0) }), pieces: spans)
                }
            }
            var plan = media.pass
            byteBudget?.prepare(&plan, uploadBytes: opened.info.sizeBytes)
            // The audio's loudness, measured from the audio alone before the one decode of the
            // video; every output with sound (pieces included; a preview is muted) gets the same gain.
            let loudness = try media.loudnessTarget.flatMap { target throws(MediaError) in
                try LoudnessScan.level(path: request.inputPath, limits: request.limits, target: target) {
                    () throws(MediaError) in try budgeted(0)
                }
            }
            plan.audioGainDB = loudness?.level.gainDB ?? 0
            // A long video to encode: its main video in pieces; the pass makes only what is left.
            var pieces: (path: URL, report: EncoderReport)?
            let assembly = plan.main.map {
                Pieces.Assembly(
                    source: request.inputPath, encoding: $0, audioGainDB: plan.audioGainDB, directory: staging,
                    limits: request.limits)
            }
            if case .join(let files) = request.pieceWork, let assembly {
                let files = files.map { URL(fileURLWithPath: $0) }
                pieces = try Pieces.assemble(files, assembly, logger: logger)
                plan.storyboardPieces = Pieces.tiles(beside: files)
            } else if let seconds = media.localPieceSeconds, let assembly {
                let share = plan.preview || plan.thumbnails ? 0.9 : 1
                let made = try Pieces.encodeAll(
                    assembly, seconds: seconds, threads: request.threads, storyboard: storyboard, logger: logger
                ) { fraction throws(MediaError) in try budgeted(fraction * share) }
                pieces = made.map { ($0.path, $0.report) }
                plan.storyboardPieces = made?.tiles
            }
            if pieces != nil {
                // The pass copies a free variant (an HEVC or AV1 upload that fits) beside the
                // preview and stills; an AV1 encode of a long video comes later, when it proves
                // popular, not in one long pass here.
                plan.mainMadeElsewhere = true
                plan.variantSmallerThan =
                    (try? FileManager.default.attributesOfItem(atPath: pieces?.path.path ?? "")[.size])
                    as? Int
                if plan.efficientVariant == .always { plan.efficientVariant = .whenFree }
                if plan.preview || plan.thumbnails || plan.efficientVariant != .off {
                    input = try Probe.open(path: request.inputPath, limits: request.limits)
                }
            }
            // With a budget, the first pass is the first half of the progress, in case a second is
            // needed; after pieces, the last tenth.
            let (from, share) = byteBudget != nil ? (0.0, 0.5) : pieces != nil ? (0.9, 0.1) : (0.0, 1.0)
            var result = SinglePass.Result()
            do {
                if pieces == nil || plan.preview || plan.thumbnails || plan.efficientVariant != .off {
                    do {
                        result = try SinglePass(
                            input, plan: plan, directory: staging, threads: request.threads, limits: request.limits,
                            settings: request.thumbnails, logger: logger
                        ).run { fraction throws(MediaError) in try budgeted(from + fraction * share) }
                    } catch let refused as SinglePass.CopyRefused {
                        // The copy failed part-way: the same plan, encoded, from a fresh read.
                        var encoded = plan
                        encoded.allowRemux = false
                        encoded.noCopyReason = "the copy failed part-way: \(refused.reason)"
                        result = try SinglePass(
                            try Probe.open(path: request.inputPath, limits: request.limits), plan: encoded,
                            directory: staging, threads: request.threads, limits: request.limits,
                            settings: request.thumbnails, logger: logger
                        ).run { fraction throws(MediaError) in try budgeted(from + fraction * share) }
                    }
                }
                if let pieces { (result.mainPath, result.mainEncoder) = (pieces.path, pieces.report) }
                if let byteBudget {
                    try byteBudget.fit(&result, plan: plan, info: opened.info, logger: logger) { plan in
                        try SinglePass(
                            try Probe.open(path: request.inputPath, limits: request.limits), plan: plan,
                            directory: staging, threads: request.threads, limits: request.limits,
                            settings: request.thumbnails, logger: logger
                        ).run { fraction throws(MediaError) in try budgeted(0.5 + fraction * 0.5) }
                    }
                }
            } catch {
                throw error as? MediaError ?? .internalFailure("the single pass failed (\(error))")
            }
            if !early { stills = result.stills }
            for file in result.storyboard { outputs[file.role] = file }
            damage = result.damage
            variantLeftOut = result.variantLeftOut
            for (role, path, encoder) in [
                (OutputRole.video, result.mainPath, result.mainEncoder),
                (.preview, result.previewPath, result.previewEncoder),
                (result.variant?.role ?? .videoAv1, result.variant?.path, result.variant?.encoder),
            ] {
                guard let path else { continue }
                let file = staging.appendingPathComponent(role.fileName)
                try move(path, to: file)
                let written = try Probe.inspect(path: file.path, limits: request.limits)
                var encoder = encoder
                if written.audio != nil { encoder?.loudness = loudness?.report }
                outputs[role] = OutputFile(video: role, info: written, encoder: encoder)
            }
            finished = true
        }
        for output in outputs.values {
            try move(
                staging.appendingPathComponent(output.path), to: outputDirectory.appendingPathComponent(output.path))
        }
        for still in stills {
            outputs[still.role] = still
            if !FileManager.default.fileExists(atPath: outputDirectory.appendingPathComponent(still.path).path) {
                try move(
                    staging.appendingPathComponent(still.path), to: outputDirectory.appendingPathComponent(still.path))
            }
        }
        progress(1)
        return report(outputs, damage: damage, variantLeftOut: variantLeftOut)
    }

    /// Renames `source` to `target`, replacing what is there.
    private static func move(_ source: URL, to target: URL) throws(MediaError) {
        guard rename(source.path, target.path) == 0 else {
            throw .outputUnwritable(reason: "\(target.lastPathComponent): \(String(cString: strerror(errno)))")
        }
    }
}
