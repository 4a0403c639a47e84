public import Foundation
public import JobChild
public import Logging
public import Media
public import Queue
public import Storage

/// Every setting of the daemon, read once at start-up from the environment (so a systemd
/// `EnvironmentFile` works) and overridden by flags, validated there.
public struct Configuration: Sendable {
    /// libpq connection string or URI. Never logged: see `redactedDatabaseURL`.
    public var databaseURL: String
    /// `file:///some/dir` or `s3://bucket/prefix?endpoint=…&region=…&pathStyle=…`.
    public var storageURL: String
    /// Base URL clients fetch outputs from (a CDN, a web server over the storage folder).
    public var publicURL: String?
    /// How the database is reached: directly (or through a session pooler), or through a
    /// transaction-mode pooler (PgBouncer, RDS Proxy, Supavisor), where no session state lasts
    /// between transactions: no `LISTEN` (unless `listenURL`), no session advisory locks.
    public var poolMode: PoolMode
    /// A direct connection string for `LISTEN` when `poolMode` is `transaction` (optional: without
    /// it the daemon polls every `pollInterval`).
    public var listenURL: String?
    /// Connections one daemon may hold in all (`MEDIA_WORKER_MAX_CONNECTIONS`): see
    /// `connectionBudget`.
    public var maxConnections: Int
    /// `statement_timeout` and `lock_timeout` of every transaction.
    public var statementLimits: StatementLimits
    /// Encode slots: jobs run at once on this host (any work, long encodes included).
    public var concurrency: Int
    /// Fast-lane slots beside the encode slots, for quick work only (THUMBNAIL, METADATA, the
    /// first look of a job with a long pass: reuse, probe, stills), so it never waits behind a
    /// long encode.
    public var fastSlots: Int
    /// Slots one uploader may hold across the fleet while another uploader's job waits (0: no cap
    /// beyond the fewest-running-first order).
    public var maxSlotsPerUploader: Int
    /// Seconds between polls when no notification arrives.
    public var pollInterval: Double
    /// Seconds without a heartbeat after which a PROCESSING job counts as abandoned.
    public var staleAfter: Double
    /// Attempts in all before a retryable failure becomes FAILED.
    public var maxAttempts: Int
    /// Seconds before the first retry; doubles per attempt (±25 % jitter).
    public var retryBase: Double
    /// Seconds running jobs get to finish on SIGTERM before they are stopped and released.
    public var shutdownGrace: Double
    /// Seconds a job waits for its upload to reach COMPLETED before it fails.
    public var uploadWait: Double
    /// Wall-clock seconds a job's child may run.
    public var jobTimeout: Double
    /// Address-space limit of a job's child, in bytes.
    public var childMemoryBytes: Int64
    /// Where jobs' private folders are made.
    public var temporaryDirectory: String
    public var tables: TableNames
    /// `host:port` of the metrics and health endpoints; nil (the default) serves none.
    public var metricsAddress: String?
    /// The variables S3 credentials and the default region are read from (`AWS_*`).
    public var awsEnvironment: [String: String]
    /// Reuse the outputs of an earlier job for the same bytes (`MEDIA_WORKER_REUSE`, on).
    public var reuseOutputs: Bool
    /// FULL_PROCESSING publishes its stills before the long pass (`MEDIA_WORKER_STILLS_FIRST`, on).
    public var stillsFirst: Bool
    /// Whether COMPRESSION and FULL_PROCESSING also make `video_hevc`/`video_av1`
    /// (`MEDIA_WORKER_EFFICIENT_VARIANT`: `free`, the default, copies an HEVC or AV1 upload that
    /// fits; `always` encodes AV1 when there is no such copy; `off`).
    public var efficientVariant: MediaProcessor.EfficientVariant
    /// How many reuses (forwards) of a result queue its efficient variant as background work
    /// (`MEDIA_WORKER_VARIANT_AFTER_REUSES`, 3; 0: never).
    public var variantAfterReuses: Int
    /// A long video (at least `piecesAfter` seconds, `MEDIA_WORKER_PIECES_AFTER`, 120) whose video
    /// is encoded is made in pieces of about `pieceSeconds` (`MEDIA_WORKER_PIECE_SECONDS`, 30; 0:
    /// never), which any worker's free encode slot may take.
    public var pieceSeconds: Double
    public var piecesAfter: Double
    /// The most a job's main video may weigh, per profile (`MEDIA_WORKER_MAX_BYTES_LOW`, `…_MEDIUM`,
    /// `…_HIGH`, `…_ULTRA`: bytes, or with K, M or G); none by default.
    public var maxBytes: [QualityProfile: Int64]
    /// The loudness every output's audio is levelled to, in LUFS (`MEDIA_WORKER_LOUDNESS`, -16;
    /// nil: `off`, the source's level kept).
    public var loudnessTarget: Double?
    /// FULL_PROCESSING of a video at least this long makes a storyboard
    /// (`MEDIA_WORKER_STORYBOARD_AFTER`, 30 s; nil: `0`, never).
    public var storyboardAfter: Double?
    /// How much of the job sandbox serve insists on (`MEDIA_WORKER_SANDBOX`: `full`, or the
    /// dangerous `partial`).
    public var sandboxPolicy: SandboxPolicy
    /// Seconds a job waits while another worker makes the same result (then makes it itself).
    public var reuseWait: Double
    /// Seconds within which the outputs of a deleted upload (or job row, or user) are gone from
    /// storage (`MEDIA_WORKER_ERASE_AFTER`, 600).
    public var eraseAfter: Double
    /// Seconds a replaced or never-recorded object stays before the sweep removes it, so a client
    /// that has just read the old URL can still fetch it (`MEDIA_WORKER_SWEEP_GRACE`, 3600).
    public var sweepGrace: Double
    /// Which pipeline made a result: reuse only serves results of this one (see `Pipeline`).
    public var pipelineVersion = Pipeline.version
    /// The program a job's child runs (`run-job`): this very binary, unless a test says otherwise.
    public var childExecutable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()

    /// One slot per two cores, at least one (the Design article's *Slots* gives the measurements behind it).
    public static var defaultConcurrency: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }

    /// Reads the environment: each setting by its declaration in `Settings` (its variable, and
    /// its default parsed like a value from the environment).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) {
        /// The setting's text: set and not empty, else its declared default (nil: none).
        func text(_ setting: Setting, _ variable: String? = nil) -> String? {
            environment[variable ?? setting.variable].flatMap { $0.isEmpty ? nil : $0 } ?? setting.defaultValue
        }
        func number(_ setting: Setting, computed: Double? = nil) throws(ConfigurationError) -> Double {
            guard let text = text(setting) else { return computed ?? 0 }
            guard let value = Double(text), value >= 0 else {
                throw .invalid(setting.variable, text, "a number of seconds ≥ 0")
            }
            return value
        }
        func integer(_ setting: Setting, minimum: Int = 1, computed: Int? = nil) throws(ConfigurationError) -> Int {
            guard let text = text(setting) else { return computed ?? minimum }
            guard let value = Int(text), value >= minimum else {
                throw .invalid(setting.variable, text, "a whole number ≥ \(minimum)")
            }
            return value
        }
        func flag(_ setting: Setting) throws(ConfigurationError) -> Bool {
            switch text(setting)?.lowercased() {
            case "on", "true", "1", "yes": return true
            case "off", "false", "0", "no", nil: return false
            case let text?: throw .invalid(setting.variable, text, "on or off")
            }
        }
        func choice<T: RawRepresentable<String>>(_ setting: Setting, _ expected: String) throws(ConfigurationError)
            -> T
        {
            let text = text(setting)?.lowercased() ?? ""
            guard let value = T(rawValue: text) else { throw .invalid(setting.variable, text, expected) }
            return value
        }
        databaseURL = text(Settings.databaseURL) ?? ""
        awsEnvironment = environment.filter { $0.key.hasPrefix("AWS_") }
        metricsAddress = text(Settings.metricsAddress)
        storageURL = text(Settings.storageURL) ?? ""
        publicURL = text(Settings.publicURL)
        poolMode = try choice(Settings.poolMode, "session or transaction")
        listenURL = text(Settings.listenURL)
        statementLimits = StatementLimits(
            statementTimeout: .milliseconds(Int64(try number(Settings.statementTimeout) * 1000)),
            lockTimeout: .milliseconds(Int64(try number(Settings.lockTimeout) * 1000)))
        concurrency = try integer(Settings.concurrency, computed: Self.defaultConcurrency)
        fastSlots = try integer(Settings.fastSlots)
        maxSlotsPerUploader = try integer(Settings.maxSlotsPerUploader, minimum: 0)
        maxConnections = try integer(Settings.maxConnections)
        // Polling is how a transaction-mode daemon without a LISTEN connection hears of new jobs.
        pollInterval = try number(Settings.pollInterval, computed: poolMode == .transaction && listenURL == nil ? 1 : 5)
        staleAfter = try number(Settings.staleAfter)
        maxAttempts = try integer(Settings.maxAttempts)
        retryBase = try number(Settings.retryBase)
        shutdownGrace = try number(Settings.shutdownGrace)
        uploadWait = try number(Settings.uploadWait)
        jobTimeout = try number(Settings.jobTimeout)
        reuseOutputs = try flag(Settings.reuse)
        stillsFirst = try flag(Settings.stillsFirst)
        reuseWait = try number(Settings.reuseWait)
        eraseAfter = try number(Settings.eraseAfter)
        sweepGrace = try number(Settings.sweepGrace)
        efficientVariant = try choice(Settings.efficientVariant, "free, always or off")
        variantAfterReuses = try integer(Settings.variantAfterReuses, minimum: 0)
        pieceSeconds = try number(Settings.pieceSeconds)
        piecesAfter = try number(Settings.piecesAfter)
        maxBytes = [:]
        for (profile, variable) in zip(QualityProfile.allCases, Settings.maxBytes.variables) {
            guard let text = text(Settings.maxBytes, variable) else { continue }
            guard let bytes = Self.byteCount(text), bytes >= 64 << 10 else {
                throw .invalid(variable, text, "a size of at least 64K, e.g. 16M")
            }
            maxBytes[profile] = bytes
        }
        let loudness = text(Settings.loudness) ?? ""
        guard let target = LoudnessTarget(loudness) else {
            throw .invalid(Settings.loudness.variable, loudness, LoudnessTarget.expected)
        }
        loudnessTarget = target.lufs
        let storyboard = try number(Settings.storyboardAfter)
        storyboardAfter = storyboard > 0 ? storyboard : nil
        sandboxPolicy = try choice(Settings.sandbox, "full or partial (partial is dangerous)")
        childMemoryBytes = Int64(try integer(Settings.childMemory)) << 20
        temporaryDirectory =
            text(Settings.temporaryDirectory) ?? environment["CACHE_DIRECTORY"] ?? environment["TMPDIR"] ?? "/tmp"
        let names = Settings.tables.variables.map { text(Settings.tables, $0) }
        do {
            tables = try TableNames(
                videoProcessing: names[0], fileUpload: names[1], user: names[2], outputs: names[3], paused: names[4],
                variants: names[5], pieces: names[6], unreferenced: names[7], sweeps: names[8], migrations: names[9])
        } catch {
            throw .invalid(
                Settings.tables.variable.replacing("VIDEO_PROCESSING", with: "*"), "",
                "table names are identifiers, optionally schema-qualified")
        }
    }

    /// How often the fleet sweeps storage: within half the shorter window, so each holds (an
    /// erasure takes at most `eraseAfter`), at least a second apart and at least every 5 minutes.
    public var sweepInterval: Double { min(300, max(1, min(eraseAfter, sweepGrace) / 2)) }

    /// How a daemon spends `maxConnections`: one for `LISTEN` (when it listens), one holding the
    /// session locks of results being made (session pool mode with reuse on), and the rest a
    /// pool every other statement shares (claims, rescue, depth, every job's writes, `/status`).
    public var connectionBudget: (pool: Int, listener: Bool, locks: Bool) {
        let listener = poolMode == .session || listenURL != nil
        let locks = poolMode == .session && reuseOutputs
        return (maxConnections - (listener ? 1 : 0) - (locks ? 1 : 0), listener, locks)
    }

    /// Checks the settings that depend on each other.
    public func validateConnectionBudget() throws(ConfigurationError) {
        let budget = connectionBudget
        guard budget.pool >= 1 else {
            let needed = maxConnections - budget.pool + 1
            throw .invalid(
                Settings.maxConnections.variable, "\(maxConnections)",
                "at least \(needed) here (one to LISTEN, one for the reuse locks, one to share)")
        }
    }

    /// A connection to the job database with this configuration's statement limits.
    public func connection(label: String, logger: Logger, reconnectPatience: Duration = .seconds(30))
        -> PostgresConnection
    {
        PostgresConnection(
            url: databaseURL, label: label, logger: logger, reconnectPatience: reconnectPatience,
            limits: statementLimits)
    }

    /// Checks what a command that talks to the database and storage needs.
    public func validate() throws(ConfigurationError) {
        if databaseURL.isEmpty { throw .missing(Settings.databaseURL.variable, "e.g. postgresql://user@localhost/app") }
        if storageURL.isEmpty {
            throw .missing(
                Settings.storageURL.variable, "e.g. file:///var/lib/media-worker/storage or s3://bucket/prefix")
        }
        _ = try makeStorage()
        try validateConnectionBudget()
    }

    /// What must never reach a log line: the database password and the AWS secret and session
    /// token. Log handlers mask them wherever they appear.
    public var secrets: [String] {
        Settings.awsCredentials.variables.dropFirst().map { awsEnvironment[$0] }.compactMap { $0 }
            .filter { !$0.isEmpty } + ConnectionString.secrets(in: databaseURL)
    }

    /// The database URL with any password replaced by `***`.
    public var redactedDatabaseURL: String { ConnectionString.redacted(databaseURL) }

    /// `16777216`, `16384K`, `16M` or `1G` (powers of 1024) in bytes.
    static func byteCount(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        let unit = text.last.flatMap { units[Character($0.uppercased())] }
        guard let number = Int64(unit == nil ? text : String(text.dropLast())), number > 0 else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit ?? 1)
        return overflow ? nil : bytes
    }

    /// The settings as a person would check them, with secrets removed.
    public var redactedSummary: String {
        let listen = listenURL.map(ConnectionString.redacted) ?? (poolMode == .session ? "database" : "off (polling)")
        let tableNames = [
            tables.videoProcessing, tables.fileUpload, tables.user, tables.outputs, tables.paused, tables.variants,
            tables.pieces, tables.unreferenced, tables.sweeps, tables.migrations,
        ]
        let settings: [String] = [
            "database=\(redactedDatabaseURL)", "poolMode=\(poolMode.rawValue)", "listen=\(listen)",
            "statementTimeout=\(statementLimits.statementTimeout)", "lockTimeout=\(statementLimits.lockTimeout)",
            "maxConnections=\(maxConnections)", "storage=\(storageURL)", "publicURL=\(publicURL ?? "-")",
            "concurrency=\(concurrency)", "fastSlots=\(fastSlots)", "maxSlotsPerUploader=\(maxSlotsPerUploader)",
            "pollInterval=\(pollInterval)s", "staleAfter=\(staleAfter)s", "maxAttempts=\(maxAttempts)",
            "retryBase=\(retryBase)s", "shutdownGrace=\(shutdownGrace)s", "uploadWait=\(uploadWait)s",
            "jobTimeout=\(jobTimeout)s", "tmp=\(temporaryDirectory)", "tables=\(tableNames.joined(separator: ","))",
            "reuse=\(reuseOutputs ? "on" : "off")", "eraseAfter=\(eraseAfter)s", "sweepGrace=\(sweepGrace)s",
            "stillsFirst=\(stillsFirst ? "on" : "off")",
            "efficientVariant=\(efficientVariant.rawValue)", "variantAfterReuses=\(variantAfterReuses)",
            "loudness=\(loudnessTarget.map { "\($0)" } ?? "off")",
            "storyboardAfter=\(storyboardAfter.map { "\($0)s" } ?? "off")",
            "pieces=\(pieceSeconds > 0 ? "\(Int(pieceSeconds))s after \(Int(piecesAfter))s" : "off")",
            "maxBytes=\(maxBytes.isEmpty ? "none" : maxBytes.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ","))",
            "pipeline=\(pipelineVersion)",
            "metrics=\(metricsAddress ?? "off")", "sandbox=\(sandboxPolicy.rawValue)",
        ]
        return settings.joined(separator: " ")
    }
}

/// How connections reach PostgreSQL (`MEDIA_WORKER_POOL_MODE`).
public enum PoolMode: String, Sendable {
    /// Directly, or through a pooler in session mode: session state lasts.
    case session
    /// Through a transaction-mode pooler: only what lives inside one transaction works.
    case transaction
}

/// A setting that is missing or malformed, saying which and what is expected.
public enum ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    case missing(String, String)
    case invalid(String, String, String)

    public var description: String {
        switch self {
        case .missing(let name, let example): "\(name) is not set (\(example))"
        case .invalid(let name, let value, let expected): "\(name)=\(value.debugDescription) is not \(expected)"
        }
    }
}

extension Configuration {
    /// The storage `MEDIA_STORAGE_URL` names: a folder (`file:///srv/media`) or a bucket
    /// (`s3://bucket/prefix?endpoint=https://minio:9000&region=eu-west-1&pathStyle=true`, credentials
    /// from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    public func makeStorage() throws(ConfigurationError) -> any Storage {
        if storageURL.hasPrefix("s3://") {
            let location: S3Location
            do {
                location = try S3Location(url: storageURL, environment: awsEnvironment)
            } catch {
                throw .invalid(
                    Settings.storageURL.variable, ConnectionString.redacted(storageURL), "a bucket URL: \(error)")
            }
            guard let credentials = S3Credentials(environment: awsEnvironment) else {
                throw .missing(
                    Settings.awsCredentials.variables.prefix(2).joined(separator: " and "),
                    "needed for \(location.description)")
            }
            return S3Storage(location: location, credentials: credentials, publicBase: publicURL)
        }
        guard let url = URL(string: storageURL), url.scheme == "file", !url.path.isEmpty else {
            throw .invalid(
                Settings.storageURL.variable, storageURL, "a file:///absolute/path or s3://bucket[/prefix] URL")
        }
        return LocalStorage(root: URL(fileURLWithPath: url.path, isDirectory: true), publicBase: publicURL)
    }
}
