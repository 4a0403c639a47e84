import Glibc

/// Watches files with inotify and tells whether anything opened or read them: proof that a
/// crafted upload made nothing else be read, whichever process tried.
public final class FileOpenWatch {
    private let descriptor: Int32

    /// Starts watching `paths` (which must exist).
    public init(_ paths: [String]) throws {
        descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else { throw TestSupportError("inotify_init1: \(String(cString: strerror(errno)))") }
        for path in paths where inotify_add_watch(descriptor, path, UInt32(IN_OPEN | IN_ACCESS)) < 0 {
            close(descriptor)
            throw TestSupportError("inotify_add_watch \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        close(descriptor)
    }

    /// How many opens and reads of the watched files happened since the watch started (or since
    /// the last call).
    public func accesses() -> Int {
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let length = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard length > 0 else { return count }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= length {
                let nameLength = buffer.withUnsafeBytes {
                    $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self).len
                }
                count += 1
                offset += MemoryLayout<inotify_event>.size + Int(nameLength)
            }
        }
    }
}
