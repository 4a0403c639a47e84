import ArgumentParser
import Foundation
import JobChild
import Media
import Worker

/// `media-worker run-job REQUEST`: the isolated child the daemon starts for each job, its one
/// argument a `JobRequest` as JSON. Not for people.
struct RunJobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-job",
        abstract: "Internal: run one job's stages in an isolated child (started by serve and reprocess).",
        shouldDisplay: false
    )

    @Argument var request: String

    func run() throws {
        FFmpegLog.setLevel(.quiet)
        let request = try JSONDecoder().decode(JobRequest.self, from: Data(request.utf8))
        let status = JobChild.run(request, logger: .init(label: "media-worker.child"))
        if status != 0 { throw ExitCode(status) }
    }
}
