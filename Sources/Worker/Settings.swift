import Queue
import Storage

/// One setting: the environment variable that sets it (or a family of them documented together),
/// the flag that overrides it, its default and what it means. Declared once in `Settings`; the
/// environment reader (`Configuration`), the flags and their `--help`, and the settings table in
/// Operations.md (checked by a test) are all made from it.
public struct Setting: Sendable {
    public enum Fallback: Sendable {
        /// A default the reader parses like a value from the environment.
        case value(String)
        /// A default computed at start-up (or none), as the documentation says it.
        case described(String)
        /// No default: commands that need it refuse to start without it.
        case required
    }

    public let variables: [String]
    /// The long flag that overrides it, without dashes.
    public let flag: String?
    public let fallback: Fallback
    /// Markdown; plain for a setting with a flag (its `--help` shows it).
    public let meaning: String

    public var variable: String { variables[0] }

    init(_ variables: String..., flag: String? = nil, default fallback: Fallback, meaning: String) {
        self.variables = variables
        self.flag = flag
        self.fallback = fallback
        self.meaning = meaning
    }

    /// The default as the environment would spell it (nil when described or required).
    var defaultValue: String? { if case .value(let text) = fallback { text } else { nil } }

    /// `--help` of its flag: "Seconds … (MEDIA_WORKER_STALE_AFTER; 60)."
    public var help: String {
        let shown =
            switch fallback {
            case .value(let text): text
            case .described(let text): text
            case .required: "required"
            }
        return "\(meaning.prefix(1).uppercased())\(meaning.dropFirst()) (\(variable); \(shown))."
    }

    /// Its row of the settings table.
    var row: String {
        let prefix = variables.count > 1 ? commonPrefix(variables) : ""
        let names = variables.enumerated().map { index, name in
            index == 0 || prefix.isEmpty ? "`\(name)`" : "`…_\(name.dropFirst(prefix.count))`"
        }
        let shown =
            switch fallback {
            case .value(let text): Double(text) == nil ? "`\(text)`" : text
            case .described(let text): text
            case .required: "(required)"
            }
        return "| \(names.joined(separator: ", ")) | \(flag.map { "`--\($0)`" } ?? "") | \(shown) | \(meaning) |"
    }

    /// The longest prefix the names share, up to and including an underscore.
    private func commonPrefix(_ names: [String]) -> String {
        var prefix = Substring(names[0])
        for name in names.dropFirst() { prefix = prefix.prefix(zip(prefix, name).prefix { $0 == $1 }.count) }
        guard let underscore = prefix.lastIndex(of: "_") else { return "" }
        return String(prefix[...underscore])
    }
}

/// Every setting, in the order Operations.md lists them.
public enum Settings {
    public static let databaseURL = Setting(
        "DATABASE_URL", flag: "database-url", default: .required, meaning: "a libpq connection string or URI")
    public static let storageURL = Setting(
        "MEDIA_STORAGE_URL", flag: "storage-url", default: .required,
        meaning: "a file:///dir or s3://BUCKET[/PREFIX]?endpoint=…&region=…&pathStyle=… URL (see Object storage)")
    public static let publicURL = Setting(
        "MEDIA_PUBLIC_URL", flag: "public-url", default: .described("none: the object's own URL"),
        meaning: "base URL of stored outputs (a CDN in front of the bucket)")
    public static let awsCredentials = Setting(
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", default: .described(""),
        meaning: "S3 credentials; never logged")
    public static let awsRegion = Setting(
        "AWS_REGION", default: .described("`\(S3Location.defaultRegion)`"),
        meaning: "the bucket's region when the URL has no `region=` (or `AWS_DEFAULT_REGION`)")
    public static let concurrency = Setting(
        "MEDIA_WORKER_CONCURRENCY", flag: "concurrency", default: .described("cores / 2"),
        meaning: "encode slots: jobs at once on this host, any work")
    public static let fastSlots = Setting(
        "MEDIA_WORKER_FAST_SLOTS", flag: "fast-slots", default: .value("1"),
        meaning: "fast-lane slots beside the encode slots, for quick work only")
    public static let maxSlotsPerUploader = Setting(
        "MEDIA_WORKER_MAX_SLOTS_PER_UPLOADER", default: .value("0"),
        meaning: "slots one uploader may hold fleet-wide while another uploader's job waits; `0` no cap")
    public static let pollInterval = Setting(
        "MEDIA_WORKER_POLL_INTERVAL", flag: "poll-interval",
        default: .described("5 (1 in transaction pool mode without a listen URL)"), meaning: "seconds between polls")
    public static let poolMode = Setting(
        "MEDIA_WORKER_POOL_MODE", default: .value("session"),
        meaning: "`transaction` behind PgBouncer/RDS Proxy/Supavisor in transaction mode")
    public static let listenURL = Setting(
        "MEDIA_WORKER_LISTEN_URL", default: .described("none"),
        meaning: "a direct connection string for `LISTEN` in transaction pool mode")
    public static let maxConnections = Setting(
        "MEDIA_WORKER_MAX_CONNECTIONS", default: .value("4"),
        meaning: "connections one daemon holds in all (one to `LISTEN`, one for reuse locks, the rest shared)")
    public static let statementTimeout = Setting(
        "MEDIA_WORKER_STATEMENT_TIMEOUT", default: .value("30"),
        meaning: "seconds any statement may run (`SET LOCAL statement_timeout`)")
    public static let lockTimeout = Setting(
        "MEDIA_WORKER_LOCK_TIMEOUT", default: .value("5"),
        meaning: "seconds a statement waits for a lock another session holds")
    public static let staleAfter = Setting(
        "MEDIA_WORKER_STALE_AFTER", flag: "stale-after", default: .value("60"),
        meaning: "seconds without heartbeat before rescue")
    public static let maxAttempts = Setting(
        "MEDIA_WORKER_MAX_ATTEMPTS", flag: "max-attempts", default: .value("3"),
        meaning: "attempts in all before FAILED")
    public static let retryBase = Setting(
        "MEDIA_WORKER_RETRY_BASE", flag: "retry-base", default: .value("30"),
        meaning: "seconds before the first retry, doubling")
    public static let shutdownGrace = Setting(
        "MEDIA_WORKER_SHUTDOWN_GRACE", flag: "shutdown-grace", default: .value("30"),
        meaning: "seconds running jobs get on SIGTERM")
    public static let jobTimeout = Setting(
        "MEDIA_WORKER_JOB_TIMEOUT", flag: "job-timeout", default: .value("3600"), meaning: "wall-clock seconds per job")
    public static let uploadWait = Setting(
        "MEDIA_WORKER_UPLOAD_WAIT", default: .value("3600"), meaning: "seconds a job waits for its upload")
    public static let childMemory = Setting(
        "MEDIA_WORKER_CHILD_MEMORY_MB", default: .value("8192"),
        meaning: "address-space limit of a job's child in MiB (raised to what its decoders and encoders need)")
    public static let temporaryDirectory = Setting(
        "MEDIA_WORKER_TMPDIR", default: .described("`$CACHE_DIRECTORY`, `$TMPDIR`, `/tmp`"),
        meaning: "where jobs' private folders go")
    public static let tables = Setting(
        "MEDIA_WORKER_TABLE_VIDEO_PROCESSING", "MEDIA_WORKER_TABLE_FILE_UPLOAD", "MEDIA_WORKER_TABLE_USER",
        "MEDIA_WORKER_TABLE_OUTPUTS", "MEDIA_WORKER_TABLE_PAUSED", "MEDIA_WORKER_TABLE_VARIANTS",
        "MEDIA_WORKER_TABLE_PIECES", "MEDIA_WORKER_TABLE_UNREFERENCED", "MEDIA_WORKER_TABLE_SWEEPS",
        "MEDIA_WORKER_TABLE_MIGRATIONS",
        default: .described(TableNames.defaultNames.map { "`\($0)`" }.joined(separator: ", ")),
        meaning: "table names, schema-qualified allowed")
    public static let eraseAfter = Setting(
        "MEDIA_WORKER_ERASE_AFTER", default: .value("600"),
        meaning:
            "seconds within which the outputs of a deleted upload (or user, or job row) are gone from storage and from "
            + "the rows; `0` at the next sweep")
    public static let sweepGrace = Setting(
        "MEDIA_WORKER_SWEEP_GRACE", default: .value("3600"),
        meaning:
            "seconds a replaced object (a reprocess) or one no row ever named (a run that lost its claim) stays before "
            + "the sweep removes it, so a client that just read its URL can still fetch it; `0` at the next sweep")
    public static let reuse = Setting(
        "MEDIA_WORKER_REUSE", default: .value("on"),
        meaning: "reuse an earlier job's outputs for the same bytes (`on` or `off`)")
    public static let reuseWait = Setting(
        "MEDIA_WORKER_REUSE_WAIT", default: .value("300"),
        meaning: "seconds a job waits while another worker makes the same result")
    public static let stillsFirst = Setting(
        "MEDIA_WORKER_STILLS_FIRST", default: .value("on"),
        meaning: "FULL_PROCESSING publishes its stills before the long pass")
    public static let maxBytes = Setting(
        "MEDIA_WORKER_MAX_BYTES_LOW", "MEDIA_WORKER_MAX_BYTES_MEDIUM", "MEDIA_WORKER_MAX_BYTES_HIGH",
        "MEDIA_WORKER_MAX_BYTES_ULTRA", default: .described("none"),
        meaning:
            "the most a job's `video` may weigh at that profile (bytes, or `64K`, `16M`, `1G`): an encode over it is "
            + "made again by x264's second pass to 90–100 % of it; one that cannot fit at 0.01 bit per pixel is "
            + "`limits_exceeded` at once; results kept for reuse that are over it are made again")
    public static let pieceSeconds = Setting(
        "MEDIA_WORKER_PIECE_SECONDS", default: .value("30"),
        meaning:
            "a long video's main video is encoded in pieces of about this many seconds, by any worker's free encode "
            + "slot; `0` never")
    public static let piecesAfter = Setting(
        "MEDIA_WORKER_PIECES_AFTER", default: .value("120"),
        meaning: "seconds a video must last to be cut into pieces (shorter ones are one pass)")
    public static let variantAfterReuses = Setting(
        "MEDIA_WORKER_VARIANT_AFTER_REUSES", default: .value("3"),
        meaning: "a result reused (forwarded) this many times queues its AV1 variant as background work; `0` never")
    public static let efficientVariant = Setting(
        "MEDIA_WORKER_EFFICIENT_VARIANT", default: .value("free"),
        meaning:
            "COMPRESSION and FULL_PROCESSING also write the video in a more efficient codec: `free` copies an HEVC or "
            + "AV1 upload that fits the profile (`video_hevc`, `video_av1`, no encode); `always` also encodes "
            + "`video_av1` with SVT-AV1 when there is no such copy (about 1.8× the job's CPU); `off`")
    public static let loudness = Setting(
        "MEDIA_WORKER_LOUDNESS", flag: nil, default: .value("-16"),
        meaning: "the integrated loudness (EBU R128, LUFS) every output's audio is levelled to by one linear gain, "
            + "measured from the audio alone before the encode: the true peak stays under −1.5 dBTP (the gain is "
            + "lowered to keep it), a clip under −50 LUFS is left as it is; `off` keeps the source's level")
    public static let storyboardAfter = Setting(
        "MEDIA_WORKER_STORYBOARD_AFTER", default: .value("30"),
        meaning: "FULL_PROCESSING of a video lasting at least this many seconds also makes `storyboard` (one JPEG "
            + "of small frames every 2 s, or more often than every 1 % of a long video) and `storyboard_vtt` (its "
            + "WebVTT cues) for scrubbing; `0` never")
    public static let sandbox = Setting(
        "MEDIA_WORKER_SANDBOX", default: .value("full"),
        meaning:
            "`full`: no job runs unless a job's child can be fully confined (Landlock, seccomp, no new privileges, not "
            + "dumpable); `serve` stays not ready and says why. **`partial` is DANGEROUS**: jobs run with whatever "
            + "confinement the kernel grants, so a stranger's file meets a decoder that may read the host's files")
    public static let logLevel = Setting(
        "MEDIA_WORKER_LOG_LEVEL", default: .described("`info` (`warning` for `process`; `debug` with `-v`)"),
        meaning: "trace, debug, info, notice, warning, error, critical")
    public static let logFormat = Setting(
        "MEDIA_WORKER_LOG_FORMAT", flag: "log-format", default: .value("logfmt"),
        meaning: "the log lines' format: logfmt or json")
    public static let metricsAddress = Setting(
        "MEDIA_WORKER_METRICS_ADDR", flag: "metrics-addr", default: .described("off"),
        meaning: "the host:port of /metrics, /healthz and /readyz")
    public static let systemd = Setting(
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM", default: .described("set by systemd"),
        meaning: "sd_notify, watchdog, journald priorities")

    public static let all: [Setting] = [
        databaseURL, storageURL, publicURL, awsCredentials, awsRegion, concurrency, fastSlots, maxSlotsPerUploader,
        pollInterval, poolMode, listenURL, maxConnections, statementTimeout, lockTimeout, staleAfter, maxAttempts,
        retryBase, shutdownGrace, jobTimeout, uploadWait, childMemory, temporaryDirectory, tables, eraseAfter,
        sweepGrace, reuse, reuseWait, stillsFirst, maxBytes, pieceSeconds, piecesAfter, variantAfterReuses,
        efficientVariant, loudness, storyboardAfter, sandbox, logLevel, logFormat, metricsAddress, systemd,
    ]

    /// The settings table of Operations.md.
    public static var markdownTable: String {
        (["| variable | flag | default | |", "|---|---|---|---|"] + all.map(\.row)).joined(separator: "\n")
    }
}
