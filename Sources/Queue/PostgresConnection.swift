import CLibPQ
import Dispatch
import Foundation
import JobVocabulary
public import Logging

/// How long any statement may run and wait for a lock. Set per transaction with `SET LOCAL`, so
/// they hold through a transaction-mode pooler, where a session's `SET` would leak to other
/// clients or be lost.
public struct StatementLimits: Sendable, Equatable {
    /// `statement_timeout`; zero for none.
    public var statementTimeout: Duration
    /// `lock_timeout`: how long a statement waits for a lock the app (or anyone) holds.
    public var lockTimeout: Duration

    public init(statementTimeout: Duration, lockTimeout: Duration) {
        self.statementTimeout = statementTimeout
        self.lockTimeout = lockTimeout
    }

    public static let standard = StatementLimits(statementTimeout: .seconds(30), lockTimeout: .seconds(5))
    /// `migrate`: DDL may run long (an index on a big table), but waits at most 10 s for the
    /// app's locks, since every query of the app would queue behind it while it waits.
    public static let migration = StatementLimits(statementTimeout: .zero, lockTimeout: .seconds(10))

    /// How long a transaction may sit idle between its statements before the server ends the
    /// session: as long as a statement may run (a minute without a statement limit). Ours never
    /// pause, so only a frozen or cut-off worker meets it, and its row locks (a heartbeat's, a
    /// claim's) go with its session: rescue skips locked rows, so a worker stopped between an
    /// UPDATE and its COMMIT would otherwise keep its job from ever being rescued.
    var idleInTransaction: Duration { statementTimeout > .zero ? statementTimeout : .seconds(60) }

    /// `BEGIN` and the limits, one round trip (a constant string: milliseconds only).
    var begin: String {
        "BEGIN; SET LOCAL statement_timeout = \(max(0, statementTimeout.inMilliseconds)); "
            + "SET LOCAL lock_timeout = \(max(0, lockTimeout.inMilliseconds)); "
            + "SET LOCAL idle_in_transaction_session_timeout = \(idleInTransaction.inMilliseconds)"
    }
}

/// One libpq connection. Every libpq call runs on the connection's own serial dispatch queue,
/// never on Swift's cooperative thread pool, and callers reach it through `withSession`, which
/// also reconnects with capped exponential backoff after the server went away. Every statement
/// runs in a transaction bounded by `limits`, and the server sees the connection as
/// `application_name` "media-worker <host> <pid> <label>" (in `pg_stat_activity`).
public final class PostgresConnection: @unchecked Sendable {
    // @unchecked: `connection` and `listening` are only touched on `queue`.
    private let url: String
    private let queue: DispatchQueue
    private let logger: Logger
    private var connection: OpaquePointer?
    private var listening: Set<String> = []
    private let applicationName: String
    let limits: StatementLimits

    /// How long `withSession` keeps trying to reconnect before it gives up with `.connection`.
    private let reconnectPatience: Duration
    /// Set by `stopRetrying` (from any thread): one attempt from then on, no more backoff.
    private let impatience = NSLock()
    private var impatient = false

    /// `url` is a libpq connection string or URI; it is never logged. `reconnectPatience` is how
    /// long a call keeps trying to (re)connect: zero for one attempt (`doctor`).
    public init(
        url: String, label: String, logger: Logger, reconnectPatience: Duration = .seconds(30),
        limits: StatementLimits = .standard
    ) {
        self.url = url
        self.queue = DispatchQueue(label: "media-worker.postgres.\(label)")
        self.logger = logger
        self.reconnectPatience = reconnectPatience
        self.limits = limits
        self.applicationName =
            String("media-worker \(WorkerIdentity.current.host) \(getpid()) \(label)".utf8.prefix(63)) ?? "media-worker"
    }

    deinit {
        if let connection { PQfinish(connection) }
    }

    /// Runs `body` with exclusive use of the connection, on its queue. Statements inside one
    /// `body` run back to back, so `body` is the unit for transactions.
    public func withSession<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.runLocked(operation, body) })
            }
        }
    }

    /// From now on a call that finds the server gone tries once more and gives up, instead of
    /// retrying for `reconnectPatience` (a daemon stopping must not wait minutes for a database
    /// that is away). Takes effect at once, also inside a wait between attempts.
    public func stopRetrying() { impatience.withLock { impatient = true } }

    private var givingUp: Bool { impatience.withLock { impatient } }

    /// Closes the connection (also releasing its session advisory locks).
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                if let connection = self.connection { PQfinish(connection) }
                self.connection = nil
                self.listening = []
                continuation.resume()
            }
        }
    }

    private func runLocked<T>(_ operation: String, _ body: (PostgresSession) throws -> T) throws -> T {
        let connection = try ensureConnected(operation)
        let session = PostgresSession(connection: connection, owner: self)
        do {
            return try body(session)
        } catch let error as PostgresError where error.kind == .connection || PQstatus(connection) != CONNECTION_OK {
            // Drop the broken connection: the next call reconnects.
            PQfinish(connection)
            self.connection = nil
            throw PostgresError(kind: .connection, operation: operation, sqlState: error.sqlState, detail: error.detail)
        }
    }

    private func ensureConnected(_ operation: String) throws -> OpaquePointer {
        if let connection, PQstatus(connection) == CONNECTION_OK { return connection }
        if let connection { PQfinish(connection) }
        connection = nil
        if let problem = ConnectionString.problem(url) {
            throw PostgresError(kind: .invalidURL, operation: operation, sqlState: nil, detail: problem)
        }
        let deadline = ContinuousClock.now + reconnectPatience
        var delay = Duration.milliseconds(100)
        while true {
            let attempt = Self.connect(url, applicationName: applicationName)
            if let attempt, PQstatus(attempt) == CONNECTION_OK {
                // The server's NOTICEs ("relation already exists, skipping") are not ours to print.
                PQsetNoticeProcessor(attempt, { _, _ in }, nil)
                connection = attempt
                let channels = listening
                listening = []
                for channel in channels { try PostgresSession(connection: attempt, owner: self).listen(channel) }
                return attempt
            }
            let detail = ConnectionString.masked(
                attempt.map { String(cString: PQerrorMessage($0)) } ?? "out of memory", url: url)
            if let attempt { PQfinish(attempt) }
            if detail.hasPrefix("invalid ") {
                // libpq checks option values (sslmode, port…) only when connecting: no retry fixes them.
                throw PostgresError(kind: .invalidURL, operation: operation, sqlState: nil, detail: detail)
            }
            if Self.tlsRefusals.contains(where: detail.contains) {
                throw PostgresError(kind: .tls, operation: operation, sqlState: nil, detail: detail)
            }
            if ContinuousClock.now + delay > deadline || givingUp {
                throw PostgresError(kind: .connection, operation: operation, sqlState: nil, detail: detail)
            }
            logger.warning(
                "database unreachable, retrying",
                metadata: ["in": "\(delay)", "error": "\(detail.trimmingCharacters(in: .whitespacesAndNewlines))"])
            let wakeAt = ContinuousClock.now + delay
            while ContinuousClock.now < wakeAt, !givingUp { Thread.sleep(forTimeInterval: 0.05) }
            delay = min(delay * 2, .seconds(5))
        }
    }

    /// What libpq says when a certificate is not trusted or TLS cannot be had: no retry fixes it.
    private static let tlsRefusals = [
        "certificate verify failed", "does not match host name", "root certificate file",
        "server does not support SSL", "could not read root certificate",
    ]

    fileprivate func noteListening(_ channel: String) { listening.insert(channel) }

    /// `PQconnectdb` with a 10 s `connect_timeout` unless the URL sets its own (libpq's default is
    /// to wait for the kernel's TCP timeout, minutes, when the host does not answer at all), and
    /// our `application_name` unless the URL names one.
    private static func connect(_ url: String, applicationName: String) -> OpaquePointer? {
        // The expanded `dbname` comes later, so the URL's own settings win over ours.
        withConstCStringArray(["connect_timeout", "application_name", "dbname"]) { keywords in
            withConstCStringArray(["10", applicationName, url]) { values in PQconnectdbParams(keywords, values, 1) }
        }
    }
}

/// A value bound to a statement parameter, sent as text (PostgreSQL casts it to the column's type).
public typealias PostgresValue = String?

/// The synchronous face of a connection, valid only inside `withSession`. Every statement takes
/// its values as bound parameters (`PQexecParams`), never spliced into the SQL text.
public struct PostgresSession {
    fileprivate let connection: OpaquePointer
    fileprivate let owner: PostgresConnection

    /// Runs one statement and returns its rows (in a transaction of its own, unless inside one).
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = [], operation: String = "run a query") throws
        -> PostgresRows
    {
        try transaction(operation) {
            let result = try run(sql, parameters, operation: operation)
            defer { PQclear(result) }
            return PostgresRows(result: result)
        }
    }

    /// Runs one statement and returns how many rows it changed (in a transaction of its own,
    /// unless inside one).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = [], operation: String = "run a statement")
        throws -> Int
    {
        try transaction(operation) {
            let result = try run(sql, parameters, operation: operation)
            defer { PQclear(result) }
            return Int(String(cString: PQcmdTuples(result))) ?? 0
        }
    }

    /// Runs `body` between BEGIN (with the connection's statement and lock timeouts, or `limits`)
    /// and COMMIT, rolling back if it throws. Inside a transaction already, just runs `body`.
    public func transaction<T>(_ operation: String, limits: StatementLimits? = nil, _ body: () throws -> T) throws
        -> T
    {
        guard PQtransactionStatus(connection) == PQTRANS_IDLE else { return try body() }
        try command((limits ?? owner.limits).begin, operation: operation)
        do {
            let value = try body()
            try command("COMMIT", operation: operation)
            return value
        } catch {
            _ = try? command("ROLLBACK", operation: operation)
            throw error
        }
    }

    /// Runs constant SQL that cannot run in a transaction (`CREATE DATABASE`), without limits.
    public func executeOutsideTransaction(_ sql: String, operation: String) throws {
        try command(sql, operation: operation)
    }

    /// Runs constant SQL without parameters (several statements allowed): transaction control.
    private func command(_ sql: String, operation: String) throws {
        guard let result = PQexec(connection, sql) else {
            throw PostgresError(
                kind: .connection, operation: operation, sqlState: nil,
                detail: String(cString: PQerrorMessage(connection)))
        }
        PQclear(try checked(result, operation: operation))
    }

    /// How this connection reaches the server: "TLSv1.3 (TLS_AES_256_GCM_SHA384) to HOST", or
    /// "no TLS, Unix socket in DIR", or "no TLS to HOST".
    public var transport: (encrypted: Bool, local: Bool, description: String) {
        let host = PQhost(connection).map { String(cString: $0) } ?? "?"
        let local = host.hasPrefix("/") || host == "localhost" || host == "127.0.0.1" || host == "::1"
        guard PQsslInUse(connection) == 1 else {
            return (false, local, host.hasPrefix("/") ? "no TLS, Unix socket in \(host)" : "no TLS to \(host)")
        }
        let attribute = { (name: String) in PQsslAttribute(connection, name).map { String(cString: $0) } ?? "?" }
        return (true, local, "\(attribute("protocol")) (\(attribute("cipher"))) to \(host)")
    }

    /// Subscribes to `channel` (an identifier the caller controls, never user input).
    public func listen(_ channel: String) throws {
        guard let escaped = PQescapeIdentifier(connection, channel, channel.utf8.count) else {
            throw PostgresError(
                kind: .query, operation: "listen for new jobs", sqlState: nil,
                detail: String(cString: PQerrorMessage(connection)))
        }
        let quoted = String(cString: escaped)
        PQfreemem(escaped)
        try execute("LISTEN \(quoted)", operation: "listen for new jobs")
        owner.noteListening(channel)
    }

    /// Waits up to `timeout` for notifications and returns their channels and payloads.
    public func waitForNotifications(timeout: Duration) throws -> [(channel: String, payload: String)] {
        var received = drainNotifications()
        if !received.isEmpty { return received }
        let socket = PQsocket(connection)
        guard socket >= 0 else {
            throw PostgresError(
                kind: .connection, operation: "wait for notifications", sqlState: nil, detail: "no socket")
        }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(clamping: timeout.inMilliseconds))
        if ready > 0 {
            guard PQconsumeInput(connection) == 1 else {
                throw PostgresError(
                    kind: .connection, operation: "wait for notifications", sqlState: nil,
                    detail: String(cString: PQerrorMessage(connection)))
            }
            received = drainNotifications()
        }
        return received
    }

    private func drainNotifications() -> [(channel: String, payload: String)] {
        var received: [(String, String)] = []
        while let notification = PQnotifies(connection) {
            received.append(
                (String(cString: notification.pointee.relname), String(cString: notification.pointee.extra)))
            PQfreemem(notification)
        }
        return received
    }

    private func run(_ sql: String, _ parameters: [PostgresValue], operation: String) throws -> OpaquePointer {
        let result = withConstCStringArray(parameters) { values in
            PQexecParams(connection, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        guard let result else {
            throw PostgresError(
                kind: .connection, operation: operation, sqlState: nil,
                detail: String(cString: PQerrorMessage(connection)))
        }
        return try checked(result, operation: operation)
    }

    /// `result` if it succeeded; else it is freed and its error thrown.
    private func checked(_ result: OpaquePointer, operation: String) throws -> OpaquePointer {
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let detail = String(cString: PQresultErrorMessage(result))
            PQclear(result)
            let broken = PQstatus(connection) != CONNECTION_OK || state?.hasPrefix("08") == true || state == "57P01"
            throw PostgresError(
                kind: broken ? .connection : .query, operation: operation, sqlState: state, detail: detail)
        }
        return result
    }
}

/// The rows of a result, copied out of libpq as text.
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]

    init(result: OpaquePointer) {
        let columnCount = Int(PQnfields(result))
        columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        rows = (0..<Int(PQntuples(result))).map { row in
            (0..<columnCount).map { column in
                PQgetisnull(result, Int32(row), Int32(column)) == 1
                    ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            }
        }
    }

    public var count: Int { rows.count }

    /// Row `index` as a `PostgresRow`.
    public subscript(index: Int) -> PostgresRow { PostgresRow(columns: columns, values: rows[index]) }
    public var first: PostgresRow? { rows.isEmpty ? nil : self[0] }
    public var all: [PostgresRow] { rows.indices.map { self[$0] } }
}

/// One row, read by column name into typed values.
public struct PostgresRow: Sendable {
    let columns: [String]
    let values: [String?]

    /// The text of `column`, or nil for NULL. A missing column is a decoding error.
    public func text(_ column: String) throws -> String? {
        guard let index = columns.firstIndex(of: column) else {
            throw PostgresError(
                kind: .decoding, operation: "read column \(column)", sqlState: nil, detail: "no such column")
        }
        return values[index]
    }

    /// `column` as `T`, failing with the column's name and the type when it does not parse.
    public func decode<T: LosslessStringConvertible>(_ column: String, as type: T.Type = T.self) throws -> T? {
        guard let text = try text(column) else { return nil }
        if T.self == Bool.self { return (text == "t") as? T }
        guard let value = T(text) else {
            throw PostgresError(
                kind: .decoding, operation: "read column \(column) as \(T.self)", sqlState: nil, detail: text)
        }
        return value
    }

    /// `column` as `T`, which must not be NULL.
    public func require<T: LosslessStringConvertible>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let value = try decode(column, as: type) else {
            throw PostgresError(kind: .decoding, operation: "read column \(column)", sqlState: nil, detail: "NULL")
        }
        return value
    }
}
