/// A failed database operation. `description` is safe for logs and `errorMessage`: it never holds
/// a connection string; the server's detail is in `debugDescription`.
public struct PostgresError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The connection string cannot be parsed: retrying will not help.
        case invalidURL
        /// Could not connect, or the connection broke.
        case connection
        /// TLS was required but the server's certificate was not trusted (or TLS was refused):
        /// retrying will not help.
        case tls
        /// The server refused a statement.
        case query
        /// A result did not have the expected shape or type.
        case decoding
    }

    public let kind: Kind
    /// What was being done, e.g. `claim a job`.
    public let operation: String
    /// The server's SQLSTATE, when it sent one.
    public let sqlState: String?
    /// The server's or libpq's text.
    public let detail: String

    public var description: String {
        switch kind {
        case .invalidURL: "the database URL is not a valid connection string (\(detail)); fix DATABASE_URL"
        case .connection: "database unreachable while trying to \(operation)"
        case .tls:
            "the database's TLS certificate was not accepted while trying to \(operation) (\(detail.trimmingCharacters(in: .whitespacesAndNewlines))); "
                + "check that sslrootcert in DATABASE_URL names the CA that signed the server's certificate, "
                + "and that the URL's host is a name the certificate holds"
        case .query where sqlState == "57014":
            "database cancelled \(operation): it ran longer than the statement timeout "
                + "(MEDIA_WORKER_STATEMENT_TIMEOUT) or was cancelled by an operator"
        case .query where sqlState == "55P03":
            "database gave up on \(operation): a row or table it needs stayed locked by another session "
                + "longer than the lock timeout (MEDIA_WORKER_LOCK_TIMEOUT); it is retried"
        case .query: "database refused to \(operation)\(sqlState.map { " (SQLSTATE \($0))" } ?? "")"
        case .decoding: "unexpected database result while trying to \(operation)"
        }
    }

    public var debugDescription: String { "\(description): \(detail)" }
}
