import ArgumentParser
import Foundation
import Queue
import Worker

/// `media-worker reprocess JOB_ID`: one job, now, in the foreground.
struct ReprocessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reprocess",
        abstract: "Reset one job (whatever its state) and run it now in the foreground, as the daemon would.",
        discussion: """
            Refuses a job a live worker is running unless --force. Writes the row exactly as the daemon \
            does. Exits 0 when the job ends COMPLETED, 1 otherwise.
            """
    )

    @Argument(help: "The video_processing id.")
    var jobId: Int

    @Flag(help: "Take the job even from a live worker (that worker's late writes are then fenced off).")
    var force = false

    @OptionGroup var options: DaemonOptions

    func run() async throws {
        // The environment holds the database password and S3 secret; job children run as the
        // same user and must not read it from /proc.
        _ = Sandbox.protectDaemon()
        let configuration = try options.configuration()
        let logger = options.makeLogger(label: "media-worker", configuration: configuration)
        let store = JobStore(tables: configuration.tables)
        let connection = PostgresConnection(url: configuration.databaseURL, label: "reprocess", logger: logger)
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        let event = ProcessingLogEvent(
            event: "reprocess", attempt: 0, host: host, pid: pid, message: force ? "forced" : nil)
        let reset = try await connection.withSession("reset the job") { [jobId, force] in
            try store.resetForReprocess($0, jobId: jobId, force: force, event: event)
        }
        switch reset {
        case .missing: throw ValidationError("no job \(jobId)")
        case .heldByWorker:
            throw ValidationError("job \(jobId) is being processed by a live worker; wait, or use --force")
        case .reset: break
        }
        guard
            let job = try await connection.withSession(
                "claim the job",
                { [jobId] in
                    try store.claim(
                        $0, retryBase: 0, uploadWait: configuration.uploadWait, host: host, pid: pid, jobId: jobId)
                })
        else { throw ValidationError("job \(jobId) was claimed by another worker first") }
        await connection.close()

        let bar = ProgressBar(title: "job \(jobId) \(job.processingType)")
        let runner = JobRunner(configuration: configuration, storage: try configuration.makeStorage(), logger: logger)
        let ending = await runner.run(job, threads: 0) { bar.update($0) }
        bar.finish()
        print("job \(jobId): \(ending.rawValue)")
        if ending != .completed { throw ExitCode(1) }
    }
}
