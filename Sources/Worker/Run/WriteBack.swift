import Foundation
import Media
import Queue

extension JobRunner {
    /// Checks the child's outputs, uploads those not uploaded yet (the stills went up early, in
    /// this run or in a first look) under deterministic keys, and records everything in one
    /// transaction, keeping the result for reuse under `reuseKey`.
    func finish(
        _ run: Run, report: ProcessingReport, directory: URL, stored alreadyStored: [OutputRole: StoredOutput],
        sha256: String, reuseKey: JobStore.ReuseKey?
    ) async throws -> Ending {
        let made: [StoredOutput]
        switch await store(report, from: directory, run: run, alreadyStored: alreadyStored) {
        case .success(let stored): made = stored
        case .failure(let failure): return try await run.fail(failure)
        }
        let stored = (made + alreadyStored.values.filter { report.outputs[$0.file.role] == nil })
            .sorted { $0.file.role < $1.file.role }
        let kept = reuseKey.map { key in
            JobStore.ReusableResult(
                key: key,
                result: KeptResult(
                    input: report.input,
                    outputs: stored.reduce(into: [:]) { $0[$1.file.role] = $1.file },
                    keys: stored.reduce(into: [:]) { $0[$1.file.role] = $1.key },
                    damage: report.damage))
        }
        return try await complete(
            run, input: report.input, stored: stored, sha256: sha256, reusable: kept,
            event: run.event("completed", message: completionMessage(report)))
    }

    /// Ends a first look: stores the stills it made (if any) and, in one fenced transaction,
    /// publishes them with the probe and puts the job back to PENDING for an encode slot.
    func park(
        _ run: Run, report: ProcessingReport, directory: URL, sha256: String,
        observe: @Sendable (Event) -> Void
    ) async throws -> Ending {
        let stored: [StoredOutput]
        switch await store(report, from: directory, run: run, alreadyStored: [:]) {
        case .success(let made): stored = made
        case .failure(let failure): return try await run.fail(failure)
        }
        let (job, store) = (run.job, store)
        let columns = JobStore.OutputColumns(stored, input: report.input, sha256: sha256)
        let estimate = estimatedSeconds(
            durationMs: report.input.durationMs ?? 0, type: job.processingType, profile: job.qualityProfile)
        let event = run.event(
            "queued",
            message: (stored.isEmpty ? "probed" : "stills published") + "; the rest waits for an encode slot")
        guard
            try await run.connection.withSession(
                "park the job", { try store.park($0, job: job, columns, estimatedSeconds: estimate, event: event) })
        else {
            logger.info("the job was taken away before its first look was recorded; nothing written")
            return .fencedOff
        }
        if !stored.isEmpty {
            metrics.timeToStills(run.elapsed)
            observe(.stillsPublished)
        }
        return .parked
    }

    /// Checks every output the child reported (it parsed untrusted input: its report is checked
    /// like input too) and uploads those not in `alreadyStored` (the same file).
    private func store(
        _ report: ProcessingReport, from directory: URL, run: Run, alreadyStored: [OutputRole: StoredOutput]
    ) async -> Result<[StoredOutput], JobFailure> {
        for output in report.outputs.values {
            if let problem = OutputCheck.problem(with: output, in: directory) {
                logger.error(
                    "the media process reported a bad output",
                    metadata: ["role": "\(output.role.rawValue)", "problem": "\(problem)"])
                return .failure(
                    JobFailure(.internal, "the media process reported a bad \(output.role.rawValue) output"))
            }
        }
        var stored: [StoredOutput] = []
        let uploadStarted = ContinuousClock.now
        for output in report.outputs.values.sorted(by: { $0.role < $1.role }) {
            if let early = alreadyStored[output.role], early.file == output {
                stored.append(early)
                continue
            }
            do {
                stored.append(try await upload(output, from: directory, job: run.job, damage: report.damage))
            } catch {
                return .failure(JobFailure(.storage, "could not store the \(output.role.rawValue) output: \(error)"))
            }
        }
        metrics.stage("upload", duration: ContinuousClock.now - uploadStarted)
        return .success(stored)
    }

    /// Uploads one output of the child under its job's key.
    func upload(_ output: OutputFile, from directory: URL, job: Job, damage: DamageReport?) async throws -> StoredOutput
    {
        let key = OutputKeys.key(jobId: job.id, role: output.role)
        try await storage.upload(directory.appendingPathComponent(output.path), key: key, contentType: output.mimeType)
        metrics.bytesUploaded(Int64(output.bytes))
        return StoredOutput(
            file: output, key: key, url: storage.publicURL(for: key), damage: output.role == .video ? damage : nil)
    }

    /// The completing transaction, for a run that made its outputs and for one that reused them.
    func complete(
        _ run: Run, input: MediaInfo, stored: [StoredOutput], sha256: String,
        reusable: JobStore.ReusableResult<KeptResult>?,
        event: ProcessingLogEvent
    ) async throws -> Ending {
        let job = run.job
        let completion = JobStore.Completion<KeptResult>(
            columns: JobStore.OutputColumns(stored, input: input, sha256: sha256),
            outputTotalSize: Int64(stored.reduce(0) { $0 + $1.file.bytes }),
            actualDurationSeconds: Int(run.elapsed.components.seconds),
            estimatedDurationSeconds: estimatedSeconds(
                durationMs: input.durationMs ?? 0, type: job.processingType, profile: job.qualityProfile),
            event: event, reusable: reusable)
        let recordStarted = ContinuousClock.now
        let recorded: Bool
        do {
            recorded = try await run.connection.withSession(
                "record the result", { [store, completion] in try store.complete($0, job: job, completion) })
        } catch let error as PostgresError where error.kind == .query || error.kind == .decoding {
            // The database answered but refused the write: a retry may find it fixed.
            return try await run.fail(JobFailure(.database, "the results could not be recorded (\(error))"))
        }
        metrics.stage("record", duration: ContinuousClock.now - recordStarted)
        guard recorded else {
            logger.info("the job was taken away before its result was recorded; nothing written")
            return .fencedOff
        }
        return .completed
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
}

/// Where a job's outputs are stored: deterministic per job and role, so a retry or a reprocess
/// overwrites instead of adding copies.
enum OutputKeys {
    static func key(jobId: Int, role: OutputRole) -> String { "media-worker/jobs/\(jobId)/\(role.fileName)" }
}

/// What a completed job keeps for later jobs with the same bytes: enough to repeat its write-back.
struct KeptResult: Codable, Sendable {
    var input: MediaInfo
    var outputs: [OutputRole: OutputFile]
    /// Role → the storage key its output was stored under.
    var keys: [OutputRole: String]
    var damage: DamageReport?
}

/// `inputMetadata`: what METADATA found, and the SHA-256 of the bytes.
struct InputRecord: Encodable, Sendable {
    let info: MediaInfo
    let sha256: String

    private enum Keys: String, CodingKey { case sha256 }

    func encode(to encoder: any Encoder) throws {
        try info.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(sha256, forKey: .sha256)
    }
}
