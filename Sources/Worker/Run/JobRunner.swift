import Foundation
import JobChild
import JobVocabulary
public import Logging
import Media
import Observability
public import Queue
public import Storage

/// Runs one claimed job from start to end: checks it is still wanted, fetches the input into a
/// private folder (hashing it), reuses the result of an earlier job for the same bytes when there
/// is one, otherwise runs the stages in an isolated child (publishing the stills as soon as the
/// child has them), uploads the outputs and records the result in one transaction. Every database
/// write is fenced by the claim's token.
public struct JobRunner: Sendable, WorkingWithContext {
    /// The settings, the statements and where they go (the daemon's pool or, one-shot, a
    /// connection), storage, identity, log and metrics.
    let context: WorkerContext
    /// Who makes which result (nil: no coordination, e.g. through a transaction-mode pooler).
    let reuseLocks: ReuseLocks?
    /// Told of every failure (`job id`, `code: message`), for the daemon's status line.
    let onFailure: @Sendable (Int, String) -> Void
    /// Whether long videos may be made in pieces (the pieces table exists).
    let piecesEnabled: @Sendable () -> Bool

    /// A runner for one-shot use (`reprocess`): statements on a connection of its own, no
    /// coordination of reuse with other workers.
    public init(configuration: Configuration, storage: any Storage, logger: Logger) {
        self.init(
            context: WorkerContext(
                configuration: configuration, database: configuration.connection(label: "run", logger: logger),
                storage: storage, logger: logger),
            reuseLocks: nil, onFailure: { _, _ in })
    }

    /// The daemon's runner: everything it needs is handed down by the service that owns it.
    init(
        context: WorkerContext, reuseLocks: ReuseLocks?, onFailure: @escaping @Sendable (Int, String) -> Void,
        piecesEnabled: @escaping @Sendable () -> Bool = { true }
    ) {
        self.context = context
        self.reuseLocks = reuseLocks
        self.onFailure = onFailure
        self.piecesEnabled = piecesEnabled
    }

    /// How a run ended, for logs, metrics and `reprocess`'s exit code.
    public typealias Ending = RunEnding

    /// What a run tells whoever started it, as it goes.
    public enum Event: Sendable, Equatable {
        /// 0…1 of the child's work.
        case progress(Double)
        /// The stills are in the job and upload rows while the rest is still being made.
        case stillsPublished
        /// The outputs of job `from`, made from the same bytes, were copied: nothing was decoded.
        case reused(from: Int)
        /// A long video's pieces are ready for the join: `madeHere` encoded on this worker (by
        /// this run or another slot), kept where they were made, and `fetched` from storage (made
        /// by other workers).
        case piecesGathered(madeHere: Int, fetched: Int)
    }

    /// Runs `job` with `threads` decoder/encoder threads in `lane`: in the fast lane a job with a
    /// long pass gets only its first look. `control` lets the daemon stop it (shutdown); `reuse`
    /// false makes it even when an earlier result exists (`reprocess --force`); `observe` sees
    /// what happens (progress for `reprocess`'s bar).
    public func run(
        _ job: Job, threads: Int, lane: Lane = .encode, control: RunControl = RunControl(), reuse: Bool = true,
        observe: @escaping @Sendable (Event) -> Void = { _ in }
    ) async -> Ending {
        var context = context
        context.logger[metadataKey: "job"] = "\(job.id)"
        context.logger[metadataKey: "type"] = "\(job.processingType.rawValue)"
        context.logger[metadataKey: "attempt"] = "\(job.attempt)"
        context.logger[metadataKey: "lane"] = "\(lane.rawValue)"
        let run = Run(job: job, context: context, onFailure: onFailure)
        let logger = run.logger
        logger.info(
            "job started", metadata: ["input": "\(job.inputStorageKey)", "profile": "\(job.qualityProfile.rawValue)"])
        let ending = await context.running.holding(job.claim) {
            await execute(run, threads: threads, lane: lane, control: control, reuse: reuse, observe: observe)
        }
        logger.info(
            "job ended",
            metadata: [
                "outcome": "\(ending.rawValue)",
                "seconds": "\(String(format: "%.2f", run.elapsed.inSeconds))",
            ])
        metrics.jobFinished(type: job.processingType, outcome: ending.rawValue, duration: run.elapsed)
        await reuseLocks?.release(for: job.id)
        return ending
    }

    /// Everything a claimed run does; never throws: an end it cannot record is `.unrecorded`.
    private func execute(
        _ run: Run, threads: Int, lane: Lane, control: RunControl, reuse: Bool,
        observe: @escaping @Sendable (Event) -> Void
    ) async -> Ending {
        let (job, connection, logger) = (run.job, run.database, run.logger)
        // The heartbeat for the whole run (downloads and uploads included); while the child runs,
        // progress writes beat too, and notice a fenced-off run.
        let keepAlive = Task { await run.keepAlive(every: .seconds(min(10, max(1, configuration.staleAfter / 6)))) }
        defer { keepAlive.cancel() }
        do {
            if let reason = try await connection.withSession(
                "check the job", { [store] in try store.pointlessReason($0, job: job) })
            {
                return try await run.cancel("\(reason); nothing was processed")
            }
            if try await connection.withSession(
                "check the upload", { [store] in try store.uploadIncomplete($0, job: job) })
            {
                return try await run.fail(
                    JobFailure(
                        .inputMissing,
                        "the upload never reached COMPLETED within \(Int(configuration.uploadWait)) s; upload it again")
                )
            }
            return try await process(
                run, threads: threads, lane: lane, control: control, reuse: reuse, observe: observe)
        } catch {
            logger.error("could not record the job's end; it will be rescued", metadata: ["error": "\(error)"])
            return .unrecorded
        }
    }

    private func process(
        _ run: Run, threads: Int, lane: Lane, control: RunControl, reuse: Bool,
        observe: @escaping @Sendable (Event) -> Void
    ) async throws -> Ending {
        let job = run.job
        let folder: WorkFolder
        do {
            folder = try WorkFolder(in: configuration.temporaryDirectory, kind: "job-\(job.id)")
        } catch {
            // The host's fault, not the input's: retried (on this host or another).
            return try await run.fail(
                JobFailure(
                    .internal,
                    "the job's private folder cannot be made in MEDIA_WORKER_TMPDIR (\(systemReason(error))); check "
                        + "that folder's owner and free space"))
        }
        defer { folder.remove() }

        // Named by nothing the uploader chose: what the file is comes from its bytes.
        let input = folder.url.appendingPathComponent("input")
        let downloaded: Transferred
        do {
            let started = ContinuousClock.now
            downloaded = try await storage.download(
                key: job.inputStorageKey, to: input, expectedSize: job.inputFileSize)
            metrics.stage("download", duration: ContinuousClock.now - started)
            metrics.bytesDownloaded(job.inputFileSize)
        } catch {
            switch error {
            case .notFound: return try await run.fail(JobFailure(.inputMissing, "\(error); upload it again"))
            case .sizeMismatch, .invalidKey: return try await run.fail(JobFailure(.inputUnreadable, "\(error)"))
            case .io, .unusable: return try await run.fail(JobFailure(.storage, "\(error)"))
            }
        }

        let (part, published) = Self.part(of: job, lane: lane, sha256: downloaded.sha256)
        let key = JobStore.ReuseKey(
            sha256: downloaded.sha256, processingType: job.processingType, qualityProfile: job.qualityProfile,
            pipelineVersion: configuration.pipelineVersion)
        var reuseKey: JobStore.ReuseKey?
        if reuse && configuration.reuseOutputs {
            // A first look never waits for another worker making the same result: it is quick work.
            // Nor does a retried job: the worker holding that result's lock may be its own earlier
            // run, frozen or cut off, which would keep it waiting for `reuseWait`.
            switch try await lookForReuse(run, key: key, wait: part != .firstLook && job.retryCount == 0) {
            case .found(let found):
                if let ending = try await reuseResult(run, found: found, sha256: downloaded.sha256) {
                    observe(.reused(from: found.jobId))
                    if ending == .completed { await countReuse(key, of: found.jobId, logger: run.logger) }
                    return ending
                }
                reuseKey = key
            case .make: reuseKey = key
            case .unavailable: reuseKey = nil
            }
        }
        let stills = StillsPublisher(
            run: run, upload: { [self] in try await upload($0, from: $1, run: run, damage: nil) }, control: control,
            observe: observe)
        let child = ChildRun(
            run: run, threads: threads, control: control, input: input, stills: stills, sha256: downloaded.sha256,
            reuseKey: reuseKey, observe: observe)
        switch try await runChild(child, part: part, published: published) {
        case .ended(let ending): return ending
        case .pieces(let spans, let published):
            return try await coordinatePieces(child, spans: spans, part: part, published: published)
        }
    }

    /// What every child of one run shares: the run, its slot's threads and control, the input in
    /// the job's private folder, the stills publisher, the input's hash, the reuse key it makes,
    /// and who hears of its events.
    struct ChildRun {
        let run: Run
        let threads: Int
        let control: RunControl
        let input: URL
        let stills: StillsPublisher
        let sha256: String
        let reuseKey: JobStore.ReuseKey?
        let observe: @Sendable (Event) -> Void
    }

    /// How a run's child ended: the run's end, or a long video's pieces to coordinate (with the
    /// stills published so far).
    enum ChildOutcome {
        case ended(Ending)
        case pieces([Pieces.Span], published: [OutputRole: StoredOutput])
    }

    /// How much of `job` this run does, and the stills an earlier first look stored. In the fast
    /// lane (or while its type is paused) a job with a long pass gets its first look; after one,
    /// the long pass makes the rest, unless the bytes changed since or the stills it needs are
    /// not in the row (then all of it).
    static func part(of job: Job, lane: Lane, sha256: String) -> (MediaProcessor.Part, [OutputRole: StoredOutput]) {
        guard job.processingType.hasLongPass else { return (.whole, [:]) }
        guard let looked = job.firstLookSha256 else {
            return (lane == .fast || job.typePaused ? .firstLook : .whole, [:])
        }
        let stills = job.publishedStills
        guard looked == sha256, job.processingType != .fullProcessing || stills.count == 2 else {
            return (.whole, [:])
        }
        return (.longPass, stills)
    }

    /// Runs the job's child for `part`, then records what it made. A long video's child may
    /// answer with its pieces instead (`pieceWork` `.split`, unless `splitting` is off), for the
    /// caller to coordinate.
    func runChild(
        _ child: ChildRun, part: MediaProcessor.Part, published: [OutputRole: StoredOutput],
        pieceWork: MediaProcessor.PieceWork? = nil, splitting: Bool = true, progressFrom: Double = 0
    ) async throws -> ChildOutcome {
        let (run, threads, control, input, stills, sha256, reuseKey, observe) = (
            child.run, child.threads, child.control, child.input, child.stills, child.sha256, child.reuseKey,
            child.observe
        )
        let job = run.job
        let outputs = input.deletingLastPathComponent().appendingPathComponent("out", isDirectory: true)
        let work = ChildWork(configuration: configuration)
        var request = work.request(
            input: input, outputs: outputs, type: job.processingType, profile: job.qualityProfile, threads: threads)
        request.media.stillsFirst = configuration.stillsFirst
        request.media.part = part
        request.media.efficientVariant = configuration.efficientVariant
        request.media.maxBytes = configuration.maxBytes[job.qualityProfile]
        request.media.pieceWork =
            pieceWork
            ?? (splitting && configuration.pieceSeconds > 0 && part != .firstLook && piecesEnabled()
                ? .split(seconds: configuration.pieceSeconds, after: configuration.piecesAfter) : nil)
        let encodeWork = request.media.encodeWork
        let cpuCeiling = request.cpuSeconds
        request.niceness = part == .firstLook || !job.processingType.hasLongPass ? 0 : 19
        let childStarted = ContinuousClock.now
        let outcome = try await work.run(
            request, in: input.deletingLastPathComponent(), control: control,
            onMessage: { [logger, configuration] message, child in
                switch message {
                case .progress(let fraction): observe(.progress(fraction))
                case .sandbox(let sandbox) where !sandbox.isComplete:
                    logger.error(
                        "the job's child is not fully confined",
                        metadata: [
                            "lacks": "\(sandbox.missing.joined(separator: ", "))",
                            "policy": "\(configuration.sandboxPolicy.rawValue)",
                        ])
                case .probe(let info):
                    stills.probed(info)
                    let cpu = ResourceBudget.cpuSeconds(
                        for: info, type: job.processingType, profile: job.qualityProfile, ceiling: cpuCeiling,
                        encodeWork: encodeWork)
                    child.shortenDeadline(
                        to: ResourceBudget.wallSeconds(cpuSeconds: cpu, ceiling: configuration.jobTimeout))
                case .stills(let files): stills.publish(files, from: outputs, sha256: sha256)
                default: break
                }
            },
            alongside: { state in await run.beat(state: state, control: control, from: progressFrom) })
        guard case .ended(let exit, let state, _) = outcome else { return .ended(try await run.release()) }
        let publishedNow = await stills.finished()
        let childTime = ContinuousClock.now - childStarted
        metrics.stage("process", duration: childTime)
        if let durationMs = state.report?.input.durationMs, childTime > .zero {
            metrics.realtimeFactor(type: job.processingType, Double(durationMs) / 1000 / childTime.inSeconds)
        }

        if control.fenced { return .ended(try await run.takenAway()) }
        if control.stopRequested { return .ended(try await run.release()) }
        // A child past its wall-clock deadline that the CPU limit stopped first (a loaded host,
        // where the deadline's timer ran late) timed out all the same.
        let pastDeadline = childTime.inSeconds >= configuration.jobTimeout
        switch exit {
        case .timedOut,
            .signalled(SIGXCPU) where pastDeadline:
            return .ended(
                try await run.fail(
                    JobFailure(.timeout, "processing took longer than its time budget and was stopped")))
        case .signalled(SIGXCPU):
            return .ended(
                try await run.fail(
                    JobFailure(
                        .limitsExceeded,
                        "decoding the video needed more CPU time than its duration allows; re-export it, or reprocess it "
                            + "on a host with a larger MEDIA_WORKER_JOB_TIMEOUT")))
        case .signalled(let signal):
            return .ended(
                try await run.fail(
                    JobFailure(
                        .crashed, "the media process died with signal \(signal) (\(String(cString: strsignal(signal))))"
                    )))
        case .stopped:
            return .ended(try await run.release())
        case .exited(let status):
            if let report = state.report, status == 0 {
                if part == .firstLook {
                    return .ended(
                        try await park(run, report: report, directory: outputs, sha256: sha256, observe: observe))
                }
                if let spans = report.pieces {
                    return .pieces(spans, published: published.merging(publishedNow) { $1 })
                }
                return .ended(
                    try await finish(
                        run, report: report, directory: outputs, stored: published.merging(publishedNow) { $1 },
                        sha256: sha256, reuseKey: reuseKey))
            }
            if let failure = state.failure { return .ended(try await run.fail(failure)) }
            return .ended(
                try await run.fail(
                    JobFailure(.crashed, "the media process exited with status \(status) and no report")))
        }
    }
}
