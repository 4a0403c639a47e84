public import Foundation

/// Where inputs are read from and outputs written to. Keys are relative paths such as
/// `uploads/abc.mp4`; an implementation refuses keys that could escape its root.
public protocol Storage: Sendable {
    /// Copies the object at `key` into the local file `destination`, checking its size when
    /// `expectedSize` is given; the bytes are hashed on the way (no second read).
    @discardableResult
    func download(key: String, to destination: URL, expectedSize: Int64?) async throws(StorageError) -> Transferred
    /// Stores the local file `source` at `key`, replacing what is there; the bytes are hashed on
    /// the way (no second read).
    @discardableResult
    func upload(_ source: URL, key: String, contentType: String) async throws(StorageError) -> Transferred
    /// Removes `key` if it exists.
    func delete(key: String) async throws(StorageError)
    /// The object at `key` (its size and when it was written), or nil when there is none.
    func object(at key: String) async throws(StorageError) -> StoredObject?
    /// Every object whose key starts with `prefix`, in key order (on S3 every page of
    /// ListObjectsV2). Keys come back as storage keys.
    func list(prefix: String) async throws(StorageError) -> [StoredObject]
    /// The URL clients fetch `key` from.
    func publicURL(for key: String) -> String
    /// A description safe for logs (no credentials).
    var redactedDescription: String { get }
    /// Proves the store is usable: writes, reads back and deletes a small object. Throws
    /// `.unusable` saying what is wrong in plain words.
    func check() async throws(StorageError)
}

/// What a download or an upload moved.
public struct Transferred: Sendable, Equatable {
    public var bytes: Int64
    /// SHA-256 of the bytes, lowercase hex.
    public var sha256: String
}

/// An object as the store describes it, without its bytes.
public struct StoredObject: Sendable, Equatable {
    public var key: String
    public var bytes: Int64
    /// When it was last written.
    public var modified: Date
}

/// Why a storage operation failed.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key is malformed or points outside the store.
    case invalidKey(String, reason: String)
    /// No object at the key.
    case notFound(key: String)
    /// The object is not the size the job row says.
    case sizeMismatch(key: String, expected: Int64, actual: Int64)
    /// Reading or writing failed (disk full, permissions, network).
    case io(key: String, reason: String)
    /// The store cannot be used at all (no bucket, bad credentials, unwritable folder).
    case unusable(String)

    public var description: String {
        switch self {
        case .invalidKey(let key, let reason): "storage key \(key.debugDescription) refused: \(reason)"
        case .notFound(let key): "no object at storage key \(key.debugDescription)"
        case .sizeMismatch(let key, let expected, let actual):
            "the object at \(key.debugDescription) has \(actual) bytes, the job says \(expected)"
        case .io(let key, let reason): "storage failed on \(key.debugDescription): \(reason)"
        case .unusable(let reason): "storage unusable: \(reason)"
        }
    }
}

extension StorageError {
    /// Checks a key is a plain relative path: no `..`, no absolute path, no NUL, no backslash,
    /// not empty, not too long.
    public static func validate(_ key: String) throws(StorageError) {
        guard !key.isEmpty, key.utf8.count <= 1024 else { throw .invalidKey(key, reason: "empty or too long") }
        guard !key.hasPrefix("/") else { throw .invalidKey(key, reason: "absolute paths are not keys") }
        guard !key.contains("\0"), !key.contains("\\") else {
            throw .invalidKey(key, reason: "NUL and backslash are not allowed")
        }
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) else {
            throw .invalidKey(key, reason: "'.', '..' and empty path segments are not allowed")
        }
    }
}

/// Bytes (a digest) as lowercase hex.
func hexDigest<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
