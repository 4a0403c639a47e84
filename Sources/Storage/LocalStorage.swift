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

    public func check() async throws(StorageError) {
        let key = "media-worker/checks/\(UUID().uuidString.lowercased()).txt"
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("media-worker-check-\(UUID())")
        let content = Data("media-worker storage check".utf8)
        do {
            try content.write(to: probe)
            defer { try? FileManager.default.removeItem(at: probe) }
            try await upload(probe, key: key, contentType: "text/plain")
            let stored = try Data(contentsOf: try path(for: key))
            try await delete(key: key)
            guard stored == content else { throw StorageError.unusable("\(root.path) returned other bytes") }
        } catch let error as StorageError {
            if case .unusable = error { throw error }
            throw .unusable("\(root.path) is not writable: \(error); check the folder exists and who owns it")
        } catch {
            throw .unusable("\(root.path): \(error.localizedDescription)")
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
