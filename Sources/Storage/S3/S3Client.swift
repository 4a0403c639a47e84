import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Signed HTTP requests to one bucket, with retries. Knows S3's wire format (errors, multipart
/// XML), not what media-worker stores.
struct S3Client: Sendable {
    let location: S3Location
    let signer: SigV4Signer
    let retry: S3RetryPolicy

    /// One client for the process: connections are pooled across jobs, and a static client never
    /// needs shutting down (AsyncHTTPClient's own `shared` client works the same way). Redirects are
    /// not followed: S3 redirects only to another region, which the request's signature cannot match.
    private static let http = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10), read: .seconds(60)),
            decompression: .disabled))

    /// What a request sends.
    struct Request: Sendable {
        var method: HTTPMethod
        /// Object key (prefix included); empty for the bucket itself.
        var objectKey: String
        var query: [(String, String)] = []
        /// Extra headers, all signed (`content-type`, `range`, `if-match`).
        var headers: [(String, String)] = []
        var body: Body = .empty
    }

    /// A request body, replayable so a retry can send it again.
    enum Body: Sendable {
        case empty
        case data(Data)
        /// `length` bytes of a local file from `offset`, whose SHA-256 is `sha256` (hex).
        case file(URL, offset: Int64, length: Int64, sha256: String)

        var payloadHash: String {
            switch self {
            case .empty: SigV4Signer.emptyPayloadHash
            case .data(let data): SigV4Signer.hexSHA256(data)
            case .file(_, _, _, let sha256): sha256
            }
        }
    }

    /// Sends one attempt and returns the response once its status is 2xx (206 for ranges);
    /// otherwise reads S3's error document and throws it.
    func send(_ request: Request) async throws(S3Failure) -> HTTPClientResponse {
        let (host, path) = location.address(of: request.objectKey)
        let now = Date()
        var signed = [
            "host": host, "x-amz-date": SigV4Signer.timestamp(now), "x-amz-content-sha256": request.body.payloadHash,
        ]
        if let token = signer.credentials.sessionToken { signed["x-amz-security-token"] = token }
        for (name, value) in request.headers { signed[name.lowercased()] = value }
        let signature = signer.sign(
            method: request.method.rawValue, path: path, query: request.query, headers: signed,
            payloadHash: request.body.payloadHash, date: now)

        let query = request.query.map {
            "\(SigV4Signer.uriEncode($0.0, encodeSlash: true))=\(SigV4Signer.uriEncode($0.1, encodeSlash: true))"
        }.joined(separator: "&")
        var http = HTTPClientRequest(
            url: "\(location.endpoint.scheme!)://\(host)\(path)\(query.isEmpty ? "" : "?\(query)")")
        http.method = request.method
        for (name, value) in signed where name != "host" { http.headers.add(name: name, value: value) }
        http.headers.add(name: "authorization", value: signature.authorization)
        switch request.body {
        case .empty: break
        case .data(let data): http.body = .bytes(ByteBuffer(bytes: data))
        case .file(let url, let offset, let length, _):
            http.body = .stream(FileChunks(url: url, offset: offset, length: length), length: .known(length))
        }

        let response: HTTPClientResponse
        do {
            response = try await Self.http.execute(http, timeout: .seconds(60))
        } catch {
            throw .transport(Self.describe(error))
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            let document = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            throw S3Failure(status: Int(response.status.code), document: document, headers: response.headers)
        }
        return response
    }

    /// Sends `request` and collects a small response body (at most 1 MiB), retrying as the policy says.
    func perform(_ request: Request) async throws(S3Failure) -> (HTTPClientResponse, String) {
        try await retry.run { () async throws(S3Failure) in
            let response = try await send(request)
            do {
                let body = try await response.body.collect(upTo: 1 << 20)
                return (response, String(buffer: body))
            } catch {
                throw .transport("the response broke off: \(Self.describe(error))")
            }
        }
    }

    /// A transport error in words (AsyncHTTPClient's errors print as `HTTPClientError.readTimeout`).
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .readTimeout: return "no data for 60 s (read timeout)"
            case .connectTimeout: return "could not connect within 10 s"
            case .deadlineExceeded: return "no response within 60 s"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

/// A region of a file as a stream of buffers, read 1 MiB at a time, so an upload never holds the
/// file in memory.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let url: URL
    let offset: Int64
    let length: Int64

    struct AsyncIterator: AsyncIteratorProtocol {
        let url: URL
        let offset: Int64
        var remaining: Int64
        var handle: FileHandle?

        mutating func next() async throws -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            if handle == nil {
                let (url, offset) = (url, offset)
                handle = try await offThePool {
                    let handle = try FileHandle(forReadingFrom: url)
                    try handle.seek(toOffset: UInt64(offset))
                    return handle
                }
            }
            let (handle, count) = (handle, Int(Swift.min(remaining, 1 << 20)))
            let data = try await offThePool { try handle?.read(upToCount: count) ?? Data() }
            guard !data.isEmpty else { throw S3Failure.transport("\(url.path) ended before the part did") }
            remaining -= Int64(data.count)
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(url: url, offset: offset, remaining: length)
    }
}
