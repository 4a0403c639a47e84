import ArgumentParser
import Foundation
import Media
import Worker

/// `media-worker run-job`: the isolated child the daemon starts for each job. Not for people.
struct RunJobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-job",
        abstract: "Internal: run one job's stages in an isolated child (started by serve and reprocess).",
        shouldDisplay: false
    )

    @Argument var input: String
    @Option(name: .customLong("out")) var outputDirectory: String
    @Option var type: ProcessingType
    @Option var profile: QualityProfile = .medium
    @Option var threads: Int = 0
    @Option var parent: Int32
    @OptionGroup var limits: LimitOptions
    @OptionGroup var resources: ProcessLimitOptions

    func run() throws {
        FFmpegLog.setLevel(.quiet)
        let request = MediaProcessor.Request(
            inputPath: input, outputDirectory: outputDirectory, type: type, profile: profile, limits: limits.limits,
            threads: threads)
        let status = JobChild.run(
            request, parentPID: parent, memoryBytes: resources.maxMemory.bytes, cpuSeconds: resources.maxCPU,
            logger: .init(label: "media-worker.child"))
        if status != 0 { throw ExitCode(status) }
    }
}
