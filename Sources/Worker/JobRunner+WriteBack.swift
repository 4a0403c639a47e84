import Foundation
import Media
import Queue

extension JobRunner {
    /// Checks the child's outputs, uploads them under deterministic keys and records everything
    /// in one transaction.
    func finish(_ run: Run, report: ProcessingReport, directory: URL) async throws -> Ending {
        let job = run.job
        // The child parsed untrusted input: its report is checked like input too.
        for output in report.outputs.values {
            if let problem = OutputCheck.problem(with: output, in: directory) {
                logger.error(
                    "the media process reported a bad output",
                    metadata: ["role": "\(output.role.rawValue)", "problem": "\(problem)"])
                return try await run.fail(
                    JobFailure(.internal, "the media process reported a bad \(output.role.rawValue) output"))
            }
        }
        var stored: [StoredOutput] = []
        let uploadStarted = ContinuousClock.now
        for output in report.outputs.values.sorted(by: { $0.role < $1.role }) {
            let key = OutputKeys.key(jobId: job.id, role: output.role)
            do {
                try await storage.upload(
                    directory.appendingPathComponent(output.path), key: key, contentType: output.mimeType)
            } catch {
                return try await run.fail(
                    JobFailure(.storage, "could not store the \(output.role.rawValue) output: \(error)"))
            }
            metrics.bytesUploaded(Int64(output.bytes))
            stored.append(
                StoredOutput(
                    file: output, key: key, url: storage.publicURL(for: key),
                    damage: output.role == .video ? report.damage : nil))
        }
        metrics.stage("upload", duration: ContinuousClock.now - uploadStarted)
        let byRole = Dictionary(uniqueKeysWithValues: stored.map { ($0.file.role.rawValue, $0) })
        let completion = JobStore.Completion(
            outputStorageKeys: byRole.mapValues(\.key), outputUrls: byRole.mapValues(\.url),
            outputTotalSize: Int64(stored.reduce(0) { $0 + $1.file.bytes }),
            outputMetadata: byRole.mapValues(\.metadata), inputMetadata: report.input,
            thumbnails: stored.filter(\.file.role.isStill).map(\.thumbnail),
            actualDurationSeconds: Int(run.elapsed.components.seconds),
            uploadVideo: VideoSummary(report.input), uploadVariants: byRole.mapValues(\.variant),
            posterUrl: byRole[OutputRole.poster.rawValue]?.url,
            estimatedDurationSeconds: estimatedSeconds(
                durationMs: report.input.durationMs ?? 0, type: job.processingType, profile: job.qualityProfile),
            event: run.event("completed", message: completionMessage(report)))
        let recordStarted = ContinuousClock.now
        let recorded: Bool
        do {
            recorded = try await run.connection.withSession(
                "record the result", { [store] in try store.complete($0, job: job, completion) })
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
