public import Foundation
import JobVocabulary

/// sd_notify over the documented datagram protocol (`man sd_notify`): one datagram of
/// `KEY=value` lines to the socket in `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
/// namespace). Without `NOTIFY_SOCKET` it sends nothing; a failed send is ignored, as libsystemd
/// does, because systemd's state must never stop the work.
public struct SystemdNotifier: Sendable {
    private let address: [UInt8]?
    /// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when the unit has `WatchdogSec=`
    /// and `$WATCHDOG_PID` (if set) is this process.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let socket = environment["NOTIFY_SOCKET"], socket.hasPrefix("/") || socket.hasPrefix("@"),
            socket.utf8.count < 108
        {
            var bytes = Array(socket.utf8)
            if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
            address = bytes
        } else {
            address = nil
        }
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forUs, let text = environment["WATCHDOG_USEC"], let microseconds = Int64(text), microseconds > 0 {
            watchdogInterval = .microseconds(microseconds / 2)
        } else {
            watchdogInterval = nil
        }
    }

    /// Whether a service manager listens.
    public var isEnabled: Bool { address != nil }

    /// Start-up is done: the database and storage answered.
    public func ready(status: String) { send("READY=1\nSTATUS=\(status)\nMAINPID=\(getpid())") }
    /// What `systemctl status` shows.
    public func status(_ text: String) { send("STATUS=\(text)") }
    /// The main loop is alive and healthy.
    public func watchdog() { send("WATCHDOG=1") }
    /// A graceful stop began; it may take `extend` (more than TimeoutStopSec if need be).
    public func stopping(status: String, extend: Duration) {
        send("STOPPING=1\nSTATUS=\(status)\nEXTEND_TIMEOUT_USEC=\(extend.inMicroseconds)")
    }

    private func send(_ message: String) {
        guard let address else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var target = sockaddr_un()
        target.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &target.sun_path) { path in
            for (index, byte) in address.enumerated() { path[index] = byte }
        }
        // Abstract names are not NUL-terminated: the length says where they end.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count + (address[0] == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        _ = withUnsafePointer(to: &target) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
            }
        }
    }
}
