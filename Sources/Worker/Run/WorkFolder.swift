import Foundation

/// The private folder one run works in under `MEDIA_WORKER_TMPDIR` (its input, its child's
/// outputs): mode 0700, named by nothing the uploader chose, removed by `remove()` when the run
/// ends.
/// While it lives its owner holds a lock on the folder's `.owner` file (`flock`, on a descriptor
/// the child does not inherit), so a daemon killed mid-run (SIGKILL, the OOM killer, a power cut)
/// leaves its folders unlocked and the next daemon to start on the host removes them
/// (`removeAbandoned`), inputs and all.
final class WorkFolder: Sendable {
    let url: URL
    private let owner: Int32

    /// Makes `media-worker-<kind>-<uuid>` under `parent`, locked: made and locked under a hidden
    /// name first, then renamed, so a folder under its real name is always locked while its owner
    /// lives.
    init(in parent: String, kind: String) throws {
        let parentURL = URL(fileURLWithPath: parent)
        let unique = UUID().uuidString
        let making = parentURL.appendingPathComponent("\(Self.makingPrefix)\(unique)", isDirectory: true)
        url = parentURL.appendingPathComponent("media-worker-\(kind)-\(unique)", isDirectory: true)
        try FileManager.default.createDirectory(
            at: making, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let descriptor = open(
            making.appendingPathComponent(".owner").path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0, flock(descriptor, LOCK_EX | LOCK_NB) == 0, rename(making.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if descriptor >= 0 { close(descriptor) }
            try? FileManager.default.removeItem(at: making)
            throw CocoaError(
                .fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot make \(url.path): \(reason)"])
        }
        owner = descriptor
    }

    private static let makingPrefix = ".media-worker-making-"

    /// Removes the folder and everything in it; the lock goes with the last reference.
    func remove() { try? FileManager.default.removeItem(at: url) }

    deinit { close(owner) }

    /// Removes the work folders under `parent` that no living process holds: one whose `.owner`
    /// lock can be taken; one left half made (no lock yet) for a minute; and one of a version before
    /// the lock (no `.owner`) untouched for `staleAfter` seconds. Returns how many went.
    static func removeAbandoned(in parent: String, staleAfter: TimeInterval) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        var removed = 0
        for name in names {
            let making = name.hasPrefix(makingPrefix)
            guard making || ["job-", "piece-", "variant-"].contains(where: { name.hasPrefix("media-worker-\($0)") })
            else { continue }
            let folder = URL(fileURLWithPath: parent).appendingPathComponent(name, isDirectory: true)
            var status = stat()
            guard lstat(folder.path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR, status.st_uid == getuid()
            else { continue }
            let descriptor = open(folder.appendingPathComponent(".owner").path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if descriptor >= 0 {
                defer { close(descriptor) }
                guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { continue }
            } else {
                let age = Date().timeIntervalSince1970 - Double(status.st_mtim.tv_sec)
                guard age > (making ? 60 : staleAfter) else { continue }
            }
            if (try? FileManager.default.removeItem(at: folder)) != nil { removed += 1 }
        }
        return removed
    }
}
