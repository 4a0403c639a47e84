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
            into video_processing; in production the app adds that one statement itself.
            """
    )

    @Option(name: .customLong("database-url"), help: "libpq connection string or URI (DATABASE_URL).")
    var databaseURL: String?

    func run() async throws {
        var configuration = try Configuration()
        if let databaseURL { configuration.databaseURL = databaseURL }
        guard !configuration.databaseURL.isEmpty else { throw ValidationError("set DATABASE_URL or --database-url") }
        let connection = PostgresConnection(
            url: configuration.databaseURL, label: "migrate", logger: .init(label: "media-worker.migrate"))
        let store = JobStore(tables: configuration.tables)
        try await connection.withSession("create the tables") { try store.migrate($0) }
        await connection.close()
        print("tables ready in \(configuration.redactedDatabaseURL)")
    }
}
