import ArgumentParser
import Foundation
import Media
import Worker

/// `media-worker enqueue FILE`: what the app does on upload, for local runs.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Put a local video into storage and insert its file_upload and video_processing rows (local runs).",
        discussion: "Prints the new job's id."
    )

    @Argument(help: "The video file.")
    var file: String

    @Option(help: "Processing type.")
    var type: ProcessingType = .fullProcessing

    @Option(help: "Quality profile (default: NULL, which means MEDIUM).")
    var profile: QualityProfile?

    @Option(name: .customLong("user-id"), help: "The uploader (created if missing).")
    var userId: Int = 1

    @OptionGroup var options: DaemonOptions

    func run() async throws {
        let configuration = try options.configuration()
        let jobs = try OneShotJobs(
            configuration: configuration,
            logger: options.makeLogger(label: "media-worker", configuration: configuration))
        print(try await jobs.enqueue(URL(fileURLWithPath: file), type: type, profile: profile, userId: userId))
    }
}
