public import Foundation
public import Logging

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `time=… level=info msg="job started" job=12 type=COMPRESSION attempt=1`: for people and grep.
    case logfmt
    /// One JSON object per line: for log shippers.
    case json
}

/// One line per event on stderr, in logfmt or JSON. Under systemd (`JOURNAL_STREAM` set) each line
/// starts with its syslog priority (`<6>`), which journald turns into the entry's priority, and the
/// timestamp is left to journald. Known secrets are replaced by `***` in every line, whatever
/// logged them.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let format: LogFormat
    private let journald: Bool
    private let secrets: [String]
    private let write: @Sendable (String) -> Void

    /// Fields written first, in this order, when present.
    private static let leadingKeys = ["job", "type", "attempt"]

    public init(
        level: Logger.Level, format: LogFormat, journald: Bool, secrets: [String],
        write: @escaping @Sendable (String) -> Void = LineLogHandler.writeToStandardError
    ) {
        self.logLevel = level
        self.format = format
        self.journald = journald
        self.secrets = secrets.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
        self.write = write
    }

    /// Whether stderr goes to the journal (systemd sets `JOURNAL_STREAM` for a unit's output).
    public static func underJournald(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["JOURNAL_STREAM"].map { !$0.isEmpty } ?? false
    }

    /// One `write(2)` per line, so lines of concurrent jobs never interleave.
    public static let writeToStandardError: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        if let error = event.error { fields["error"] = "\(error)" }
        let ordered =
            Self.leadingKeys.compactMap { key in fields[key].map { (key, "\($0)") } }
            + fields.filter { !Self.leadingKeys.contains($0.key) }.sorted { $0.key < $1.key }.map {
                ($0.key, "\($0.value)")
            }
        var pairs: [(String, String)] = []
        if !journald { pairs.append(("time", Self.timestamp())) }
        pairs.append(("level", event.level.rawValue))
        pairs.append(("msg", "\(event.message)"))
        pairs += ordered
        var line: String
        switch format {
        case .logfmt: line = pairs.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            line = "{" + pairs.map { "\(Self.jsonString($0.0)):\(Self.jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        for secret in secrets { line = line.replacingOccurrences(of: secret, with: "***") }
        if journald { line = "<\(Self.priority(event.level))>" + line }
        write(line)
    }

    /// syslog priorities, as journald reads them from a `<N>` prefix.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, now.tv_nsec / 1_000_000)
    }

    /// A logfmt value: bare when it is one plain word, else quoted with `"`, `\` and control
    /// characters escaped, so one event is always one line.
    static func logfmtValue(_ value: String) -> String {
        let plain =
            !value.isEmpty
            && value.unicodeScalars.allSatisfy {
                $0.value > 0x20 && !"\"=\\".unicodeScalars.contains($0) && $0.value != 0x7f
            }
        return plain ? value : jsonString(value)
    }

    static func jsonString(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
