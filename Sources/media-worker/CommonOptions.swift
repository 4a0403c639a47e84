public import ArgumentParser
import Foundation
import JobChild
import Logging
public import Media
public import Observability
import Worker

/// The limits a hostile file must stay within, shared by every command that opens media.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("max-duration"), help: "Longest accepted input, in seconds.")
    var maxDuration: Double = MediaLimits.default.maxDurationSeconds

    @Option(name: .customLong("max-pixels"), help: "Largest accepted frame, in pixels (width × height).")
    var maxPixels: Int = MediaLimits.default.maxPixels

    @Option(
        name: .customLong("max-decoded-pixels"),
        help: """
            Most decoding work for one input, in pixels decoded (frames × width × height), with a K, M, G or T \
            suffix; a shorter input gets a share in proportion to its duration.
            """)
    var maxDecodedPixels: PixelCount = PixelCount(MediaLimits.default.maxDecodedPixels)

    @Option(
        name: .customLong("max-input-size"), help: "Largest accepted input file: bytes, or with a K, M or G suffix.")
    var maxInputSize: ByteCount = ByteCount(bytes: MediaLimits.default.maxInputBytes)

    var limits: MediaLimits {
        MediaLimits(
            maxDurationSeconds: maxDuration, maxPixels: maxPixels, maxDecodedPixels: maxDecodedPixels.value,
            maxInputBytes: maxInputSize.bytes)
    }

    func validate() throws {
        guard maxDuration > 0, maxPixels > 0, maxDecodedPixels.value > 0, maxInputSize.bytes > 0 else {
            throw ValidationError("limits must be positive")
        }
    }
}

/// The memory and CPU a command that parses media may use: the same limits a job's child has, so a
/// hostile file costs a developer's machine no more than a media host.
struct ProcessLimitOptions: ParsableArguments {
    @Option(
        name: .customLong("max-memory"),
        help:
            "Address space this process may use: bytes, or with a K, M or G suffix (a job's child: MEDIA_WORKER_CHILD_MEMORY_MB)."
    )
    var maxMemory: ByteCount = ByteCount(bytes: 8 << 30)

    @Option(
        name: .customLong("max-cpu"),
        help: "CPU seconds this process may use, lowered to what the input's duration deserves once it is probed.")
    var maxCPU: Int = 3600 * ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard maxMemory.bytes >= 64 << 20, maxCPU > 0 else {
            throw ValidationError("--max-memory must be at least 64M and --max-cpu positive")
        }
    }

    /// Applies both limits to this process.
    func apply() {
        ResourceBudget.limitMemory(bytes: maxMemory.bytes)
        ResourceBudget.limitCPU(seconds: maxCPU)
    }

    /// The CPU seconds `info` deserves for `type` at `profile`.
    func cpuSeconds(
        for info: MediaInfo, type: ProcessingType, profile: QualityProfile,
        encodeWork: Double
    ) -> Int {
        ResourceBudget.cpuSeconds(for: info, type: type, profile: profile, ceiling: maxCPU, encodeWork: encodeWork)
    }

    /// Sets the CPU and output-size limits to what `info` deserves for `type` at `profile`, for
    /// this input only (the next file of the same command gets its own).
    func lower(
        for info: MediaInfo, type: ProcessingType, profile: QualityProfile, limits: MediaLimits,
        encodeWork: Double
    ) {
        ResourceBudget.limit(
            for: info, type: type, profile: profile, cpuCeiling: maxCPU, limits: limits,
            encodeWork: encodeWork, forNextInputOnly: true)
    }
}

/// A size in bytes, written as `4294967296`, `512M` or `4G` (powers of 1024).
struct ByteCount: ExpressibleByArgument {
    var bytes: Int64

    init(bytes: Int64) { self.bytes = bytes }

    init?(argument: String) {
        guard let bytes = parseCount(argument, unit: 1024) else { return nil }
        self.bytes = bytes
    }

    var defaultValueDescription: String { "\(bytes)" }
}

/// A number of pixels, written as `955514880000`, `955G` or `1T` (powers of 1000).
struct PixelCount: ExpressibleByArgument {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    init?(argument: String) {
        guard let value = parseCount(argument, unit: 1000) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { "\(value)" }
}

/// `text` as a whole number with an optional K, M, G or T suffix, each `unit` times the one before.
private func parseCount(_ text: String, unit: Int64) -> Int64? {
    var digits = text.uppercased()
    var multiplier: Int64 = 1
    if let last = digits.last, let power = Array("KMGT").firstIndex(of: last) {
        for _ in 0...power { multiplier *= unit }
        digits.removeLast()
    }
    guard let value = Int64(digits), value >= 0 else { return nil }
    return value * multiplier
}

/// The one logger a command passes down: one line per event on stderr (logfmt unless `format` or
/// MEDIA_WORKER_LOG_FORMAT say json; journald priorities under systemd), at `defaultLevel` unless
/// MEDIA_WORKER_LOG_LEVEL or `--verbose` (debug) say otherwise, with `secrets` masked. FFmpeg's own
/// messages show only at debug level.
func makeStandardErrorLogger(
    label: String, verbose: Bool, defaultLevel: Logger.Level, format: LogFormat? = nil, secrets: [String] = []
) -> Logger {
    let environment = ProcessInfo.processInfo.environment
    let configured = environment[Settings.logLevel.variable].flatMap { Logger.Level(rawValue: $0) }
    let level: Logger.Level = verbose ? .debug : configured ?? defaultLevel
    let format = format ?? environment[Settings.logFormat.variable].flatMap { LogFormat(rawValue: $0) } ?? .logfmt
    let journald = LineLogHandler.underJournald(environment: environment)
    let logger = Logger(label: label) { _ in
        LineLogHandler(level: level, format: format, journald: journald, secrets: secrets)
    }
    FFmpegLog.setLevel(level <= .debug ? .warnings : .quiet)
    return logger
}

extension LogFormat: ExpressibleByArgument {}

extension LoudnessTarget: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Output options shared by the commands that report on a file.
struct ReportOptions: ParsableArguments {
    @Flag(help: "Print one JSON object on stdout instead of a readable summary.")
    var json = false

    @Flag(name: .shortAndLong, help: "Log each step on stderr (same as MEDIA_WORKER_LOG_LEVEL=debug).")
    var verbose = false

    /// A logger on stderr: warnings by default, debug with `--verbose`, or MEDIA_WORKER_LOG_LEVEL.
    func makeLogger(label: String) -> Logger {
        makeStandardErrorLogger(label: label, verbose: verbose, defaultLevel: .warning)
    }

    /// Prints `value` as one line of JSON on stdout.
    func printJSON(_ value: some Encodable) throws {
        FileHandle.standardOutput.write(try JSONFormat.encoder().encode(value) + Data("\n".utf8))
    }

    /// Reports a failure as `<code>: <message>` on stderr (and as JSON on stdout with `--json`)
    /// and returns the exit code to leave with.
    func fail(_ error: MediaError, file: String? = nil) -> ExitCode {
        FileHandle.standardError.write(Data("\(file.map { "\($0.terminalSafe): " } ?? "")\(error.failure)\n".utf8))
        if json { try? printJSON(["error": error.failure]) }
        return ExitCode(1)
    }
}

extension ProcessingType: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(rawValue: argument.uppercased().replacingOccurrences(of: "-", with: "_"))
    }
}

extension MediaProcessor.EfficientVariant: ExpressibleByArgument {}

extension QualityProfile: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}
