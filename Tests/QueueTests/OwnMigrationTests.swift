import Foundation
import Queue
import TestSupport
import Testing

/// The rule that lets old and new workers share one database: steps numbered 1, 2, 3… that only
/// add. Checked of every step's SQL, so a step that drops or narrows fails here first.
@Suite("Own-table migration rules")
struct OwnMigrationRules {
    @Test func stepsAreNumberedInOrderFromOne() {
        #expect(JobStore.ownMigrations.map(\.version) == Array(1...JobStore.ownMigrations.count))
        #expect(JobStore.ownSchemaVersion == JobStore.ownMigrations.count)
        #expect(JobStore.ownMigrations.allSatisfy { !$0.summary.isEmpty })
    }

    @Test func everyStepOnlyAdds() throws {
        let tables = try TableNames(outputs: "ops.mw_outputs", variants: "ops.mw_variants")
        for step in JobStore.ownMigrations {
            for statement in step.statements(tables) {
                let sql = statement.uppercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
                let adds = ["CREATE TABLE IF NOT EXISTS ", "CREATE INDEX IF NOT EXISTS ", "ALTER TABLE "]
                #expect(adds.contains { sql.hasPrefix($0) }, "step \(step.version): \(sql)")
                for forbidden in ["DROP ", "RENAME ", " TYPE ", "DELETE ", "UPDATE ", "TRUNCATE "] {
                    #expect(!sql.contains(forbidden), "step \(step.version) must only add: \(sql)")
                }
                if sql.hasPrefix("ALTER TABLE ") {
                    // A column an older binary does not know must not stop its inserts.
                    #expect(sql.contains(" ADD COLUMN IF NOT EXISTS "), "step \(step.version): \(sql)")
                    #expect(!sql.contains("NOT NULL") || sql.contains(" DEFAULT "), "step \(step.version): \(sql)")
                }
            }
        }
    }

    @Test func indexesAreNamedAfterTheirDeploymentsTables() throws {
        let tables = try TableNames(outputs: "ops.mw_outputs", variants: "ops.mw_variants")
        let step = try #require(JobStore.ownMigrations.first { $0.version == 2 })
        #expect(
            step.statements(tables) == [
                #"CREATE INDEX IF NOT EXISTS "mw_outputs_job" ON "ops"."mw_outputs" ("jobId")"#,
                #"CREATE INDEX IF NOT EXISTS "mw_variants_job" ON "ops"."mw_variants" ("jobId")"#,
            ])
    }

    @Test func agreementBetweenDatabaseAndBinary() {
        #expect(SchemaAgreement(applied: 2, known: 2) == .current(version: 2))
        #expect(SchemaAgreement(applied: 0, known: 2) == .behind(database: 0, binary: 2))
        #expect(SchemaAgreement(applied: 3, known: 2) == .ahead(database: 3, binary: 2))
        #expect(SchemaAgreement(applied: 1, known: 2).description.contains("migrate --own-tables-only"))
        #expect(SchemaAgreement(applied: 3, known: 2).description.contains("rolling upgrade"))
    }
}

/// Own tables migrate by number on a real database: one made before steps were numbered is
/// upgraded in place with its rows kept, two hosts migrating at once apply each step once, and
/// binaries on either side of a step keep claiming and finishing jobs on it.
@Suite("Own-table migrations")
struct OwnMigrationTests {
    let store = JobStore()

    /// What `migrate` made before steps were numbered (ca12037): step 1's tables, no record, no
    /// step-2 index.
    private func databaseFromBeforeNumberedSteps() async throws -> String {
        let url = try await TestDatabase.create()
        try await TestDatabase.query(url, "DROP TABLE media_worker_migrations")
        try await TestDatabase.query(url, "DROP INDEX media_worker_outputs_job, media_worker_variants_job")
        return url
    }

    private func indexes(_ url: String) async throws -> Set<String> {
        Set(
            try await TestDatabase.query(url, "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'media_worker_%'")
                .all.map { try $0.require("indexname") as String })
    }

    private func session<T: Sendable>(_ url: String, _ body: @escaping @Sendable (PostgresSession) throws -> T)
        async throws -> T
    {
        let connection = PostgresConnection(url: url, label: "migrations", logger: .init(label: "test"))
        defer { Task { await connection.close() } }
        return try await connection.withSession("migrations test", body)
    }

    @Test func aDatabaseFromBeforeNumberedStepsIsUpgradedInPlace() async throws {
        let url = try await databaseFromBeforeNumberedSteps()
        let store = store
        let key = JobStore.ReuseKey(
            sha256: "ab12", processingType: .compression, qualityProfile: .medium, pipelineVersion: 3)
        #expect(try await session(url) { try store.countReuse($0, key: key, jobId: 7, threshold: 1) })
        #expect(try await session(url) { try store.schemaAgreement($0) } == .behind(database: 0, binary: 2))
        #expect(try await !indexes(url).contains("media_worker_outputs_job"))

        let applied = try await session(url) { try store.migrateOwnTables($0) }
        #expect(applied.map(\.version) == [1, 2])
        #expect(try await session(url) { try store.schemaAgreement($0) } == .current(version: 2))
        #expect(try await indexes(url).isSuperset(of: ["media_worker_outputs_job", "media_worker_variants_job"]))
        let kept = try await TestDatabase.query(url, "SELECT \"reuses\", \"jobId\" FROM media_worker_variants")
        #expect(try kept.all.map { [try $0.require("reuses") as Int, try $0.require("jobId") as Int] } == [[1, 7]])
        let recorded = try await TestDatabase.query(
            url, "SELECT \"version\", \"summary\" FROM media_worker_migrations ORDER BY 1")
        #expect(
            try recorded.all.map { try $0.require("summary") as String } == JobStore.ownMigrations.map(\.summary))
        // Nothing left to do: a second migrate applies nothing.
        #expect(try await session(url) { try store.migrateOwnTables($0) }.isEmpty)
    }

    @Test func hostsMigratingAtOnceApplyEachStepOnce() async throws {
        let url = try await databaseFromBeforeNumberedSteps()
        let store = store
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask { try await session(url) { try store.migrateOwnTables($0) }.map(\.version) }
            }
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        #expect(applied.sorted() == [1, 2])
        let rows = try await TestDatabase.query(url, "SELECT count(*) AS n FROM media_worker_migrations")
        #expect(try rows.first?.require("n", as: Int.self) == 2)
    }

    /// A rolling upgrade: the database is migrated while a worker of the previous version (which
    /// knows step 1 only) still runs; it sees the database ahead and goes on claiming, finishing and
    /// keeping results beside a worker of this version, neither refused anything.
    @Test func workersOnEitherSideOfAStepShareTheDatabase() async throws {
        let url = try await databaseFromBeforeNumberedSteps()
        let store = store
        let previous = Array(JobStore.ownMigrations.prefix(1))
        #expect(try await session(url) { try store.migrateOwnTables($0, steps: previous) }.map(\.version) == [1])
        #expect(try await session(url) { try store.schemaAgreement($0) } == .behind(database: 1, binary: 2))
        _ = try await session(url) { try store.migrateOwnTables($0) }
        #expect(try await session(url) { try store.schemaAgreement($0, known: 1) } == .ahead(database: 2, binary: 1))

        var ids: [Int] = []
        for index in 0..<4 { ids.append(try await insertJob(url, type: .compression, key: "uploads/\(index).mp4")) }
        for (turn, host) in ["old", "new", "old", "new"].enumerated() {
            let job = try #require(
                try await session(url) { try store.claim($0, retryBase: 0, uploadWait: 3600, host: host, pid: 1) })
            let key = JobStore.ReuseKey(
                sha256: "sha\(turn)", processingType: .compression, qualityProfile: .medium, pipelineVersion: 3)
            let completion = JobStore.Completion<[String: String]>(
                columns: JobStore.OutputColumns(
                    outputStorageKeys: ["video": "k\(turn)"], outputUrls: ["video": "u\(turn)"],
                    outputMetadata: [String: String](), thumbnails: [String](), inputMetadata: [String: String](),
                    uploadVideo: [String: String](), uploadVariants: [String: String](), posterUrl: nil),
                outputTotalSize: 1, actualDurationSeconds: 1, estimatedDurationSeconds: nil,
                event: ProcessingLogEvent(event: "completed", attempt: 1, host: host, pid: 1),
                reusable: JobStore.ReusableResult(key: key, result: ["by": host]))
            #expect(try await session(url) { try store.complete($0, job: job, completion) } == .recorded)
        }
        let rows = try await TestDatabase.query(
            url,
            """
            SELECT vp."id", o."result"::text AS kept FROM video_processing vp
            JOIN media_worker_outputs o ON o."jobId" = vp."id" WHERE vp."status" = 'COMPLETED' ORDER BY vp."id"
            """)
        #expect(try rows.all.map { try $0.require("id") as Int } == ids.sorted())
        #expect(try rows.all.map { try $0.text("kept") } == ["old", "new", "old", "new"].map { #"{"by":"\#($0)"}"# })
    }
}
