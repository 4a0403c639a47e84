import Foundation
import Media
import Queue

extension JobRunner {
    /// Checks the child's outputs, uploads those not uploaded yet (the stills went up early, in
    /// this run or in a first look) under this run's keys, and records everything in one
    /// transaction, keeping the result for reuse under `reuseKey`.
    func finish(
        _ run: Run, report: ProcessingReport, directory: URL, stored alreadyStored: [OutputRole: StoredOutput],
        sha256: String, reuseKey: JobStore.ReuseKey?
    ) async throws -> Ending {
        let made: [StoredOutput]
        switch await store(report, from: directory, run: run, alreadyStored: alreadyStored) {
        case .stored(let stored): made = stored
        case .failed(let failure): return try await run.fail(failure)
        case .claimLost: return try await run.takenAway()
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
                    sha256: stored.reduce(into: [:]) { $0[$1.file.role] = $1.sha256 },
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
        case .stored(let made): stored = made
        case .failed(let failure): return try await run.fail(failure)
        case .claimLost: return try await run.takenAway()
        }
        let (job, store) = (run.job, store)
        let columns = JobStore.OutputColumns(stored, input: report.input, sha256: sha256)
        let estimate = estimatedSeconds(
            durationMs: report.input.durationMs ?? 0, type: job.processingType, profile: job.qualityProfile)
        let event = run.event(
            "queued",
            message: (stored.isEmpty ? "probed" : "stills published") + "; the rest waits for an encode slot")
        guard
            try await run.database.withSession(
                "park the job", { try store.park($0, job: job, columns, estimatedSeconds: estimate, event: event) })
        else { return try await run.takenAway() }
        if !stored.isEmpty {
            metrics.timeToStills(run.elapsed)
            observe(.stillsPublished)
        }
        return .parked
    }

    /// What storing a run's outputs came to.
    enum Storing {
        case stored([StoredOutput])
        case failed(JobFailure)
        /// The run no longer holds its job (or the database did not say so in time): nothing more
        /// was stored.
        case claimLost
    }

    /// Checks every output the child reported (it parsed untrusted input: its report is checked
    /// like input too) and uploads those not in `alreadyStored` (the same file).
    private func store(
        _ report: ProcessingReport, from directory: URL, run: Run, alreadyStored: [OutputRole: StoredOutput]
    ) async -> Storing {
        for output in report.outputs.values {
            if let problem = OutputCheck.problem(with: output, in: directory) {
                logger.error(
                    "the media process reported a bad output",
                    metadata: ["role": "\(output.role.rawValue)", "problem": "\(problem)"])
                return .failed(
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
                stored.append(try await upload(output, from: directory, run: run, damage: report.damage))
            } catch is ClaimLost {
                return .claimLost
            } catch {
                return .failed(JobFailure(.storage, "could not store the \(output.role.rawValue) output: \(error)"))
            }
        }
        metrics.stage("upload", duration: ContinuousClock.now - uploadStarted)
        return .stored(stored)
    }

    /// Uploads one output of the run's child under the run's own key, once the database has
    /// confirmed the run still holds its job (`ClaimLost` otherwise).
    func upload(_ output: OutputFile, from directory: URL, run: Run, damage: DamageReport?) async throws
        -> StoredOutput
    {
        guard await run.holdsClaim() else { throw ClaimLost() }
        let key = OutputKeys.output(jobId: run.job.id, token: run.job.token, role: output.role)
        let sent = try await storage.upload(
            directory.appendingPathComponent(output.path), key: key, contentType: output.mimeType)
        metrics.bytesUploaded(sent.bytes)
        return StoredOutput(
            file: output, key: key, url: storage.publicURL(for: key), sha256: sent.sha256,
            damage: output.role == .video ? damage : nil)
    }

    /// The completing transaction, for a run that made its outputs and for one that reused them
    /// (`reusedFrom`: `ReusedResultGone` is thrown when that result no longer stands).
    func complete(
        _ run: Run, input: MediaInfo, stored: [StoredOutput], sha256: String,
        reusable: JobStore.ReusableResult<KeptResult>?, reusedFrom: JobStore.FoundResult<KeptResult>? = nil,
        event: ProcessingLogEvent
    ) async throws -> Ending {
        let job = run.job
        let completion = JobStore.Completion<KeptResult>(
            columns: JobStore.OutputColumns(stored, input: input, sha256: sha256),
            outputTotalSize: Int64(stored.reduce(0) { $0 + $1.file.bytes }),
            actualDurationSeconds: Int(run.elapsed.components.seconds),
            estimatedDurationSeconds: estimatedSeconds(
                durationMs: input.durationMs ?? 0, type: job.processingType, profile: job.qualityProfile),
            event: event, reusable: reusable, reusedFrom: reusedFrom)
        let recordStarted = ContinuousClock.now
        let recorded: JobStore.CompletionOutcome
        do {
            recorded = try await run.database.withSession(
                "record the result", { [store, completion] in try store.complete($0, job: job, completion) })
        } catch let error as PostgresError where error.kind == .query || error.kind == .decoding {
            // The database answered but refused the write: a retry may find it fixed.
            return try await run.fail(JobFailure(.database, "the results could not be recorded (\(error))"))
        }
        metrics.stage("record", duration: ContinuousClock.now - recordStarted)
        switch recorded {
        case .recorded: return .completed
        case .fencedOff: return try await run.takenAway()
        case .sourceGone: throw ReusedResultGone()
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
}

/// What a completed job keeps for later jobs with the same bytes: enough to repeat its write-back.
struct KeptResult: Codable, Sendable {
    var input: MediaInfo
    var outputs: [OutputRole: OutputFile]
    /// Role → the storage key its output was stored under.
    var keys: [OutputRole: String]
    /// Role → the SHA-256 of what was stored (absent in results kept before it was recorded).
    var sha256: [OutputRole: String]?
    var damage: DamageReport?
}

/// A storage write refused because the run no longer holds its job.
struct ClaimLost: Error {}

/// A reuse whose source was replaced, erased or deleted before the reuse was recorded.
struct ReusedResultGone: Error {}

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
