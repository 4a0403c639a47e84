import ArgumentParser
import Logging
import ServiceLifecycle
import Worker

/// `media-worker serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the worker: claim jobs from the VideoProcessing table and process them until stopped.",
        discussion: """
            Wakes on NOTIFY media_worker_jobs and polls every --poll-interval seconds. SIGTERM or SIGINT \
            stop claiming, give running jobs --shutdown-grace seconds, then stop them and put them back to \
            PENDING without counting an attempt.
            """
    )

    @OptionGroup var options: DaemonOptions

    @Flag(name: .customLong("until-idle"), help: "Exit once no job is pending or running (for demos and tests).")
    var untilIdle = false

    func run() async throws {
        let configuration = try options.configuration()
        let logger = options.makeLogger(label: "media-worker")
        let worker = WorkerService(
            configuration: configuration, storage: try configuration.makeStorage(), logger: logger, untilIdle: untilIdle
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
