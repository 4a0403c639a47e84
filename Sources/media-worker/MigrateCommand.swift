import ArgumentParser
import Queue
import Worker

/// `media-worker migrate`: the app's tables for local runs and tests.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the user, file_upload and video_processing tables as the app's ORM would (local runs only).",
        discussion: """
            Idempotent. Also installs a trigger that runs pg_notify('media_worker_jobs', id) on every insert \
            into video_processing; in production the app adds that one statement itself. media-worker's own \
            tables change by numbered steps recorded in media_worker_migrations: run this (with \
            --own-tables-only in production) before restarting workers on a new version; older workers keep \
            working on the newer tables, as steps only add.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(
        name: .customLong("own-tables-only"),
        help:
            "Apply only the numbered steps of media-worker's own tables (reuse, pauses, variants, pieces, sweep): for production, where the app owns the rest."
    )
    var ownTablesOnly = false

    func run() async throws {
        var configuration = try Configuration()
        database.apply(to: &configuration)
        guard !configuration.databaseURL.isEmpty else { throw ValidationError("set DATABASE_URL or --database-url") }
        let logger = makeStandardErrorLogger(
            label: "media-worker.migrate", verbose: false, defaultLevel: .warning, secrets: configuration.secrets)
        let connection = PostgresConnection(
            url: configuration.databaseURL, label: "migrate", logger: logger, limits: .migration)
        let store = JobStore(tables: configuration.tables)
        let applied = try await connection.withSession("create the tables") { [ownTablesOnly] in
            try ownTablesOnly ? store.migrateOwnTables($0) : store.migrate($0)
        }
        await connection.close()
        for step in applied { print("applied step \(step.version) of media-worker's own tables: \(step.summary)") }
        print(
            "tables ready in \(configuration.redactedDatabaseURL) (own tables at version \(JobStore.ownSchemaVersion))")
    }
}
