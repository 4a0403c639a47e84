public import ArgumentParser
import Foundation
import Logging
public import Media
public import Operations

/// The limits a hostile file must stay within, shared by every command that opens media.
struct LimitOptions: ParsableArguments {
    @Option(name: .customLong("max-duration"), help: "Longest accepted input, in seconds.")
    var maxDuration: Double = MediaLimits.default.maxDurationSeconds

    @Option(name: .customLong("max-pixels"), help: "Largest accepted frame, in pixels (width × height).")
    var maxPixels: Int = MediaLimits.default.maxPixels

    @Option(name: .customLong("max-fps"), help: "Highest accepted average frame rate.")
    var maxFrameRate: Double = MediaLimits.default.maxFrameRate

    @Option(
        name: .customLong("max-input-size"), help: "Largest accepted input file: bytes, or with a K, M or G suffix.")
    var maxInputSize: ByteCount = ByteCount(bytes: MediaLimits.default.maxInputBytes)

    var limits: MediaLimits {
        MediaLimits(
            maxDurationSeconds: maxDuration, maxPixels: maxPixels, maxFrameRate: maxFrameRate,
            maxInputBytes: maxInputSize.bytes)
    }

    func validate() throws {
        guard maxDuration > 0, maxPixels > 0, maxFrameRate > 0, maxInputSize.bytes > 0 else {
            throw ValidationError("limits must be positive")
        }
    }
}

/// A size in bytes, written as `4294967296`, `512M` or `4G`.
struct ByteCount: ExpressibleByArgument {
    var bytes: Int64

    init(bytes: Int64) { self.bytes = bytes }

    init?(argument: String) {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = argument.uppercased()
        var multiplier: Int64 = 1
        if let last = digits.last, let unit = units[last] {
            multiplier = unit
            digits.removeLast()
        }
        guard let value = Int64(digits), value >= 0 else { return nil }
        bytes = value * multiplier
    }

    var defaultValueDescription: String { "\(bytes)" }
}

/// The one logger a command passes down: one line per event on stderr (logfmt unless `format` or
/// MEDIA_WORKER_LOG_FORMAT say json; journald priorities under systemd), at `defaultLevel` unless
/// MEDIA_WORKER_LOG_LEVEL or `--verbose` (debug) say otherwise, with `secrets` masked. FFmpeg's own
/// messages show only at debug level.
func makeStandardErrorLogger(
    label: String, verbose: Bool, defaultLevel: Logger.Level, format: LogFormat? = nil, secrets: [String] = []
) -> Logger {
    let environment = ProcessInfo.processInfo.environment
    let configured = environment["MEDIA_WORKER_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
    let level: Logger.Level = verbose ? .debug : configured ?? defaultLevel
    let format = format ?? environment["MEDIA_WORKER_LOG_FORMAT"].flatMap { LogFormat(rawValue: $0) } ?? .logfmt
    let journald = LineLogHandler.underJournald(environment: environment)
    let logger = Logger(label: label) { _ in
        LineLogHandler(level: level, format: format, journald: journald, secrets: secrets)
    }
    FFmpegLog.setLevel(level <= .debug ? .warnings : .quiet)
    return logger
}

extension LogFormat: ExpressibleByArgument {}

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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
    }

    /// Reports a failure as `<code>: <message>` on stderr (and as JSON on stdout with `--json`)
    /// and returns the exit code to leave with.
    func fail(_ error: MediaError) -> ExitCode {
        FileHandle.standardError.write(Data("\(error.code): \(error.message)\n".utf8))
        if json {
            try? printJSON(["error": ["code": error.code, "message": error.message]])
        }
        return ExitCode(1)
    }
}

extension ProcessingType: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(rawValue: argument.uppercased().replacingOccurrences(of: "-", with: "_"))
    }
}

extension QualityProfile: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}
