import Foundation

/// A TCP port free right now on 127.0.0.1, for a server a test starts. Taken below the kernel's
/// ephemeral range: a port from that range (what binding port 0 gives) can be taken as the source
/// port of some other test's outgoing connection before the server binds it, and the server then
/// fails to start. Never the same port twice in one test process.
public func freePort() throws -> Int {
    let range =
        (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
        .split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
    for _ in 0..<200 {
        let candidate = Int.random(in: 15000..<max(15001, range))
        guard PortsHandedOut.take(candidate) else { continue }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        let (bound, _) = loopback(port: candidate) { bind(fd, $0, $1) == 0 }
        if bound { return candidate }
    }
    throw TestSupportError("no free port below \(range)")
}

/// The ports `freePort` handed out in this process.
private enum PortsHandedOut {
    nonisolated(unsafe) private static var ports: Set<Int> = []
    private static let lock = NSLock()

    /// Whether `port` was not handed out yet (it is now).
    static func take(_ port: Int) -> Bool { lock.withLock { ports.insert(port).inserted } }
}

/// How a test reaches the database: directly, or through PgBouncer in transaction mode.
public enum Route: String, CaseIterable, Sendable, CustomStringConvertible {
    case direct, pooled
    public var description: String { rawValue }

    /// Where to connect for the database `directURL` names. The first pooled caller starts
    /// PgBouncer (seconds on a loaded machine) and the others wait for it, each on a thread of its
    /// own: on the cooperative pool (two threads here) they would stall every other test meanwhile.
    public func url(for directURL: String) async throws -> String {
        self == .pooled ? try await onOwnThread { try TestPooler.url(for: directURL) } : directURL
    }
}

/// PgBouncer in transaction mode in front of the test server, as production puts it in front of
/// the app's database: session state (LISTEN, session advisory locks, SET) does not last between
/// transactions. One for the whole test run, started on first use, stopped at exit.
public enum TestPooler {
    /// The database of `directURL` (on the test server) reached through the pooler.
    public static func url(for directURL: String) throws -> String {
        guard let components = URLComponents(string: directURL) else {
            throw TestSupportError("not a URL: \(directURL)")
        }
        let port = try lock.withLock {
            if let running { return running }
            let started = try start(backend: components)
            running = started
            return started
        }
        return "postgresql://postgres@127.0.0.1:\(port)\(components.path)"
    }

    nonisolated(unsafe) private static var running: Int?
    private static let lock = NSLock()

    private static func start(backend: URLComponents) throws -> Int {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/pgbouncer") else {
            throw TestSupportError("pgbouncer is not installed: run .ci/setup")
        }
        let query = Dictionary(
            (backend.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let host = query["host"] ?? backend.host ?? "localhost"
        let port = query["port"].flatMap(Int.init) ?? backend.port ?? 5432
        let user = query["user"] ?? backend.user ?? "postgres"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "media-worker-pgbouncer-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let listenPort = try freePort()
        let config = """
            [databases]
            * = host=\(host) port=\(port) user=\(user)
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(listenPort)
            unix_socket_dir =
            auth_type = any
            pool_mode = transaction
            max_client_conn = 1000
            default_pool_size = 20
            pidfile = \(directory.path)/pgbouncer.pid
            logfile = \(directory.path)/pgbouncer.log
            """
        try config.write(to: directory.appendingPathComponent("pgbouncer.ini"), atomically: true, encoding: .utf8)
        // PgBouncer refuses to run as root.
        let asRoot = getuid() == 0
        if asRoot { _ = try runProgram(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres", directory.path]) }
        let command = ["/usr/sbin/pgbouncer", "-d", directory.appendingPathComponent("pgbouncer.ini").path]
        let result =
            asRoot
            ? try runProgram(URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--"] + command)
            : try runProgram(URL(fileURLWithPath: command[0]), Array(command.dropFirst()))
        guard result.status == 0 else { throw TestSupportError("pgbouncer did not start: \(result.stderr)") }
        // The test process may end without running exit handlers, and the test runner kills what
        // is left in its process group, so a watcher in a session of its own stops PgBouncer once
        // the test process is gone.
        let pidFile = directory.appendingPathComponent("pgbouncer.pid").path
        _ = try runProgram(
            URL(fileURLWithPath: "/usr/bin/setsid"),
            [
                "-f", "/bin/sh", "-c",
                "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; kill $(cat '\(pidFile)')",
            ], detached: true)
        // It answers once its port is bound (on a loaded machine, seconds after it forked).
        for _ in 0..<200 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let (connected, _) = loopback(port: listenPort) { connect(fd, $0, $1) == 0 }
            close(fd)
            if connected { return listenPort }
            usleep(100_000)
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("pgbouncer.log"), encoding: .utf8)) ?? ""
        throw TestSupportError("pgbouncer did not open port \(listenPort) in 20 s: \(log.suffix(2000))")
    }

}
