import AsyncHTTPClient
import Crypto
public import Foundation
import NIOCore

/// An S3-compatible bucket as storage (`MEDIA_STORAGE_URL=s3://bucket/prefix?…`): AWS S3, MinIO,
/// Ceph RGW, Cloudflare R2. Objects stream to and from files; large outputs go up in parts.
public struct S3Storage: Storage {
    public let location: S3Location
    /// Base of public URLs (`MEDIA_PUBLIC_URL`, a CDN in front of the bucket); the object's own
    /// URL when nil.
    public let publicBase: String?
    public let tuning: Tuning
    private let client: S3Client

    /// Sizes and retry settings; the defaults suit production, tests make them small.
    public struct Tuning: Sendable {
        /// Files of at least this many bytes go up as a multipart upload.
        public var multipartThreshold: Int64
        /// Bytes per part (S3 wants ≥ 5 MiB for every part but the last, and ≤ 10 000 parts).
        public var partSize: Int64
        public var retry: S3RetryPolicy
        /// Keys per ListObjectsV2 page (S3 gives at most 1000).
        public var listPageSize: Int

        public init(
            multipartThreshold: Int64 = 64 << 20, partSize: Int64 = 16 << 20, retry: S3RetryPolicy = .init(),
            listPageSize: Int = 1000
        ) {
            self.multipartThreshold = multipartThreshold
            self.partSize = partSize
            self.retry = retry
            self.listPageSize = listPageSize
        }
    }

    public init(location: S3Location, credentials: S3Credentials, publicBase: String?, tuning: Tuning = .init()) {
        self.location = location
        self.publicBase = publicBase.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.tuning = tuning
        client = S3Client(
            location: location, signer: SigV4Signer(credentials: credentials, region: location.region),
            retry: tuning.retry)
    }

    public var redactedDescription: String { location.description }

    public func publicURL(for key: String) -> String {
        let objectKey = location.objectKey(key)
        if let publicBase { return "\(publicBase)/\(SigV4Signer.uriEncode(objectKey, encodeSlash: false))" }
        return location.url(of: objectKey)
    }

    // MARK: Download

    /// Streams the object into `destination`. A transfer that breaks off resumes where it stopped
    /// (`Range` with `If-Match` on the object's ETag, so a replaced object starts over).
    @discardableResult
    public func download(key: String, to destination: URL, expectedSize: Int64?) async throws(StorageError)
        -> Transferred
    {
        try StorageError.validate(key)
        let objectKey = location.objectKey(key)
        guard FileManager.default.createFile(atPath: destination.path, contents: nil),
            let file = try? FileHandle(forWritingTo: destination)
        else { throw .io(key: key, reason: "cannot create \(destination.path)") }
        defer { try? file.close() }

        var received: Int64 = 0
        var total: Int64?
        var etag: String?
        var hash = SHA256()
        do throws(S3Failure) {
            try await tuning.retry.run { () async throws(S3Failure) in
                var request = S3Client.Request(method: .GET, objectKey: objectKey)
                if received > 0, let etag {
                    request.headers = [("range", "bytes=\(received)-"), ("if-match", etag)]
                }
                let response = try await client.send(request)
                if response.status != .partialContent {
                    // A whole object (first attempt, or the store ignored the range): start over.
                    received = 0
                    hash = SHA256()
                    do {
                        try file.truncate(atOffset: 0)
                    } catch { throw .transport("cannot truncate \(destination.path): \(error)") }
                    total = response.headers.first(name: "content-length").flatMap(Int64.init)
                    etag = response.headers.first(name: "etag")
                }
                do {
                    for try await chunk in response.body {
                        try await offThePool { try chunk.withUnsafeReadableBytes { try file.write(contentsOf: $0) } }
                        chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
                        received += Int64(chunk.readableBytes)
                    }
                } catch let error as CocoaError {
                    throw .transport("cannot write \(destination.path): \(error.localizedDescription)")
                } catch {
                    throw .transport("the download broke off after \(received) bytes: \(S3Client.describe(error))")
                }
                if let total, received < total {
                    throw .transport("the download ended after \(received) of \(total) bytes")
                }
            }
        } catch {
            throw Self.storageError(error, key: key)
        }
        if let expectedSize, received != expectedSize {
            throw .sizeMismatch(key: key, expected: expectedSize, actual: received)
        }
        return Transferred(bytes: received, sha256: hexDigest(hash.finalize()))
    }

    // MARK: Upload

    @discardableResult
    public func upload(_ source: URL, key: String, contentType: String) async throws(StorageError) -> Transferred {
        try StorageError.validate(key)
        let objectKey = location.objectKey(key)
        guard let size = (try? FileManager.default.attributesOfItem(atPath: source.path))?[.size] as? Int64 else {
            throw .io(key: key, reason: "cannot read \(source.path)")
        }
        do {
            if size >= tuning.multipartThreshold {
                let sha256 = try await uploadInParts(source, size: size, objectKey: objectKey, contentType: contentType)
                return Transferred(bytes: size, sha256: sha256)
            }
            let body = try await Self.fileBody(source, offset: 0, length: size)
            _ = try await client.perform(
                .init(method: .PUT, objectKey: objectKey, headers: [("content-type", contentType)], body: body))
            return Transferred(bytes: size, sha256: body.payloadHash)
        } catch {
            throw Self.storageError(error, key: key)
        }
    }

    /// CreateMultipartUpload, one UploadPart per `partSize`, CompleteMultipartUpload; on any
    /// failure AbortMultipartUpload, so no orphaned parts keep costing storage. Returns the
    /// SHA-256 of the whole file, hashed as the parts are read.
    private func uploadInParts(_ source: URL, size: Int64, objectKey: String, contentType: String)
        async throws(S3Failure) -> String
    {
        let (_, created) = try await client.perform(
            .init(
                method: .POST, objectKey: objectKey, query: [("uploads", "")],
                headers: [("content-type", contentType)]))
        guard let uploadId = S3Failure.element("UploadId", in: created) else {
            throw .service(status: 200, code: "MalformedResponse", message: "no UploadId", bucketRegion: nil)
        }
        do throws(S3Failure) {
            var parts: [(number: Int, etag: String)] = []
            var offset: Int64 = 0
            let whole = RunningHash()
            while offset < size {
                let length = min(tuning.partSize, size - offset)
                let number = parts.count + 1
                let (response, _) = try await client.perform(
                    .init(
                        method: .PUT, objectKey: objectKey,
                        query: [("partNumber", "\(number)"), ("uploadId", uploadId)],
                        body: try await Self.fileBody(source, offset: offset, length: length, whole: whole)))
                guard let etag = response.headers.first(name: "etag") else {
                    throw S3Failure.service(
                        status: 200, code: "MalformedResponse", message: "part \(number) has no ETag",
                        bucketRegion: nil)
                }
                parts.append((number, etag))
                offset += length
            }
            let document =
                "<CompleteMultipartUpload>"
                + parts.map {
                    "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(Self.escaped($0.etag))</ETag></Part>"
                }
                .joined() + "</CompleteMultipartUpload>"
            let (_, completed) = try await client.perform(
                .init(
                    method: .POST, objectKey: objectKey, query: [("uploadId", uploadId)],
                    body: .data(Data(document.utf8))))
            // CompleteMultipartUpload can answer 200 with an error document.
            if let code = S3Failure.element("Code", in: completed) {
                throw S3Failure.service(
                    status: 200, code: code, message: S3Failure.element("Message", in: completed) ?? "",
                    bucketRegion: nil)
            }
            return whole.hex
        } catch {
            _ = try? await client.perform(
                .init(method: .DELETE, objectKey: objectKey, query: [("uploadId", uploadId)]))
            throw error
        }
    }

    // MARK: Head, delete and check

    /// What the store says of an object, without its bytes.
    public struct ObjectInfo: Sendable, Equatable {
        public let size: Int64
        public let contentType: String?

        public init(size: Int64, contentType: String?) {
            self.size = size
            self.contentType = contentType
        }
    }

    /// HEAD of the object at `key`.
    public func info(key: String) async throws(StorageError) -> ObjectInfo {
        try StorageError.validate(key)
        do {
            let (response, _) = try await client.perform(.init(method: .HEAD, objectKey: location.objectKey(key)))
            return ObjectInfo(
                size: response.headers.first(name: "content-length").flatMap(Int64.init) ?? -1,
                contentType: response.headers.first(name: "content-type"))
        } catch {
            throw Self.storageError(error, key: key)
        }
    }

    public func object(at key: String) async throws(StorageError) -> StoredObject? {
        try StorageError.validate(key)
        do {
            let (response, _) = try await client.perform(.init(method: .HEAD, objectKey: location.objectKey(key)))
            return StoredObject(
                key: key, bytes: response.headers.first(name: "content-length").flatMap(Int64.init) ?? -1,
                modified: response.headers.first(name: "last-modified").flatMap(Self.httpDate) ?? .distantPast)
        } catch {
            if error.isNoSuchKey { return nil }
            throw Self.storageError(error, key: key)
        }
    }

    /// ListObjectsV2, page after page (`Tuning.listPageSize` keys each).
    public func list(prefix: String) async throws(StorageError) -> [StoredObject] {
        let objectPrefix = location.objectKey(prefix)
        let strip = location.prefix.isEmpty ? 0 : location.prefix.count + 1
        var found: [StoredObject] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("max-keys", "\(tuning.listPageSize)"), ("prefix", objectPrefix)]
            if let token { query.append(("continuation-token", token)) }
            let page: String
            do {
                (_, page) = try await client.perform(.init(method: .GET, objectKey: "", query: query))
            } catch {
                throw Self.storageError(error, key: prefix)
            }
            for entry in S3Failure.elements("Contents", in: page, decode: false) {
                guard let key = S3Failure.element("Key", in: entry), key.count > strip else { continue }
                found.append(
                    StoredObject(
                        key: String(key.dropFirst(strip)),
                        bytes: S3Failure.element("Size", in: entry).flatMap(Int64.init) ?? -1,
                        modified: S3Failure.element("LastModified", in: entry).flatMap(Self.isoDate) ?? .distantPast))
            }
            token =
                S3Failure.element("IsTruncated", in: page) == "true"
                ? S3Failure.element("NextContinuationToken", in: page) : nil
        } while token != nil
        return found
    }

    public func delete(key: String) async throws(StorageError) {
        try StorageError.validate(key)
        do {
            _ = try await client.perform(.init(method: .DELETE, objectKey: location.objectKey(key)))
        } catch {
            throw Self.storageError(error, key: key)
        }
    }

    /// Writes, reads back and deletes a small object under `media-worker/checks/`.
    public func check() async throws(StorageError) {
        let key = "media-worker/checks/\(UUID().uuidString.lowercased()).txt"
        let objectKey = location.objectKey(key)
        let content = "media-worker storage check \(Date())"
        do {
            _ = try await client.perform(
                .init(
                    method: .PUT, objectKey: objectKey, headers: [("content-type", "text/plain")],
                    body: .data(Data(content.utf8))))
            let (_, readBack) = try await client.perform(.init(method: .GET, objectKey: objectKey))
            _ = try await client.perform(.init(method: .DELETE, objectKey: objectKey))
            guard readBack == content else {
                throw StorageError.unusable("\(location.description) returned other bytes than were written")
            }
        } catch let error as S3Failure {
            throw .unusable("\(location.description): \(error)")
        } catch let error as StorageError {
            throw error
        } catch {
            throw .unusable("\(location.description): \(error)")
        }
    }

    // MARK: Helpers

    /// A file region as a request body, hashed first (SigV4 signs the payload's SHA-256, so the
    /// store rejects bytes that changed on the way). Reads the region once, 1 MiB at a time, off
    /// Swift's cooperative pool, also feeding `whole` (the hash of a file sent in parts).
    private static func fileBody(_ url: URL, offset: Int64, length: Int64, whole: RunningHash? = nil)
        async throws(S3Failure) -> S3Client.Body
    {
        do {
            let sha256 = try await offThePool {
                let handle = try FileHandle(forReadingFrom: url)
                defer { try? handle.close() }
                try handle.seek(toOffset: UInt64(offset))
                var hash = SHA256()
                var remaining = length
                while remaining > 0 {
                    let data = try handle.read(upToCount: Int(min(remaining, 1 << 20))) ?? Data()
                    guard !data.isEmpty else { throw S3Failure.transport("\(url.path) is shorter than expected") }
                    hash.update(data: data)
                    whole?.update(data)
                    remaining -= Int64(data.count)
                }
                return SigV4Signer.hex(hash.finalize())
            }
            return .file(url, offset: offset, length: length, sha256: sha256)
        } catch let error as S3Failure {
            throw error
        } catch {
            throw .transport("cannot read \(url.path): \(error.localizedDescription)")
        }
    }

    private static func storageError(_ failure: S3Failure, key: String) -> StorageError {
        failure.isNoSuchKey ? .notFound(key: key) : .io(key: key, reason: failure.description)
    }

    /// `LastModified` of a listing: ISO 8601, usually with milliseconds.
    private static func isoDate(_ text: String) -> Date? {
        (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
            ?? (try? Date(text, strategy: Date.ISO8601FormatStyle()))
    }

    /// `Last-Modified` of a HEAD answer: an HTTP date (RFC 9110, `Sun, 06 Nov 1994 08:49:37 GMT`).
    private static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    private static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// The SHA-256 of a file sent in parts, fed one part after another (never at once).
private final class RunningHash: @unchecked Sendable {
    // @unchecked: fed by one upload, one part at a time.
    private var hash = SHA256()

    func update(_ data: Data) { hash.update(data: data) }
    var hex: String { SigV4Signer.hex(hash.finalize()) }
}
