import ArgumentParser
import Queue
import Worker

/// `media-worker pause TYPE…`: an operator's brake, fleet-wide, kept in media-worker's own table.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Pause processing types fleet-wide (with no type: list what is paused).",
        discussion: """
            Every worker honours it at its next claim; running jobs finish. A paused COMPRESSION, PREVIEW or \
            FULL_PROCESSING job still gets its first look (reuse of a forwarded video, the probe, the stills): \
            only its long pass waits. Paused THUMBNAIL and METADATA jobs wait altogether. `media-worker resume \
            TYPE` lets them go. Needs media-worker's own tables (`media-worker migrate --own-tables-only`).
            """
    )

    @Argument(help: "Processing types: \(ProcessingType.allCases.map(\.rawValue).joined(separator: ", ")).")
    var types: [ProcessingType] = []

    @Option(help: "Why, for whoever looks at /status or `media-worker pause` next.")
    var reason = ""

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await withPausedTypes(database) { store, session in
            if !types.isEmpty { try store.pause(session, types, reason: reason) }
        }
    }
}

/// `media-worker resume TYPE…`: lifts a pause and wakes the workers.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Resume paused processing types fleet-wide.")

    @Argument(help: "Processing types to resume.")
    var types: [ProcessingType] = []

    @Flag(help: "Resume every paused type.")
    var all = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard all != !types.isEmpty else { throw ValidationError("name the types to resume, or --all") }
    }

    func run() async throws {
        try await withPausedTypes(database) { store, session in
            _ = try store.resume(session, all ? ProcessingType.allCases : types)
        }
    }
}

/// Runs `change` on the database and prints what is paused afterwards.
private func withPausedTypes(
    _ database: DatabaseOptions, _ change: @escaping @Sendable (JobStore, PostgresSession) throws -> Void
) async throws {
    var configuration = try Configuration()
    database.apply(to: &configuration)
    guard !configuration.databaseURL.isEmpty else { throw ValidationError("set DATABASE_URL or --database-url") }
    let logger = makeStandardErrorLogger(
        label: "media-worker.pause", verbose: false, defaultLevel: .warning, secrets: configuration.secrets)
    let connection = configuration.connection(label: "pause", logger: logger, reconnectPatience: .seconds(5))
    let (store, table) = (JobStore(tables: configuration.tables), configuration.tables.paused)
    let paused: [JobStore.PausedType]
    do {
        paused = try await connection.withSession("pause or resume") { session in
            guard try store.hasTable(session, table) else {
                throw ValidationError("\(table) does not exist: run `media-worker migrate --own-tables-only` first")
            }
            try change(store, session)
            return try store.pausedTypes(session)
        }
        await connection.close()
    } catch {
        await connection.close()
        throw error
    }
    if paused.isEmpty {
        print("nothing is paused")
    }
    for type in paused {
        print(
            "\(type.processingType.rawValue)\tpaused since \(type.since)\(type.reason.isEmpty ? "" : "\t\(type.reason)")"
        )
    }
}
