import ArgumentParser
import Foundation
import JobChild
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
        let jobs = try OneShotJobs(
            configuration: configuration,
            logger: options.makeLogger(label: "media-worker", configuration: configuration))
        let bar = ProgressBar(title: "job \(jobId)")
        let ending: JobRunner.Ending
        do {
            ending = try await jobs.reprocess(jobId, force: force) { bar.update($0) }.ending
        } catch let problem as OneShotJobs.Problem {
            throw ValidationError("\(problem)")
        }
        bar.finish()
        print("job \(jobId): \(ending.rawValue)")
        if ending != .completed { throw ExitCode(1) }
    }
}
