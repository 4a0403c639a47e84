import Foundation
public import Logging
import Media
public import Operations
public import Queue
public import Storage

/// Runs one claimed job from start to end: checks it is still wanted, fetches the input into a
/// private folder, runs the stages in an isolated child, uploads the outputs and records the
/// result in one transaction. Every database write is fenced by the claim's token.
public struct JobRunner: Sendable {
    public let configuration: Configuration
    public let store: JobStore
    public let storage: any Storage
    public let logger: Logger
    let metrics: WorkerMetrics
    /// Told of every failure (`job id`, `code: message`), for the daemon's status line.
    let onFailure: @Sendable (Int, String) -> Void
    let host = ProcessInfo.processInfo.hostName
    let pid = ProcessInfo.processInfo.processIdentifier

    public init(
        configuration: Configuration, storage: any Storage, logger: Logger, metrics: WorkerMetrics = WorkerMetrics(),
        onFailure: @escaping @Sendable (Int, String) -> Void = { _, _ in }
    ) {
        self.configuration = configuration
        self.store = JobStore(tables: configuration.tables)
        self.storage = storage
        self.logger = logger
        self.metrics = metrics
        self.onFailure = onFailure
    }

    /// How a run ended, for logs, metrics and `reprocess`'s exit code.
    public enum Ending: String, Sendable {
        case completed, retrying, failed, cancelled, released
        /// Someone else owns the job now (rescued, cancelled, reprocessed): nothing was written.
        case fencedOff
        /// The database could not be reached to record the end: rescue will deal with it.
        case unrecorded
    }

    /// Runs `job` with `threads` decoder/encoder threads. `control` lets the daemon stop it
    /// (shutdown); `progress` sees 0…1 (for `reprocess`'s bar).
    public func run(
        _ job: Job, threads: Int, control: RunControl = RunControl(),
        progress: @escaping @Sendable (Double) -> Void = { _ in }
    ) async -> Ending {
        var logger = logger
        logger[metadataKey: "job"] = "\(job.id)"
        logger[metadataKey: "type"] = "\(job.processingType)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        let connection = PostgresConnection(url: configuration.databaseURL, label: "job-\(job.id)", logger: logger)
        let run = Run(
            job: job, connection: connection, store: store, host: host, pid: pid,
            maxAttempts: configuration.maxAttempts, logger: logger, metrics: metrics, onFailure: onFailure)
        logger.info(
            "job started",
            metadata: ["input": "\(job.inputStorageKey)", "profile": "\(job.qualityProfile ?? "MEDIUM")"])
        let ending = await execute(run, threads: threads, control: control, progress: progress)
        logger.info(
            "job ended",
            metadata: [
                "outcome": "\(ending.rawValue)",
                "seconds": "\(String(format: "%.2f", run.elapsed.inSeconds))",
            ])
        metrics.jobFinished(type: job.processingType, outcome: ending.rawValue, duration: run.elapsed)
        // Closing the session also releases the job's advisory lock.
        await connection.close()
        return ending
    }

    /// Everything a claimed run does; never throws: an end it cannot record is `.unrecorded`.
    private func execute(
        _ run: Run, threads: Int, control: RunControl, progress: @escaping @Sendable (Double) -> Void
    ) async -> Ending {
        let (job, connection, logger) = (run.job, run.connection, run.logger)
        do {
            guard try await connection.withSession("lock the job", { [store] in try store.holdLock($0, job: job) })
            else {
                logger.warning("another live worker holds this job; leaving it alone")
                return .fencedOff
            }
            if let reason = try await connection.withSession(
                "check the job", { [store] in try store.pointlessReason($0, job: job) })
            {
                return try await run.cancel("cancelled: \(reason); nothing was processed")
            }
            if try await connection.withSession(
                "check the upload", { [store] in try store.uploadIncomplete($0, job: job) })
            {
                return try await run.fail(
                    code: "input_missing",
                    message:
                        "the upload never reached COMPLETED within \(Int(configuration.uploadWait)) s; upload it again")
            }
            return try await process(run, threads: threads, control: control, progress: progress)
        } catch {
            logger.error("could not record the job's end; it will be rescued", metadata: ["error": "\(error)"])
            return .unrecorded
        }
    }

    private func process(
        _ run: Run, threads: Int, control: RunControl, progress: @escaping @Sendable (Double) -> Void
    ) async throws -> Ending {
        let job = run.job
        let directory = URL(fileURLWithPath: configuration.temporaryDirectory)
            .appendingPathComponent("media-worker-job-\(job.id)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }

        let extensionHint = URL(fileURLWithPath: job.originalFileName).pathExtension.filter {
            $0.isLetter || $0.isNumber
        }
        let input = directory.appendingPathComponent(
            "input" + (extensionHint.isEmpty ? "" : ".\(extensionHint.prefix(8))"))
        do {
            let started = ContinuousClock.now
            try await storage.download(key: job.inputStorageKey, to: input, expectedSize: job.inputFileSize)
            metrics.stage("download", duration: ContinuousClock.now - started)
            metrics.bytesDownloaded(job.inputFileSize)
        } catch {
            switch error {
            case .notFound: return try await run.fail(code: "input_missing", message: "\(error); upload it again")
            case .sizeMismatch, .invalidKey: return try await run.fail(code: "input_unreadable", message: "\(error)")
            case .io, .unusable: return try await run.fail(code: "storage", message: "\(error)")
            }
        }

        let outputs = directory.appendingPathComponent("out", isDirectory: true)
        let profile = QualityProfile(rawValue: job.qualityProfile ?? "MEDIUM") ?? .medium
        // CPU seconds: the wall-clock budget on every core the job may use, until the child has
        // probed the input and lowers it to what the input deserves.
        let cpuCeiling =
            Int(configuration.jobTimeout) * (threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount)
        let child = ChildProcess(
            arguments: [
                "run-job", input.path, "--out", outputs.path, "--type", job.processingType,
                "--profile", profile.rawValue, "--threads", "\(threads)", "--parent", "\(getpid())",
                "--max-memory", "\(configuration.childMemoryBytes)", "--max-cpu", "\(cpuCeiling)",
            ], directory: directory)
        let state = ChildState()
        guard control.attach(child) else { return try await run.release() }
        let heartbeat = Task {
            await run.beat(
                state: state, child: child, control: control, type: job.processingType, profile: profile.rawValue)
        }
        let childStarted = ContinuousClock.now
        let decoder = JSONDecoder()
        let exit = try await child.run(timeout: configuration.jobTimeout) { [logger] line in
            guard let message = try? decoder.decode(ChildMessage.self, from: line) else { return }
            state.take(message)
            if let fraction = message.progress { progress(fraction) }
            if let sandbox = message.sandbox, !sandbox.isComplete {
                logger.notice("the job's child runs only partly confined", metadata: ["sandbox": "\(sandbox)"])
            }
            if let info = message.probe, let type = ProcessingType(rawValue: job.processingType) {
                let cpu = ResourceBudget.cpuSeconds(for: info, type: type, profile: profile, ceiling: cpuCeiling)
                child.shortenDeadline(
                    to: ResourceBudget.wallSeconds(cpuSeconds: cpu, ceiling: configuration.jobTimeout))
            }
        }
        heartbeat.cancel()
        _ = await heartbeat.value
        let childTime = ContinuousClock.now - childStarted
        metrics.stage("process", duration: childTime)
        if let durationMs = state.report?.input.durationMs, childTime > .zero {
            metrics.realtimeFactor(type: job.processingType, Double(durationMs) / 1000 / childTime.inSeconds)
        }

        if control.fenced {
            let status = try await run.currentStatus()
            logger.info("job was taken away while running", metadata: ["status": "\(status ?? "gone")"])
            return status == "CANCELLED" ? .cancelled : .fencedOff
        }
        if control.stopRequested { return try await run.release() }
        switch exit {
        case .timedOut:
            return try await run.fail(
                code: "timeout", message: "processing took longer than its time budget and was stopped")
        case .signalled(SIGXCPU):
            return try await run.fail(
                code: "limits_exceeded",
                message: "decoding the video needed more CPU time than its duration allows; re-export it, or "
                    + "reprocess it on a host with a larger MEDIA_WORKER_JOB_TIMEOUT")
        case .signalled(let signal):
            return try await run.fail(
                code: "crashed",
                message: "the media process died with signal \(signal) (\(String(cString: strsignal(signal))))")
        case .stopped:
            return try await run.release()
        case .exited(let status):
            if let report = state.report, status == 0 {
                return try await finish(run, report: report, directory: outputs)
            }
            if let error = state.error {
                return try await run.fail(code: error.code, message: error.message)
            }
            return try await run.fail(
                code: "crashed", message: "the media process exited with status \(status) and no report")
        }
    }

    /// Uploads the outputs under deterministic keys and records everything in one transaction.
    private func finish(_ run: Run, report: ProcessingReport, directory: URL) async throws -> Ending {
        let job = run.job
        var keys: [String: String] = [:]
        var urls: [String: String] = [:]
        var records: [String: OutputRecord] = [:]
        // The child parsed untrusted input: its report is checked like input too.
        for (role, output) in report.outputs {
            if let problem = OutputCheck.problem(with: output, in: directory) {
                logger.error(
                    "the media process reported a bad output", metadata: ["role": "\(role)", "problem": "\(problem)"])
                return try await run.fail(code: "internal", message: "the media process reported a bad \(role) output")
            }
        }
        let uploadStarted = ContinuousClock.now
        for (role, output) in report.outputs.sorted(by: { $0.key < $1.key }) {
            let key = outputKey(
                jobId: job.id, role: role, fileExtension: URL(fileURLWithPath: output.path).pathExtension)
            do {
                try await storage.upload(
                    directory.appendingPathComponent(output.path), key: key, contentType: output.mimeType)
            } catch {
                return try await run.fail(code: "storage", message: "could not store the \(role) output: \(error)")
            }
            metrics.bytesUploaded(Int64(output.bytes))
            keys[role] = key
            urls[role] = storage.publicURL(for: key)
            records[role] = OutputRecord(
                output, key: key, url: urls[role]!, damage: role == "video" ? report.damage : nil)
        }
        metrics.stage("upload", duration: ContinuousClock.now - uploadStarted)
        let thumbnails = report.thumbnails.map { still in
            ThumbnailRecord(still, key: keys[still.role] ?? "", url: urls[still.role] ?? "")
        }
        let variants = records.mapValues(VariantRecord.init)
        let completion = JobStore.Completion(
            outputStorageKeys: keys, outputUrls: urls,
            outputTotalSize: Int64(report.outputs.values.reduce(0) { $0 + $1.bytes }),
            outputMetadata: JobStore.json(records), inputMetadata: JobStore.json(report.input),
            thumbnails: JobStore.json(thumbnails),
            actualDurationSeconds: Int(run.elapsed.components.seconds),
            uploadVideo: JobStore.json(VideoSummary(report.input)),
            uploadVariants: JobStore.json(variants), posterUrl: urls["poster"],
            estimatedDurationSeconds: estimatedSeconds(
                durationMs: report.input.durationMs ?? 0, type: job.processingType,
                profile: job.qualityProfile ?? "MEDIUM"),
            event: run.event("completed", message: completionMessage(report)))
        let recordStarted = ContinuousClock.now
        let recorded = try await run.connection.withSession(
            "record the result", { [store] in try store.complete($0, job: job, completion) })
        metrics.stage("record", duration: ContinuousClock.now - recordStarted)
        guard recorded else {
            logger.info("the job was taken away before its result was recorded; nothing written")
            return .fencedOff
        }
        return .completed
    }
}

/// The `completed` event's message: what was made, and what of a damaged input was skipped.
private func completionMessage(_ report: ProcessingReport) -> String {
    var message = "\(report.outputs.count) outputs in \(report.elapsedMs) ms"
    if let damage = report.damage {
        message +=
            "; warning: the input is damaged, \(damage.videoPacketsSkipped) video and "
            + "\(damage.audioPacketsSkipped) audio packets could not be decoded and were skipped"
    }
    return message
}

/// Lets the daemon stop a running job (graceful shutdown past its grace period).
public final class RunControl: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var child: ChildProcess?
    private var stopping = false
    private var fencedOff = false

    public init() {}

    /// Stops the job's child; the run then puts the job back to PENDING.
    public func stop() {
        let child = lock.withLock {
            stopping = true
            return self.child
        }
        child?.stop()
    }

    var stopRequested: Bool { lock.withLock { stopping } }
    var fenced: Bool { lock.withLock { fencedOff } }

    func fence() {
        let child = lock.withLock {
            fencedOff = true
            return self.child
        }
        child?.stop()
    }

    /// Records the child; false when a stop came first.
    func attach(_ child: ChildProcess) -> Bool {
        lock.withLock {
            self.child = child
            return !stopping
        }
    }
}

/// What the child has said so far.
final class ChildState: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var _progress = 0.0
    private var _durationMs: Int?
    private var _report: ProcessingReport?
    private var _error: ChildMessage.ErrorBody?

    func take(_ message: ChildMessage) {
        lock.withLock {
            if let progress = message.progress { _progress = progress }
            if let probe = message.probe { _durationMs = probe.durationMs }
            if let report = message.report { _report = report }
            if let error = message.error { _error = error }
        }
    }

    var progress: Double { lock.withLock { _progress } }
    var durationMs: Int? { lock.withLock { _durationMs } }
    var report: ProcessingReport? { lock.withLock { _report } }
    var error: ChildMessage.ErrorBody? { lock.withLock { _error } }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
