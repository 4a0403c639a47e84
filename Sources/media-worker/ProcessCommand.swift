import ArgumentParser
import Foundation
import JobVocabulary
import Media
import Pages

/// `media-worker process FILE… --out DIR [--report]`: runs a stage on local files, no database
/// involved.
struct ProcessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Run a processing stage on local video files and write their outputs into a folder.",
        discussion: """
            COMPRESSION writes video.mp4 (H.264/AAC, faststart, upright, no source metadata; a remux when \
            the source already fits the profile). PREVIEW writes preview.mp4 (3 s, muted, short side at most \
            360). THUMBNAIL writes poster.jpg (long side at most 1280) and thumbnail.jpg (at most 320), \
            upright and in SDR, from a representative frame near the start, with its BlurHash. METADATA only \
            reports. FULL_PROCESSING makes all of them from one decode of the input. A progress bar shows on \
            stderr when it is a terminal. With one file its outputs go into the folder itself; with several, \
            each gets a subfolder named after it. With --report, the folder also gets report.html: a contact \
            sheet of every input (stills, BlurHash, preview, video, before and after), self-contained, to \
            open in any browser. With --json, stdout gets one JSON object per file: {type, profile, input, \
            outputs, elapsedMs}, or {error: {code, message}} on failure.
            """
    )

    @Argument(help: "The video files.")
    var files: [String]

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

    @Option(
        help: ArgumentHelp(
            "Also make the video in a more efficient codec: free (copy an HEVC or AV1 upload that fits: "
                + "video_hevc, video_av1), always (else encode video_av1 with SVT-AV1, about 1.8x the CPU), off.",
            valueName: "free|always|off"))
    var variant: MediaProcessor.EfficientVariant = .whenFree

    @Option(
        name: .customLong("max-bytes"),
        help: ArgumentHelp(
            "The most the video may weigh (e.g. 8M): an encode that comes out larger is made again by x264's "
                + "second pass to between 90 and 100 % of it.", valueName: "size"))
    var maxBytes: ByteCount?

    @Option(
        help: ArgumentHelp(
            "Encode the video of an input at least twice this long in pieces of about this many seconds, cut at "
                + "keyframes, one after another, then join them without re-encoding: what the fleet does in "
                + "parallel for long uploads.", valueName: "seconds"))
    var pieces: Double?

    @Option(
        help: ArgumentHelp(
            "Level every output's audio to this integrated loudness (EBU R128) by one linear gain, its true peak "
                + "under -1.5 dBTP, clips under -50 LUFS left as they are; off keeps the source's level.",
            valueName: "LUFS|off"))
    var loudness = LoudnessTarget.lufs(LoudnessLevel.target)

    @Option(
        name: .customLong("storyboard-after"),
        help: ArgumentHelp(
            "FULL_PROCESSING of a video at least this long also makes a storyboard for scrubbing (storyboard.webp "
                + "and its WebVTT cues); 0: never.", valueName: "seconds"))
    var storyboardAfter: Double = 30

    @Flag(help: "Write report.html, a contact sheet of the run, into the output folder.")
    var report = false

    @OptionGroup var output: ReportOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup(title: "Resources") var resources: ProcessLimitOptions

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be 0 or more") }
        guard (pieces ?? 1) >= 1 else { throw ValidationError("--pieces must be at least 1 second") }
        guard storyboardAfter >= 0 else { throw ValidationError("--storyboard-after must not be negative") }
        guard !files.isEmpty else { throw ValidationError("name at least one video file") }
    }

    func run() throws {
        let logger = output.makeLogger(label: "media-worker.process")
        resources.apply()
        // SVT-AV1 prints its configuration to stderr unless told otherwise (1: errors only).
        setenv("SVT_LOG", "1", 0)
        let started = ContinuousClock.now
        var entries: [ContactSheet.Entry] = []
        var failed = false
        for (position, file) in files.enumerated() {
            let folder = files.count == 1 ? "" : Self.folderName(position: position, file: file)
            var request = MediaProcessor.Request(
                inputPath: file, outputDirectory: (outputDirectory as NSString).appendingPathComponent(folder),
                type: type, profile: profile, limits: limits.limits, threads: threads, allowRemux: !noRemux)
            request.efficientVariant = variant
            request.maxBytes = maxBytes?.bytes
            request.pieceSeconds = pieces
            request.loudnessTarget = loudness.lufs
            request.storyboardAfter = storyboardAfter > 0 ? storyboardAfter : nil
            let bar = ProgressBar(title: "\(type.rawValue) \(URL(fileURLWithPath: file).lastPathComponent)")
            let fileStarted = ContinuousClock.now
            let outcome: Result<ProcessingReport, MediaError>
            do {
                outcome = .success(
                    try MediaProcessor.run(
                        request, logger: logger,
                        probed: {
                            resources.lower(
                                for: $0, type: type, profile: profile, limits: limits.limits,
                                encodeWork: request.encodeWork)
                        },
                        cpuBudget: {
                            resources.cpuSeconds(for: $0, type: type, profile: profile, encodeWork: request.encodeWork)
                        },
                        progress: { bar.update($0) }))
            } catch {
                outcome = .failure(error)
            }
            bar.finish()
            switch outcome {
            case .success(let result):
                if output.json {
                    try output.printJSON(result)
                } else {
                    print(Summary.describe(result, file: file, outputDirectory: request.outputDirectory))
                }
            case .failure(let error):
                failed = true
                _ = output.fail(error, file: files.count > 1 ? file : nil)
            }
            entries.append(
                ContactSheet.Entry(
                    name: URL(fileURLWithPath: file).lastPathComponent, folder: folder, outcome: outcome,
                    seconds: (ContinuousClock.now - fileStarted).inSeconds,
                    storyboardCues: (try? outcome.get().outputs[.storyboardVtt]).flatMap { cues in
                        try? String(
                            contentsOfFile: ((outputDirectory as NSString).appendingPathComponent(folder) as NSString)
                                .appendingPathComponent(cues.path), encoding: .utf8)
                    }))
        }
        if report {
            let page = (outputDirectory as NSString).appendingPathComponent("report.html")
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
            try Data(ContactSheet.html(entries, wallSeconds: (ContinuousClock.now - started).inSeconds).utf8)
                .write(to: URL(fileURLWithPath: page))
            FileHandle.standardError.write(Data("contact sheet: \(page)\n".utf8))
        }
        if failed { throw ExitCode(1) }
    }

    /// A subfolder for the `position`th file: its number and name, letters and digits only (so
    /// the report's relative links need no escaping).
    static func folderName(position: Int, file: String) -> String {
        let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let safe = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" }.prefix(40))
        return String(format: "%02d-", position + 1) + safe
    }
}
