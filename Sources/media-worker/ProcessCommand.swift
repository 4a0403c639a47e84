import ArgumentParser
import Foundation
import Media

/// `media-worker process FILE --out DIR`: runs a stage on a local file, no database involved.
struct ProcessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Run a processing stage on a local video file and write its outputs into a folder.",
        discussion: """
            Types: \(MediaProcessor.availableTypes.map(\.rawValue).joined(separator: ", ")).
            THUMBNAIL writes poster.jpg (long side at most 1280) and thumbnail.jpg (at most 320),
            upright and in SDR, from a representative frame near the start, with its BlurHash.
            A progress bar shows on stderr when it is a terminal. With --json, stdout gets exactly
            one JSON object: {type, profile, input, outputs, thumbnails, elapsedMs}, or
            {error: {code, message}} on failure.
            """
    )

    @Argument(help: "The video file.")
    var file: String

    @Option(name: .customLong("out"), help: "Folder for the outputs (created if missing).")
    var outputDirectory: String

    @Option(help: "Processing type: \(ProcessingType.allCases.map(\.rawValue).joined(separator: ", ")).")
    var type: ProcessingType = .thumbnail

    @Option(help: "Quality profile: LOW, MEDIUM, HIGH or ULTRA.")
    var profile: QualityProfile = .medium

    @Option(help: "Most decoder and encoder threads to use (0: sized to the machine).")
    var threads: Int = 0

    @OptionGroup var report: ReportOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions

    func validate() throws {
        guard MediaProcessor.availableTypes.contains(type) else {
            throw ValidationError(
                "\(type.rawValue) is not available in this build; use one of "
                    + MediaProcessor.availableTypes.map(\.rawValue).joined(separator: ", "))
        }
        guard threads >= 0 else { throw ValidationError("--threads must be 0 or more") }
    }

    func run() throws {
        let logger = report.makeLogger(label: "media-worker.process")
        let request = MediaProcessor.Request(
            inputPath: file, outputDirectory: outputDirectory, type: type, profile: profile,
            limits: limits.limits, threads: threads)
        let bar = ProgressBar(title: "\(type.rawValue) \(URL(fileURLWithPath: file).lastPathComponent)")
        let result: ProcessingReport
        do {
            result = try MediaProcessor.run(request, logger: logger) { bar.update($0) }
            bar.finish()
        } catch {
            bar.finish()
            throw report.fail(error)
        }
        if report.json {
            try report.printJSON(result)
        } else {
            print(Summary.describe(result, file: file, outputDirectory: outputDirectory))
        }
    }
}
