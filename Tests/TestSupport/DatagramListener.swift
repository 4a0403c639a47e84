import Foundation

/// A Unix datagram socket that collects what is sent to it, as systemd's notify socket does.
public final class DatagramListener: @unchecked Sendable {
    // @unchecked: `received` is only touched under `lock`; `fd` never changes after init.
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []

    public init() throws {
        path = try Fixtures.temporaryDirectory("notify").appendingPathComponent("socket").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw TestSupportError("bind(\(path)) failed: \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 {
                    let message = String(decoding: buffer[..<count], as: UTF8.self)
                    lock.withLock { received.append(message) }
                } else if count < 0, errno != EAGAIN, errno != EINTR {
                    return
                }
            }
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Every datagram so far, in order.
    public var messages: [String] { lock.withLock { received } }

    /// Waits (up to `timeout` seconds) until a datagram, from the `from`th on, satisfies `condition`.
    public func wait(timeout: Double, from: Int = 0, for condition: (String) -> Bool) async -> Bool {
        await eventually(timeout: timeout) { messages.dropFirst(from).contains(where: condition) }
    }
}
