import ArgumentParser
import Foundation
import Media

/// `media-worker process FILE --out DIR`: runs a stage on a local file, no database involved.
struct ProcessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Run a processing stage on a local video file and write its outputs into a folder.",
        discussion: """
            COMPRESSION writes video.mp4 (H.264/AAC, faststart, upright, no source metadata; a remux when \
            the source already fits the profile). PREVIEW writes preview.mp4 (3 s, muted, short side at most \
            360). THUMBNAIL writes poster.jpg (long side at most 1280) and thumbnail.jpg (at most 320), \
            upright and in SDR, from a representative frame near the start, with its BlurHash. METADATA only \
            reports. FULL_PROCESSING makes all of them from one decode of the input. A progress bar shows on \
            stderr when it is a terminal. With --json, stdout gets exactly one JSON object: {type, profile, \
            input, outputs, thumbnails, elapsedMs}, or {error: {code, message}} on failure.
            """
    )

    @Argument(help: "The video file.")
    var file: String

    @Option(name: .customLong("out"), help: "Folder for the outputs (created if missing).")
    var outputDirectory: String

    @Option(help: "Processing type: \(ProcessingType.allCases.map(\.rawValue).joined(separator: ", ")).")
    var type: ProcessingType = .fullProcessing

    @Option(help: "Quality profile: LOW, MEDIUM, HIGH or ULTRA.")
    var profile: QualityProfile = .medium

    @Option(help: "Most decoder and encoder threads to use (0: sized to the machine).")
    var threads: Int = 0

    @Flag(name: .customLong("no-remux"), help: "Re-encode even a source that already fits the profile.")
    var noRemux = false

    @OptionGroup var report: ReportOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup(title: "Resources") var resources: ProcessLimitOptions

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be 0 or more") }
    }

    func run() throws {
        let logger = report.makeLogger(label: "media-worker.process")
        let request = MediaProcessor.Request(
            inputPath: file, outputDirectory: outputDirectory, type: type, profile: profile,
            limits: limits.limits, threads: threads, allowRemux: !noRemux)
        let bar = ProgressBar(title: "\(type.rawValue) \(URL(fileURLWithPath: file).lastPathComponent)")
        resources.apply()
        let result: ProcessingReport
        do {
            result = try MediaProcessor.run(
                request, logger: logger, probed: { resources.lowerCPU(for: $0, type: type, profile: profile) },
                progress: { bar.update($0) })
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
