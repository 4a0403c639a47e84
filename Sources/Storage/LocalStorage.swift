import Dispatch
public import Foundation

/// A folder as storage (`MEDIA_STORAGE_URL=file:///srv/media`): writes are atomic (temporary file,
/// then rename) and keys cannot leave the folder.
public struct LocalStorage: Storage {
    public let root: URL
    /// Base of public URLs (`MEDIA_PUBLIC_URL`); `file://` URLs when nil.
    public let publicBase: String?

    public init(root: URL, publicBase: String?) {
        self.root = root.standardizedFileURL
        self.publicBase = publicBase.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    public var redactedDescription: String { root.absoluteString }

    /// The file for `key`, after checking it stays inside the root.
    public func path(for key: String) throws(StorageError) -> URL {
        try StorageError.validate(key)
        let file = root.appendingPathComponent(key).standardizedFileURL
        guard file.path.hasPrefix(root.path + "/") else { throw .invalidKey(key, reason: "outside the storage root") }
        return file
    }

    public func download(key: String, to destination: URL, expectedSize: Int64?) async throws(StorageError) {
        let source = try path(for: key)
        try await blocking(key) {
            guard FileManager.default.fileExists(atPath: source.path) else { throw StorageError.notFound(key: key) }
            if FileManager.default.fileExists(atPath: destination.path) {
                try FileManager.default.removeItem(at: destination)
            }
            try FileManager.default.copyItem(at: source, to: destination)
            if let expectedSize {
                let actual = (try FileManager.default.attributesOfItem(atPath: destination.path)[.size] as? Int64) ?? -1
                if actual != expectedSize {
                    throw StorageError.sizeMismatch(key: key, expected: expectedSize, actual: actual)
                }
            }
        }
    }

    public func upload(_ source: URL, key: String, contentType: String) async throws(StorageError) {
        let target = try path(for: key)
        try await blocking(key) {
            try FileManager.default.createDirectory(
                at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = target.deletingLastPathComponent()
                .appendingPathComponent(".\(target.lastPathComponent).\(UUID().uuidString).tmp")
            do {
                try FileManager.default.copyItem(at: source, to: temporary)
                guard rename(temporary.path, target.path) == 0 else {
                    throw StorageError.io(key: key, reason: String(cString: strerror(errno)))
                }
            } catch {
                try? FileManager.default.removeItem(at: temporary)
                throw error
            }
        }
    }

    public func delete(key: String) async throws(StorageError) {
        let target = try path(for: key)
        try await blocking(key) {
            if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
        }
    }

    /// Creates `media-worker/checks/` under the root, writes, reads back and deletes a small file
    /// there; failures name the path and the system's reason.
    public func check() async throws(StorageError) {
        let folder = root.appendingPathComponent("media-worker/checks", isDirectory: true)
        let hint = "check \(root.path) exists and this user may write it"
        try await blocking("media-worker/checks") {
            var path = ""
            for component in folder.pathComponents.dropFirst() {
                path += "/" + component
                if mkdir(path, 0o755) != 0, errno != EEXIST {
                    throw StorageError.unusable("cannot create \(path): \(String(cString: strerror(errno))); \(hint)")
                }
            }
            let file = folder.appendingPathComponent("\(UUID().uuidString.lowercased()).txt").path
            let content = Array("media-worker storage check".utf8)
            let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw StorageError.unusable(
                    "cannot write in \(folder.path): \(String(cString: strerror(errno))); \(hint)")
            }
            defer { unlink(file) }
            let written = write(fd, content, content.count)
            let error = errno
            close(fd)
            guard written == content.count else {
                throw StorageError.unusable("cannot write in \(folder.path): \(String(cString: strerror(error)))")
            }
            guard FileManager.default.contents(atPath: file) == Data(content) else {
                throw StorageError.unusable("\(root.path) returned other bytes than were written")
            }
        }
    }

    public func publicURL(for key: String) -> String {
        if let publicBase { return "\(publicBase)/\(key)" }
        return root.appendingPathComponent(key).absoluteString
    }

    /// Runs file I/O on a dispatch thread, not on Swift's cooperative pool.
    private func blocking(_ key: String, _ work: @escaping @Sendable () throws -> Void) async throws(StorageError) {
        let result: Result<Void, StorageError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    try work()
                    continuation.resume(returning: .success(()))
                } catch let error as StorageError {
                    continuation.resume(returning: .failure(error))
                } catch {
                    continuation.resume(returning: .failure(.io(key: key, reason: error.localizedDescription)))
                }
            }
        }
        try result.get()
    }
}
