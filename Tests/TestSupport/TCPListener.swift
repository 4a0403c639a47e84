import Glibc

/// A TCP socket listening on 127.0.0.1 at a free port, to show that nothing connected to it.
public final class TCPListener {
    private let descriptor: Int32
    public let port: Int

    public init() throws {
        let descriptor = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
        let (bound, port) = loopback { address, length in
            bind(descriptor, address, length) == 0 && listen(descriptor, 16) == 0
                && getsockname(descriptor, address, &length) == 0
        }
        guard bound else {
            close(descriptor)
            throw TestSupportError("bind/listen: \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        self.port = port
    }

    deinit {
        close(descriptor)
    }

    /// How many connections arrived (and were accepted and closed) so far.
    public func connectionsSoFar() -> Int {
        var count = 0
        while case let connection = accept(descriptor, nil, nil), connection >= 0 {
            close(connection)
            count += 1
        }
        return count
    }
}

/// Runs `body` with the socket address 127.0.0.1:`port` (0: the kernel picks one on bind) and its
/// length; returns what `body` returned and the address's port afterwards (as `getsockname` left it).
func loopback<T>(port: Int = 0, _ body: (UnsafeMutablePointer<sockaddr>, inout socklen_t) -> T) -> (T, port: Int) {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let result = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) }
    }
    return (result, Int(UInt16(bigEndian: address.sin_port)))
}
