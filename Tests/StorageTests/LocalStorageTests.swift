import Foundation
import TestSupport
import Testing

@testable import Storage

@Suite("LocalStorage")
struct LocalStorageTests {
    @Test(arguments: ["../etc/passwd", "a/../../b", "/etc/passwd", "a\0b", "", "a//b", "./a"])
    func refusesKeysThatEscape(_ key: String) async throws {
        let root = try Fixtures.temporaryDirectory("storage")
        defer { try? FileManager.default.removeItem(at: root) }
        let storage = LocalStorage(root: root, publicBase: nil)
        await #expect(throws: StorageError.self) {
            try await storage.upload(
                URL(fileURLWithPath: Fixtures.path("no_audio.mp4")), key: key, contentType: "video/mp4")
        }
    }

    @Test func roundTripsAndChecksSize() async throws {
        let root = try Fixtures.temporaryDirectory("storage")
        defer { try? FileManager.default.removeItem(at: root) }
        let storage = LocalStorage(root: root, publicBase: "https://cdn.example/media/")
        let source = URL(fileURLWithPath: Fixtures.path("no_audio.mp4"))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: source.path)[.size] as? Int64)
        try await storage.upload(source, key: "a/b/video.mp4", contentType: "video/mp4")
        #expect(storage.publicURL(for: "a/b/video.mp4") == "https://cdn.example/media/a/b/video.mp4")
        let copy = root.appendingPathComponent("copy.mp4")
        try await storage.download(key: "a/b/video.mp4", to: copy, expectedSize: size)
        #expect(try Data(contentsOf: copy) == Data(contentsOf: source))
        await #expect(throws: StorageError.sizeMismatch(key: "a/b/video.mp4", expected: size + 1, actual: size)) {
            try await storage.download(key: "a/b/video.mp4", to: copy, expectedSize: size + 1)
        }
        await #expect(throws: StorageError.notFound(key: "missing.mp4")) {
            try await storage.download(key: "missing.mp4", to: copy, expectedSize: nil)
        }
    }

    /// The sweep's view of a folder: regular files under the prefix, in key order, with sizes
    /// and times; a symbolic link (to a file or a folder outside) is never listed nor followed.
    @Test func listsWhatIsUnderAPrefixWithoutFollowingLinks() async throws {
        let root = try Fixtures.temporaryDirectory("storage")
        let outside = try Fixtures.temporaryDirectory("outside")
        defer {
            try? FileManager.default.removeItem(at: root)
            try? FileManager.default.removeItem(at: outside)
        }
        let storage = LocalStorage(root: root, publicBase: nil)
        let source = URL(fileURLWithPath: Fixtures.path("no_audio.mp4"))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: source.path)[.size] as? Int64)
        let keys = [
            "media-worker/jobs/1/r1/video.mp4", "media-worker/jobs/1/r1/poster.jpg", "media-worker/jobs/12/a.mp4",
        ]
        for key in keys {
            let sent = try await storage.upload(source, key: key, contentType: "video/mp4")
            #expect(sent == Transferred(bytes: size, sha256: try sha256Hex(source)))
        }
        try await storage.upload(source, key: "media-worker/other.mp4", contentType: "video/mp4")
        try Data("secret".utf8).write(to: outside.appendingPathComponent("secret.txt"))
        try FileManager.default.createSymbolicLink(
            at: root.appendingPathComponent("media-worker/jobs/2"), withDestinationURL: outside)
        try FileManager.default.createSymbolicLink(
            at: root.appendingPathComponent("media-worker/jobs/1/r1/link.txt"),
            withDestinationURL: outside.appendingPathComponent("secret.txt"))
        let listed = try await storage.list(prefix: "media-worker/jobs/")
        #expect(listed.map(\.key) == keys.sorted())
        #expect(listed.allSatisfy { $0.bytes == size && abs($0.modified.timeIntervalSinceNow) < 60 })
        #expect(try await storage.list(prefix: "media-worker/jobs/1/").count == 2)
        #expect(try await storage.list(prefix: "media-worker/jobs/1").count == 3)
        #expect(try await storage.list(prefix: "nothing/here/").isEmpty)
        #expect(try await storage.object(at: keys[0])?.bytes == size)
        #expect(try await storage.object(at: "media-worker/jobs/1/r1/link.txt") == nil)
        #expect(try await storage.object(at: "media-worker/jobs/9/none.mp4") == nil)
    }

    /// A key naming a folder is a wrong key (the job's input is unreadable, at once), not a storage
    /// failure worth three attempts.
    @Test func folderKeyIsAnInvalidKey() async throws {
        let root = try Fixtures.temporaryDirectory("storage")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("uploads/folder.mp4"), withIntermediateDirectories: true)
        let storage = LocalStorage(root: root, publicBase: nil)
        let copy = root.appendingPathComponent("copy.mp4")
        let error = await #expect(throws: StorageError.self) {
            try await storage.download(key: "uploads/folder.mp4", to: copy, expectedSize: nil)
        }
        guard case .invalidKey = error else {
            Issue.record("\(String(describing: error)) is not invalidKey")
            return
        }
    }
}

@Suite("LocalStorage and symbolic links")
struct LocalStorageLinkTests {
    /// A link planted in the storage folder (by another tenant, a bad deploy) must not let a key
    /// read or write outside it.
    @Test func symbolicLinksAreNeverFollowed() async throws {
        let root = try Fixtures.temporaryDirectory("storage")
        let outside = try Fixtures.temporaryDirectory("outside")
        let secret = outside.appendingPathComponent("secret.mp4")
        try FileManager.default.copyItem(atPath: Fixtures.path("no_audio.mp4"), toPath: secret.path)
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("escape").path, withDestinationPath: outside.path)
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("uploads"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("uploads/link.mp4").path, withDestinationPath: secret.path)
        let storage = LocalStorage(root: root, publicBase: nil)
        let copy = try Fixtures.temporaryDirectory("copy").appendingPathComponent("input.mp4")

        for key in ["escape/secret.mp4", "uploads/link.mp4"] {
            await #expect(throws: StorageError.self, "\(key)") {
                try await storage.download(key: key, to: copy, expectedSize: nil)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: copy.path))
        await #expect(throws: StorageError.self) {
            try await storage.upload(
                URL(fileURLWithPath: Fixtures.path("vfr.mp4")), key: "escape/new.mp4", contentType: "video/mp4")
        }
        #expect(!FileManager.default.fileExists(atPath: outside.appendingPathComponent("new.mp4").path))
        // Replacing a key that is a link replaces the link, not the file it points at.
        try await storage.upload(
            URL(fileURLWithPath: Fixtures.path("vfr.mp4")), key: "uploads/link.mp4", contentType: "video/mp4")
        #expect(try Data(contentsOf: secret) == Data(contentsOf: URL(fileURLWithPath: Fixtures.path("no_audio.mp4"))))
    }
}
