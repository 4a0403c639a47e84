import Foundation

/// A TCP proxy in front of the test database that can cut a worker off from it while its storage
/// still works: silently (`cut`: bytes are neither passed on nor refused and no connection closes,
/// so statements get no answer, as when a switch drops the packets) or loudly (`refuse`: every
/// connection is reset and new ones are closed at once, as in a failover or a PgBouncer restart).
/// Its threads end with `stop`, or with the test process.
public final class PartitionProxy: @unchecked Sendable {
    // @unchecked: `cut`, `stopped` and `sockets` are only touched under `lock`.
    public let port: Int
    private let listener: Int32
    private let upstream: URLComponents
    private let lock = NSLock()
    private var isCut = false
    private var refusing = false
    private var stopped = false
    private var sockets: [Int32] = []

    /// A proxy to the database server `directURL` names (a Unix socket or TCP).
    public init(to directURL: String) throws {
        guard let components = URLComponents(string: directURL) else {
            throw TestSupportError("not a URL: \(directURL)")
        }
        upstream = components
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let (bound, port) = loopback { address, length in
            bind(listener, address, length) == 0 && listen(listener, 64) == 0
                && getsockname(listener, address, &length) == 0
        }
        guard bound else {
            close(listener)
            throw TestSupportError("bind/listen: \(String(cString: strerror(errno)))")
        }
        self.listener = listener
        self.port = port
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit { stop() }

    /// The database of `directURL` reached through the proxy.
    public func url(for directURL: String) -> String {
        let path = URLComponents(string: directURL)?.path ?? "/postgres"
        let user = query["user"] ?? upstream.user ?? "postgres"
        return "postgresql://\(user)@127.0.0.1:\(port)\(path)?connect_timeout=2"
    }

    /// From now on nothing passes, either way, on any connection (new ones are accepted and hang).
    public func cut() { lock.withLock { isCut = true } }

    /// Resets every connection, and closes new ones at once, until `mend`.
    public func refuse() {
        let open: [Int32] = lock.withLock {
            refusing = true
            defer { sockets = [] }
            return sockets
        }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Everything held back passes again; new connections are served again.
    public func mend() {
        lock.withLock {
            isCut = false
            refusing = false
        }
    }

    /// Closes the listener and every connection.
    public func stop() {
        let open: [Int32] = lock.withLock {
            guard !stopped else { return [] }
            stopped = true
            defer { sockets = [] }
            return sockets + [listener]
        }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private var query: [String: String] {
        Dictionary((upstream.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
    }

    private var cutNow: Bool { lock.withLock { isCut } }
    private var stoppedNow: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !stoppedNow {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            guard !lock.withLock({ refusing }), let server = connectUpstream() else {
                close(client)
                continue
            }
            let tracked = lock.withLock {
                guard !stopped else { return false }
                sockets += [client, server]
                return true
            }
            guard tracked else {
                close(client)
                close(server)
                continue
            }
            Thread.detachNewThread { [self] in pump(from: client, to: server) }
            Thread.detachNewThread { [self] in pump(from: server, to: client) }
        }
        close(listener)
    }

    private func connectUpstream() -> Int32? {
        let host = query["host"] ?? upstream.host ?? "localhost"
        let port = query["port"].flatMap(Int.init) ?? upstream.port ?? 5432
        if host.hasPrefix("/") {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let path = Array("\(host)/.s.PGSQL.\(port)".utf8CString)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: path.prefix(raw.count - 1).map { UInt8(bitPattern: $0) })
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if connected == 0 { return fd }
            close(fd)
            return nil
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let (connected, _) = loopback(port: port) { connect(fd, $0, $1) == 0 }
        if connected { return fd }
        close(fd)
        return nil
    }

    /// Passes bytes from `source` to `target` while not cut, until either side closes.
    private func pump(from source: Int32, to target: Int32) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        defer {
            shutdown(source, Int32(SHUT_RDWR))
            shutdown(target, Int32(SHUT_RDWR))
        }
        while !stoppedNow {
            if cutNow {
                usleep(20_000)
                continue
            }
            var descriptor = pollfd(fd: source, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 50) > 0 else { continue }
            if cutNow { continue }
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(target, $0.baseAddress! + written, count - written) }
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else { return }
                written += result
            }
        }
    }
}
