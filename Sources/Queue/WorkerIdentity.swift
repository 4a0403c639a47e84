import Foundation

/// Who is at work: this host, by the name its kernel knows it by (no DNS lookup, which may hang or
/// differ), and this process. Claims and `processingLogs` events say it; so does every
/// connection's `application_name`.
public struct WorkerIdentity: Sendable, Equatable {
    public let host: String
    public let pid: Int32

    /// `host/pid`: how a piece row, the sweep's lease and `/status` name this worker.
    public var name: String { "\(host)/\(pid)" }

    /// This process on this host.
    public static let current = WorkerIdentity(host: kernelHostName(), pid: getpid())

    private static func kernelHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
