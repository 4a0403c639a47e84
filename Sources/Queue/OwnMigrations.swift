/// media-worker's own tables change by numbered steps, recorded in `tables.migrations` as they are
/// applied (as River and Oban do), so a step added later reaches a database made by an older
/// binary, where `CREATE TABLE IF NOT EXISTS` alone would silently do nothing.
///
/// The rule that lets a fleet of mixed versions share one database during a rolling upgrade:
/// - steps are appended, never edited once shipped, and numbered 1, 2, 3…;
/// - every step only adds (a table, a nullable or defaulted column, an index), so a binary that
///   knows fewer steps than the database holds works unchanged (`OwnMigrationRules` checks this of
///   every step's SQL);
/// - `migrate --own-tables-only` runs first, then the workers are restarted one by one; a worker
///   whose database is behind still runs what the tables it finds allow and says which steps are
///   missing.
/// Dropping or narrowing anything needs two releases: stop using it, then a step removes it once
/// no worker of the first release runs.
public struct OwnMigration: Sendable, Equatable {
    public let version: Int
    /// What the step adds, in a few words (kept in the version table and printed by `migrate`).
    public let summary: String
    /// The step's statements for these table names.
    public let statements: @Sendable (TableNames) -> [String]

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.version == rhs.version }
}

/// How a database's recorded steps compare with the steps this binary knows.
public enum SchemaAgreement: Sendable, Equatable {
    case current(version: Int)
    /// Steps this binary knows that the database lacks (`migrate --own-tables-only` applies them).
    case behind(database: Int, binary: Int)
    /// The database holds steps of a newer binary: fine during a rolling upgrade (steps only add).
    case ahead(database: Int, binary: Int)

    public init(applied: Int, known: Int) {
        if applied == known {
            self = .current(version: known)
        } else if applied < known {
            self = .behind(database: applied, binary: known)
        } else {
            self = .ahead(database: applied, binary: known)
        }
    }

    /// One sentence for logs and `doctor`.
    public var description: String {
        switch self {
        case .current(let version): "own tables at version \(version), as this binary expects"
        case .behind(let database, let binary):
            "own tables at version \(database), this binary expects \(binary): "
                + "run `media-worker migrate --own-tables-only` (until then what the missing steps add is unused)"
        case .ahead(let database, let binary):
            "own tables at version \(database), newer than this binary's \(binary): "
                + "fine while a rolling upgrade is under way (steps only add); upgrade this host too"
        }
    }
}

extension JobStore {
    /// Every step of media-worker's own schema, in order. Append only.
    public static let ownMigrations: [OwnMigration] = [
        OwnMigration(version: 1, summary: "outputs, paused types, variants, pieces, unreferenced and sweeps tables") {
            tables in
            [
                """
                CREATE TABLE IF NOT EXISTS \(tables.outputs) (
                    "sha256" text NOT NULL,
                    "processingType" text NOT NULL,
                    "qualityProfile" text NOT NULL,
                    "pipelineVersion" integer NOT NULL,
                    "jobId" integer NOT NULL,
                    "completedAt" TIMESTAMP NOT NULL,
                    "result" json NOT NULL,
                    PRIMARY KEY ("sha256", "processingType", "qualityProfile", "pipelineVersion")
                )
                """,
                """
                CREATE TABLE IF NOT EXISTS \(tables.paused) (
                    "processingType" text PRIMARY KEY,
                    "pausedAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
                    "reason" text NOT NULL DEFAULT ''
                )
                """,
                """
                CREATE TABLE IF NOT EXISTS \(tables.variants) (
                    "sha256" text NOT NULL,
                    "processingType" text NOT NULL,
                    "qualityProfile" text NOT NULL,
                    "pipelineVersion" integer NOT NULL,
                    "jobId" integer NOT NULL,
                    "reuses" integer NOT NULL DEFAULT 0,
                    "status" text NOT NULL,
                    "attempts" integer NOT NULL DEFAULT 0,
                    "token" text,
                    "error" text,
                    "updatedAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
                    PRIMARY KEY ("sha256", "processingType", "qualityProfile", "pipelineVersion")
                )
                """,
                """
                CREATE INDEX IF NOT EXISTS media_worker_variants_queued ON \(tables.variants) ("status", "updatedAt")
                """,
                """
                CREATE TABLE IF NOT EXISTS \(tables.pieces) (
                    "jobId" integer NOT NULL,
                    "run" text NOT NULL,
                    "index" integer NOT NULL,
                    "span" json NOT NULL,
                    "status" text NOT NULL DEFAULT 'PENDING',
                    "attempts" integer NOT NULL DEFAULT 0,
                    "token" text,
                    "progress" real NOT NULL DEFAULT 0,
                    "worker" text,
                    "key" text,
                    "error" text,
                    "updatedAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
                    PRIMARY KEY ("jobId", "run", "index")
                )
                """,
                """
                CREATE INDEX IF NOT EXISTS media_worker_pieces_queued ON \(tables.pieces) ("status", "updatedAt")
                """,
                """
                CREATE TABLE IF NOT EXISTS \(tables.unreferenced) (
                    "key" text PRIMARY KEY,
                    "bytes" bigint NOT NULL,
                    "since" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
                )
                """,
                """
                CREATE TABLE IF NOT EXISTS \(tables.sweeps) (
                    "pass" text PRIMARY KEY,
                    "holder" text,
                    "heldUntil" TIMESTAMP,
                    "lastRunAt" TIMESTAMP
                )
                """,
            ]
        },
        // Erasing a deleted upload forgets its kept result and variant work by job id: without
        // these, each erased job read both tables whole.
        OwnMigration(version: 2, summary: "indexes of kept results and variant work by job") { tables in
            [
                "CREATE INDEX IF NOT EXISTS \(index(tables.outputs, "job")) ON \(tables.outputs) (\"jobId\")",
                "CREATE INDEX IF NOT EXISTS \(index(tables.variants, "job")) ON \(tables.variants) (\"jobId\")",
            ]
        },
    ]

    /// The newest step this binary knows.
    public static var ownSchemaVersion: Int { ownMigrations.last?.version ?? 0 }

    /// Applies the steps the database has not recorded, in order, in one transaction under
    /// `migrate`'s advisory lock (two hosts migrating at once apply each step once). A database
    /// made before steps were numbered has the tables but no record: step 1 only creates what is
    /// missing, so it is recorded there too. Returns the steps applied. Safe on a production
    /// database.
    @discardableResult
    public func migrateOwnTables(_ session: PostgresSession, steps: [OwnMigration] = JobStore.ownMigrations) throws
        -> [OwnMigration]
    {
        try session.transaction("migrate media-worker's own tables") {
            try session.execute("SELECT pg_advisory_xact_lock(\(Self.lockNamespace), 0)", operation: "lock for migrate")
            try session.execute(
                """
                CREATE TABLE IF NOT EXISTS \(tables.migrations) (
                    "version" integer PRIMARY KEY,
                    "summary" text NOT NULL,
                    "appliedAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
                )
                """, operation: "create the migrations table")
            let applied = try appliedOwnVersion(session)
            let missing = steps.filter { $0.version > applied }
            for step in missing {
                for statement in step.statements(tables) {
                    try session.execute(statement, operation: "apply own-table step \(step.version)")
                }
                try session.execute(
                    "INSERT INTO \(tables.migrations) (\"version\", \"summary\") VALUES ($1::int, $2)",
                    [String(step.version), step.summary], operation: "record own-table step \(step.version)")
            }
            return missing
        }
    }

    /// The newest step the database recorded: 0 when none was (no own tables, or tables made
    /// before steps were numbered).
    public func appliedOwnVersion(_ session: PostgresSession) throws -> Int {
        guard try hasTable(session, tables.migrations) else { return 0 }
        return try session.query(
            "SELECT COALESCE(max(\"version\"), 0) AS v FROM \(tables.migrations)", operation: "read the schema version"
        ).first?.require("v", as: Int.self) ?? 0
    }

    /// The database's own-table steps against the `known` newest step of this binary.
    public func schemaAgreement(_ session: PostgresSession, known: Int = JobStore.ownSchemaVersion) throws
        -> SchemaAgreement
    {
        SchemaAgreement(applied: try appliedOwnVersion(session), known: known)
    }

    /// An index name for `table` (quoted, maybe schema-qualified) made from its own name, so two
    /// deployments with their own table names in one schema get their own indexes.
    static func index(_ table: String, _ suffix: String) -> String {
        "\"\(unquotedLast(table))_\(suffix)\""
    }
}
