import Foundation
import TestSupport
import Testing

@testable import Storage

/// S3Storage against moto with SigV4 checking on (a wrong signature is refused), through a proxy
/// that injects faults.
@Suite("S3Storage against an S3 server")
struct S3StorageTests {
    let server: S3TestServer
    /// Every test works under its own prefix, so parallel tests never see each other's requests.
    let prefix = "test-\(UUID().uuidString.lowercased().prefix(8))"

    init() async throws { server = try await S3TestServer.shared() }

    func storage(
        secret: String? = nil, accessKey: String? = nil, bucket: String? = nil, publicBase: String? = nil
    ) throws -> S3Storage {
        let location = try S3Location(
            url: "s3://\(bucket ?? server.bucket)/\(prefix)?endpoint=\(server.endpoint)&region=\(server.region)")
        return S3Storage(
            location: location,
            credentials: S3Credentials(
                accessKeyId: accessKey ?? server.accessKeyId, secretAccessKey: secret ?? server.secretAccessKey),
            publicBase: publicBase,
            tuning: .init(
                multipartThreshold: 6 << 20, partSize: 5 << 20,
                retry: .init(attempts: 4, baseDelay: 0.05, maxDelay: 0.2)
            ))
    }

    /// A file of `size` random bytes, read from /dev/urandom: made one by one, 12 MB took a debug
    /// build seconds on a cooperative thread (two of these tests at once stalled every other test
    /// for 12 s).
    func file(size: Int, in folder: URL) throws -> URL {
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? random.close() }
        let data = try random.read(upToCount: size) ?? Data()
        guard data.count == size else { throw TestSupportError("read \(data.count) of \(size) random bytes") }
        let url = folder.appendingPathComponent("source-\(size).bin")
        try data.write(to: url)
        return url
    }

    /// The sweep's view of the bucket: every page of ListObjectsV2 (three keys a page here), keys
    /// without the bucket prefix, sizes and times; HEAD of one object; the upload's own hash.
    @Test func listingWalksEveryPageAndUploadsHashWhatTheySent() async throws {
        let location = try S3Location(
            url: "s3://\(server.bucket)/\(prefix)?endpoint=\(server.endpoint)&region=\(server.region)")
        let storage = S3Storage(
            location: location,
            credentials: S3Credentials(accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey),
            publicBase: nil, tuning: .init(listPageSize: 3))
        let source = URL(fileURLWithPath: Fixtures.path("no_audio.mp4"))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: source.path)[.size] as? Int64)
        let before = Date().addingTimeInterval(-60)
        let keys = (1...7).map { "media-worker/jobs/\($0)/run/video one.mp4" }.sorted()
        for key in keys {
            let sent = try await storage.upload(source, key: key, contentType: "video/mp4")
            #expect(sent == Transferred(bytes: size, sha256: try sha256Hex(source)))
        }
        try await storage.upload(source, key: "media-worker/other.mp4", contentType: "video/mp4")
        let listed = try await storage.list(prefix: "media-worker/jobs/")
        #expect(listed.map(\.key) == keys)
        #expect(listed.allSatisfy { $0.bytes == size && $0.modified > before && $0.modified < Date() + 60 })
        #expect(
            try await server.requests(containing: "GET /\(server.bucket)?").filter { $0.contains(prefix) }.count == 3)
        #expect(try await storage.object(at: keys[0])?.bytes == size)
        #expect(try await storage.object(at: "media-worker/jobs/9/run/none.mp4") == nil)
        #expect(try await storage.list(prefix: "media-worker/nothing/").isEmpty)
    }

    @Test func smallObjectRoundTripWithContentType() async throws {
        let folder = try Fixtures.temporaryDirectory("s3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = try storage()
        let source = URL(fileURLWithPath: Fixtures.path("no_audio.mp4"))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: source.path)[.size] as? Int64)
        try await storage.upload(source, key: "jobs/1/video.mp4", contentType: "video/mp4")
        #expect(try await storage.info(key: "jobs/1/video.mp4") == .init(size: size, contentType: "video/mp4"))
        let copy = folder.appendingPathComponent("copy.mp4")
        try await storage.download(key: "jobs/1/video.mp4", to: copy, expectedSize: size)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: source))
        #expect(try await server.requests(containing: "PUT /\(server.bucket)/\(prefix)/jobs/1/video.mp4").count == 1)
        await #expect(throws: StorageError.sizeMismatch(key: "jobs/1/video.mp4", expected: size + 1, actual: size)) {
            try await storage.download(key: "jobs/1/video.mp4", to: copy, expectedSize: size + 1)
        }
        try await storage.delete(key: "jobs/1/video.mp4")
        await #expect(throws: StorageError.notFound(key: "jobs/1/video.mp4")) {
            try await storage.download(key: "jobs/1/video.mp4", to: copy, expectedSize: nil)
        }
    }

    /// moto's own signature check refuses keys with `+ $ ( )` or non-ASCII letters even from boto3
    /// (it canonicalises the decoded path), so those are covered by the published PUT example
    /// (`test$file.text`) and the encoding test; a space is the case moto gets right.
    @Test func keysWithSpacesAreSignedRight() async throws {
        let folder = try Fixtures.temporaryDirectory("s3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = try storage()
        let source = try file(size: 1000, in: folder)
        let key = "uploads/summer in Paris/clip 1.mov"
        try await storage.upload(source, key: key, contentType: "video/quicktime")
        let copy = folder.appendingPathComponent("copy")
        try await storage.download(key: key, to: copy, expectedSize: 1000)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: source))
    }

    @Test func largeObjectGoesUpInParts() async throws {
        let folder = try Fixtures.temporaryDirectory("s3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = try storage()
        let source = try file(size: 12 << 20, in: folder)
        let sent = try await storage.upload(source, key: "big.mp4", contentType: "video/mp4")
        #expect(sent.sha256 == (try sha256Hex(source)))
        let object = "/\(server.bucket)/\(prefix)/big.mp4"
        #expect(try await server.requests(containing: "POST \(object)?uploads").count == 1)
        #expect(try await server.requests(containing: "PUT \(object)?partNumber=").count == 3)
        #expect(try await storage.info(key: "big.mp4") == .init(size: 12 << 20, contentType: "video/mp4"))
        let copy = folder.appendingPathComponent("copy")
        try await storage.download(key: "big.mp4", to: copy, expectedSize: 12 << 20)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: source))
    }

    @Test func failedMultipartUploadIsAborted() async throws {
        let folder = try Fixtures.temporaryDirectory("s3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = try storage()
        let source = try file(size: 12 << 20, in: folder)
        let object = "/\(server.bucket)/\(prefix)/aborted.mp4"
        try await server.inject(.status(400, code: "InvalidPart"), match: "PUT \(object)?partNumber=2")
        await #expect(throws: StorageError.self) {
            try await storage.upload(source, key: "aborted.mp4", contentType: "video/mp4")
        }
        #expect(try await server.requests(containing: "PUT \(object)?partNumber=2").count == 1)  // 400: no retry
        #expect(try await server.requests(containing: "DELETE \(object)?uploadId=").count == 1)
        await #expect(throws: StorageError.notFound(key: "aborted.mp4")) { try await storage.info(key: "aborted.mp4") }
    }

    @Test func downloadCutMidwayResumes() async throws {
        let folder = try Fixtures.temporaryDirectory("s3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = try storage()
        let source = try file(size: 3 << 20, in: folder)
        try await storage.upload(source, key: "cut.mp4", contentType: "video/mp4")
        let object = "GET /\(server.bucket)/\(prefix)/cut.mp4"
        try await server.inject(.cut(after: 1 << 20), match: object, times: 2)
        let copy = folder.appendingPathComponent("copy")
        try await storage.download(key: "cut.mp4", to: copy, expectedSize: 3 << 20)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: source))
        let attempts = try await server.requests(containing: object)
        #expect(attempts.count == 3)
        // The second and third attempts resume where the previous one broke off.
        #expect(attempts.dropFirst().allSatisfy { $0.contains("range=bytes=") && !$0.contains("range=bytes=0-") })
    }

    @Test func retriesSlowDownAndServerErrors() async throws {
        let folder = try Fixtures.temporaryDirectory("s3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = try storage()
        let source = try file(size: 1000, in: folder)
        let object = "PUT /\(server.bucket)/\(prefix)/busy.jpg"
        try await server.inject(.status(503, code: "SlowDown"), match: object)
        try await server.inject(.status(500, code: "InternalError"), match: object)
        try await storage.upload(source, key: "busy.jpg", contentType: "image/jpeg")
        #expect(try await server.requests(containing: object).count == 3)
        #expect(try await storage.info(key: "busy.jpg").contentType == "image/jpeg")
    }

    @Test func clientErrorsAreNotRetried() async throws {
        let folder = try Fixtures.temporaryDirectory("s3")
        defer { try? FileManager.default.removeItem(at: folder) }
        let storage = try storage()
        let source = try file(size: 1000, in: folder)
        let object = "PUT /\(server.bucket)/\(prefix)/denied.jpg"
        try await server.inject(.status(403, code: "AccessDenied"), match: object, times: 5)
        do {
            try await storage.upload(source, key: "denied.jpg", contentType: "image/jpeg")
            Issue.record("the upload should have failed")
        } catch {
            #expect("\(error)".contains("access denied"))
        }
        #expect(try await server.requests(containing: object).count == 1)
    }

    @Test func checkSaysWhatIsWrong() async throws {
        try await storage().check()
        let cases: [(S3Storage, String)] = [
            (try storage(secret: "wrong-secret"), "AWS_SECRET_ACCESS_KEY"),
            (try storage(accessKey: "AKIANOTAKEY000000000"), "AWS_ACCESS_KEY_ID"),
            (try storage(bucket: "no-such-bucket-here"), "bucket does not exist"),
        ]
        for (storage, words) in cases {
            do {
                try await storage.check()
                Issue.record("check passed with a broken setting (\(words))")
            } catch {
                #expect("\(error)".contains(words), "\(error)")
                #expect(!"\(error)".contains(server.secretAccessKey))
            }
        }
    }

    @Test func publicURLs() throws {
        let direct = try storage()
        #expect(
            direct.publicURL(for: "media-worker/jobs/7/poster.jpg")
                == "\(server.endpoint)/\(server.bucket)/\(prefix)/media-worker/jobs/7/poster.jpg")
        let cdn = try storage(publicBase: "https://cdn.example.com/")
        #expect(cdn.publicURL(for: "a b.jpg") == "https://cdn.example.com/\(prefix)/a%20b.jpg")
        let aws = S3Storage(
            location: try S3Location(url: "s3://media-bucket/out?region=eu-west-1"),
            credentials: S3Credentials(accessKeyId: "a", secretAccessKey: "b"), publicBase: nil)
        #expect(aws.publicURL(for: "x.mp4") == "https://media-bucket.s3.eu-west-1.amazonaws.com/out/x.mp4")
    }
}

@Suite("S3Location parsing")
struct S3LocationRules {
    @Test func customEndpointDefaultsToPathStyle() throws {
        let location = try S3Location(url: "s3://media/uploads/v1/?endpoint=http://127.0.0.1:9000&region=eu-west-3")
        #expect(location.bucket == "media")
        #expect(location.prefix == "uploads/v1")
        #expect(location.region == "eu-west-3")
        #expect(location.pathStyle)
        #expect(location.address(of: "uploads/v1/a.mp4") == ("127.0.0.1:9000", "/media/uploads/v1/a.mp4"))
    }

    @Test func awsDefaultsToVirtualHostsAndTheEnvironmentRegion() throws {
        let location = try S3Location(url: "s3://media", environment: ["AWS_REGION": "ap-south-1"])
        #expect(!location.pathStyle)
        #expect(location.address(of: "a.mp4") == ("media.s3.ap-south-1.amazonaws.com", "/a.mp4"))
        let forced = try S3Location(url: "s3://media?pathStyle=true&region=us-west-2")
        #expect(forced.address(of: "a.mp4") == ("s3.us-west-2.amazonaws.com", "/media/a.mp4"))
    }

    @Test(arguments: [
        "s3://", "s3://UPPER", "s3://a", "file:///tmp", "s3://bucket?endpoint=ftp://x", "s3://bucket?foo=1",
        "s3://key:secret@bucket", "s3://bucket?pathStyle=maybe", "s3://bucket?region=EU%20West",
    ])
    func refusesMalformedURLs(_ url: String) {
        #expect(throws: S3LocationError.self) { try S3Location(url: url) }
    }
}

/// What the store's error documents turn into: plain words saying what to fix.
@Suite("S3 errors in plain words")
struct S3FailureRules {
    @Test func wrongRegionNamesTheBucketsRegion() {
        let failure = S3Failure(
            status: 301,
            document: """
                <?xml version="1.0" encoding="UTF-8"?>
                <Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be \
                addressed using the specified endpoint.</Message><Endpoint>media.s3.eu-west-1.amazonaws.com</Endpoint></Error>
                """, headers: ["x-amz-bucket-region": "eu-west-1"])
        #expect("\(failure)".contains("wrong region"))
        #expect("\(failure)".contains("set region=eu-west-1 in MEDIA_STORAGE_URL"))
        #expect(!failure.isRetryable)
    }

    @Test func authorizationHeaderMalformedCarriesTheRegionInTheDocument() {
        let failure = S3Failure(
            status: 400,
            document: "<Error><Code>AuthorizationHeaderMalformed</Code><Region>ap-south-1</Region></Error>",
            headers: [:])
        #expect("\(failure)".contains("the bucket is in ap-south-1"))
    }

    @Test(arguments: [
        (503, "SlowDown", true), (500, "InternalError", true), (429, "HTTP429", true), (400, "RequestTimeout", true),
        (403, "AccessDenied", false), (404, "NoSuchKey", false), (400, "InvalidArgument", false),
    ])
    func retriesOnlyWhatMayPass(status: Int, code: String, retryable: Bool) {
        let failure = S3Failure(status: status, document: "<Error><Code>\(code)</Code></Error>", headers: [:])
        #expect(failure.isRetryable == retryable)
    }

    @Test func entitiesInElementsAreDecoded() {
        #expect(S3Failure.element("UploadId", in: "<UploadId>a&amp;b&lt;c</UploadId>") == "a&b<c")
        #expect(S3Failure.element("Code", in: "<Error></Error>") == nil)
    }
}
