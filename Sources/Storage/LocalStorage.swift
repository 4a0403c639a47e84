import Crypto
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

    @discardableResult
    public func download(key: String, to destination: URL, expectedSize: Int64?) async throws(StorageError)
        -> Transferred
    {
        let source = try path(for: key)
        return try await blocking(key) {
            try walkFolders(of: key, creating: false)
            let input = open(source.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard input >= 0 else { throw Self.openError(key: key, errno) }
            defer { close(input) }
            // A folder (or a device, a pipe) is no upload: the key is wrong, and no retry fixes it.
            var status = stat()
            guard fstat(input, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
                throw StorageError.invalidKey(key, reason: "it names a folder or a special file, not an uploaded file")
            }
            unlink(destination.path)
            let output = open(destination.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard output >= 0 else { throw StorageError.io(key: key, reason: String(cString: strerror(errno))) }
            defer { close(output) }
            var hash = SHA256()
            let copied = try Self.copy(from: input, to: output, key: key) { hash.update(bufferPointer: $0) }
            if let expectedSize, copied != expectedSize {
                throw StorageError.sizeMismatch(key: key, expected: expectedSize, actual: copied)
            }
            return Transferred(bytes: copied, sha256: hexDigest(hash.finalize()))
        }
    }

    @discardableResult
    public func upload(_ source: URL, key: String, contentType: String) async throws(StorageError) -> Transferred {
        let target = try path(for: key)
        return try await blocking(key) {
            try walkFolders(of: key, creating: true)
            let temporary = target.deletingLastPathComponent()
                .appendingPathComponent(".\(target.lastPathComponent).\(UUID().uuidString).tmp")
            let input = open(source.path, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else { throw StorageError.io(key: key, reason: String(cString: strerror(errno))) }
            defer { close(input) }
            let output = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard output >= 0 else { throw StorageError.io(key: key, reason: String(cString: strerror(errno))) }
            do {
                defer { close(output) }
                var hash = SHA256()
                let copied = try Self.copy(from: input, to: output, key: key) { hash.update(bufferPointer: $0) }
                // rename replaces a symbolic link at the target instead of writing through it.
                guard rename(temporary.path, target.path) == 0 else {
                    throw StorageError.io(key: key, reason: String(cString: strerror(errno)))
                }
                return Transferred(bytes: copied, sha256: hexDigest(hash.finalize()))
            } catch {
                unlink(temporary.path)
                throw error
            }
        }
    }

    public func delete(key: String) async throws(StorageError) {
        let target = try path(for: key)
        try await blocking(key) {
            do {
                try walkFolders(of: key, creating: false)
            } catch StorageError.notFound {
                return
            }
            if unlink(target.path) != 0, errno != ENOENT {
                throw StorageError.io(key: key, reason: String(cString: strerror(errno)))
            }
        }
    }

    public func object(at key: String) async throws(StorageError) -> StoredObject? {
        let file = try path(for: key)
        return try await blocking(key) {
            do {
                try walkFolders(of: key, creating: false)
            } catch StorageError.notFound {
                return nil
            }
            var status = stat()
            guard lstat(file.path, &status) == 0 else {
                if errno == ENOENT { return nil }
                throw Self.openError(key: key, errno)
            }
            guard status.st_mode & S_IFMT == S_IFREG else { return nil }
            return Self.object(key, status)
        }
    }

    /// Walks the folders under `prefix` (never through a symbolic link) and lists the regular
    /// files whose keys start with it.
    public func list(prefix: String) async throws(StorageError) -> [StoredObject] {
        let folderKey = prefix.split(separator: "/", omittingEmptySubsequences: false).dropLast()
            .joined(separator: "/")
        if !folderKey.isEmpty { try StorageError.validate(folderKey) }
        return try await blocking(prefix) {
            var found: [StoredObject] = []
            func walk(_ key: String) {
                let folder = key.isEmpty ? root.path : root.path + "/" + key
                guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
                for name in names.sorted() {
                    let child = key.isEmpty ? name : key + "/" + name
                    guard child.hasPrefix(prefix) || prefix.hasPrefix(child + "/") else { continue }
                    var status = stat()
                    guard lstat(folder + "/" + name, &status) == 0 else { continue }
                    switch status.st_mode & S_IFMT {
                    case S_IFDIR: walk(child)
                    case S_IFREG where child.hasPrefix(prefix): found.append(Self.object(child, status))
                    default: continue
                    }
                }
            }
            do {
                try walkFolders(of: folderKey + "/x", creating: false)
            } catch StorageError.notFound {
                return []
            }
            walk(folderKey)
            return found.sorted { $0.key < $1.key }
        }
    }

    private static func object(_ key: String, _ status: stat) -> StoredObject {
        StoredObject(
            key: key, bytes: Int64(status.st_size),
            modified: Date(
                timeIntervalSince1970: Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9))
    }

    /// Walks the folders of `key` from the root without following a symbolic link (one would
    /// lead wherever whoever made it wanted), creating missing ones when `creating`.
    private func walkFolders(of key: String, creating: Bool) throws(StorageError) {
        var folder = root.path
        for component in key.split(separator: "/").dropLast() {
            folder += "/" + component
            var status = stat()
            if lstat(folder, &status) == 0 {
                if status.st_mode & S_IFMT == S_IFLNK {
                    throw .invalidKey(key, reason: "a symbolic link in the storage folder leads outside it")
                }
                guard status.st_mode & S_IFMT == S_IFDIR else {
                    throw .io(key: key, reason: "\(component) is not a folder")
                }
            } else if errno == ENOENT && creating {
                if mkdir(folder, 0o755) != 0 && errno != EEXIST {
                    throw .io(key: key, reason: String(cString: strerror(errno)))
                }
            } else if errno == ENOENT {
                throw .notFound(key: key)
            } else {
                throw .io(key: key, reason: String(cString: strerror(errno)))
            }
        }
    }

    private static func openError(key: String, _ code: Int32) -> StorageError {
        switch code {
        case ENOENT: .notFound(key: key)
        case ELOOP: .invalidKey(key, reason: "the object is a symbolic link, which is never followed")
        default: .io(key: key, reason: String(cString: strerror(code)))
        }
    }

    /// Copies everything from `input` to `output`, showing each chunk to `observe`; returns the
    /// byte count.
    private static func copy(
        from input: Int32, to output: Int32, key: String, observe: (UnsafeRawBufferPointer) -> Void
    ) throws(StorageError) -> Int64 {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw .io(key: key, reason: String(cString: strerror(errno))) }
            if count == 0 { return total }
            buffer.withUnsafeBytes { observe(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                if result < 0 && errno == EINTR { continue }
                if result < 0 { throw .io(key: key, reason: String(cString: strerror(errno))) }
                written += result
            }
            total += Int64(count)
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

    /// Runs file I/O off Swift's cooperative pool, with its failures as `StorageError`s.
    private func blocking<T: Sendable>(_ key: String, _ work: @escaping @Sendable () throws -> T)
        async throws(StorageError)
        -> T
    {
        do {
            return try await offThePool(work)
        } catch let error as StorageError {
            throw error
        } catch {
            throw .io(key: key, reason: error.localizedDescription)
        }
    }
}
