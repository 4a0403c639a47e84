import Foundation
public import Queue

/// Throwaway PostgreSQL for tests. With `TEST_DATABASE_URL` set (CI does), databases are created
/// on that server; otherwise one cluster is started for the test process (`initdb` + `pg_ctl`,
/// as the `postgres` user when running as root, which `initdb` refuses) and stopped at exit.
public enum TestDatabase {
    /// A new, empty, migrated database; returns its connection URI.
    public static func create() async throws -> String {
        let server = try serverURL.get()
        let name = "t_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = PostgresConnection(url: server("postgres"), label: "test-admin", logger: .init(label: "test"))
        _ = try await admin.withSession("create a test database") {
            try $0.executeOutsideTransaction("CREATE DATABASE \(name)", operation: "create a test database")
        }
        await admin.close()
        let url = server(name)
        let connection = PostgresConnection(url: url, label: "test-migrate", logger: .init(label: "test"))
        _ = try await connection.withSession("migrate") { try JobStore().migrate($0) }
        await connection.close()
        return url
    }

    /// Runs one statement on `url` and returns the rows.
    @discardableResult
    public static func query(_ url: String, _ sql: String, _ parameters: [String?] = []) async throws -> PostgresRows {
        let connection = PostgresConnection(url: url, label: "test-query", logger: .init(label: "test"))
        let rows = try await connection.withSession("test query") { try $0.query(sql, parameters) }
        await connection.close()
        return rows
    }

    /// A function from database name to URI on the test server.
    private static let serverURL: Result<@Sendable (String) -> String, any Error> = Result {
        if let url = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !url.isEmpty {
            return { database in replacingDatabase(in: url, with: database) }
        }
        let (socketDirectory, port) = try startCluster()
        return { database in "postgresql:///\(database)?host=\(socketDirectory)&port=\(port)&user=postgres" }
    }

    private static func replacingDatabase(in url: String, with database: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/\(database)"
        return components.string ?? url
    }

    /// A cluster of its own (for a test that restarts it): its URI for a migrated database
    /// `media_worker`, and a function that restarts the server. Stopped at exit.
    public static func privateCluster() async throws -> PrivateCluster {
        let label = "private-\(UUID().uuidString.prefix(8))"
        let (directory, port) = try await onOwnThread { try startCluster(label: label) }
        let server = { (database: String) in "postgresql:///\(database)?host=\(directory)&port=\(port)&user=postgres" }
        let admin = PostgresConnection(url: server("postgres"), label: "test-admin", logger: .init(label: "test"))
        _ = try await admin.withSession("create a database") {
            try $0.executeOutsideTransaction("CREATE DATABASE media_worker", operation: "create a database")
        }
        await admin.close()
        let url = server("media_worker")
        let connection = PostgresConnection(url: url, label: "test-migrate", logger: .init(label: "test"))
        _ = try await connection.withSession("migrate") { try JobStore().migrate($0) }
        await connection.close()
        return PrivateCluster(url: url, directory: "\(directory)", port: port)
    }

    /// A cluster of one test's own, which it may stop and start.
    public struct PrivateCluster: Sendable {
        public let url: String
        let directory: String
        let port: Int

        public func restart() throws { try pgctl(["-D", "\(directory)/data", "-w", "-m", "fast", "restart"]) }
        public func stop() throws { try pgctl(["-D", "\(directory)/data", "-w", "-m", "fast", "stop"]) }
        public func start() throws {
            try pgctl([
                "-D", "\(directory)/data", "-w", "-o",
                "-k \(directory) -p \(port) -c listen_addresses='' -c fsync=off -c max_connections=200", "start",
            ])
        }
    }

    private static func pgctl(_ arguments: [String]) throws {
        let binaries = try postgresBinaries()
        let result =
            getuid() == 0
            ? try runProgram(
                URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", "\(binaries)/pg_ctl"] + arguments,
                detached: true)
            : try runProgram(URL(fileURLWithPath: "\(binaries)/pg_ctl"), arguments, detached: true)
        guard result.status == 0 else { throw TestSupportError("pg_ctl \(arguments.last ?? "") failed") }
    }

    private static func postgresBinaries() throws -> String {
        let binaries = try FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")
            .sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
        guard let binaries else {
            throw TestSupportError("PostgreSQL is not installed: run .ci/setup, or set TEST_DATABASE_URL")
        }
        return binaries
    }

    nonisolated(unsafe) private static var clusters: [String] = []
    private static let clustersLock = NSLock()

    /// A cluster of its own that speaks TLS on 127.0.0.1 with a certificate for `localhost` signed
    /// by a throwaway CA; also a second CA that signed nothing. Stopped at exit.
    public static func tlsCluster() throws -> TLSCluster {
        let label = "tls-\(UUID().uuidString.prefix(8))"
        let certificates = try Fixtures.temporaryDirectory("tls")
        func openssl(_ arguments: [String]) throws {
            let result = try runProgram(URL(fileURLWithPath: "/usr/bin/openssl"), arguments)
            guard result.status == 0 else { throw TestSupportError("openssl \(arguments[0]): \(result.stderr)") }
        }
        let path = { (name: String) in certificates.appendingPathComponent(name).path }
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
        for ca in ["ca", "other-ca"] {
            try openssl(
                ["req", "-x509"] + curve + [
                    "-keyout", path("\(ca).key"), "-out", path("\(ca).pem"), "-subj", "/CN=\(ca)",
                ])
        }
        try openssl(
            ["req"] + curve + ["-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=localhost"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(
            toFile: path("san.ext"), atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-out", path("server.crt"), "-days", "1", "-extfile", path("san.ext"),
        ])
        // The server reads its key as the postgres user, and only from a file no one else may read.
        if getuid() == 0 {
            _ = try runProgram(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres", certificates.path])
        }
        chmod(path("server.key"), 0o600)
        chmod(certificates.path, 0o755)
        let tcpPort = try freePort()
        _ = try startCluster(
            label: label,
            options:
                "-c ssl=on -c ssl_cert_file=\(path("server.crt")) -c ssl_key_file=\(path("server.key")) "
                + "-c listen_addresses=127.0.0.1",
            port: tcpPort)
        return TLSCluster(port: tcpPort, ca: path("ca.pem"), otherCA: path("other-ca.pem"))
    }

    /// A cluster that speaks TLS on 127.0.0.1.
    public struct TLSCluster: Sendable {
        public let port: Int
        /// The CA that signed the server's certificate, and one that did not.
        public let ca: String
        public let otherCA: String

        /// `sslmode=verify-full` against `rootCertificate`, database `postgres`.
        public func url(rootCertificate: String) -> String {
            "postgresql://postgres@localhost:\(port)/postgres?sslmode=verify-full&sslrootcert=\(rootCertificate)"
        }
    }

    private static func startCluster(label: String = "shared", options: String? = nil, port requested: Int? = nil)
        throws -> (String, Int)
    {
        let binaries = try postgresBinaries()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "media-worker-pg-\(getpid())-\(label)")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let asRoot = getuid() == 0
        if asRoot {
            _ = try runProgram(URL(fileURLWithPath: "/bin/chown"), ["postgres", directory.path])
        }
        let port = requested ?? (label == "shared" ? 20_000 + Int(getpid() % 20_000) : Int.random(in: 40_000..<60_000))
        func asPostgres(_ tool: String, _ arguments: [String], detached: Bool = false) throws -> ProgramResult {
            asRoot
                ? try runProgram(
                    URL(fileURLWithPath: "/usr/sbin/runuser"),
                    ["-u", "postgres", "--", "\(binaries)/\(tool)"] + arguments,
                    detached: detached)
                : try runProgram(URL(fileURLWithPath: "\(binaries)/\(tool)"), arguments, detached: detached)
        }
        let data = directory.appendingPathComponent("data").path
        let initialized = try asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
        guard initialized.status == 0 else { throw TestSupportError("initdb failed: \(initialized.stderr)") }
        let started = try asPostgres(
            "pg_ctl",
            [
                "-D", data, "-w", "-l", directory.appendingPathComponent("log").path, "-o",
                "-k \(directory.path) -p \(port) -c fsync=off -c max_connections=200 "
                    + (options ?? "-c listen_addresses=''"), "start",
            ], detached: true)
        guard started.status == 0 else {
            throw TestSupportError("pg_ctl start failed; see \(directory.appendingPathComponent("log").path)")
        }
        let first = clustersLock.withLock {
            clusters.append(data)
            return clusters.count == 1
        }
        if first {
            atexit {
                for data in TestDatabase.clusters {
                    try? TestDatabase.pgctl(["-D", data, "-m", "immediate", "stop"])
                    try? FileManager.default.removeItem(
                        atPath: URL(fileURLWithPath: data).deletingLastPathComponent().path)
                }
            }
        }
        return (directory.path, port)
    }
}

/// A test helper could not do its job.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
