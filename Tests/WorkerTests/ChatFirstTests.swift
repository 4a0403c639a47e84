import Foundation
import Media
import Queue
import Storage
import TestSupport
import Testing

@testable import Worker

extension InProcessWorker {
    /// The upload row of job `id`: its `thumbnailUrl` and `metadata`.
    func upload(ofJob id: Int) async throws -> PostgresRow {
        try #require(
            try await TestDatabase.query(
                databaseURL,
                """
                SELECT fu."thumbnailUrl" AS poster, fu."metadata"::text AS metadata FROM file_upload fu
                JOIN video_processing vp ON vp."fileUploadId" = fu."id" WHERE vp."id" = $1
                """, [String(id)]
            ).first)
    }

    /// The stored output files of job `id`, by role.
    func outputFiles(ofJob id: Int) async throws -> [String: Data] {
        let keys = try decodedJSON(try await row(id).text("keys"), as: [String: String].self) ?? [:]
        let storage = URL(string: configuration.storageURL)!.path
        return try keys.mapValues { try Data(contentsOf: URL(fileURLWithPath: storage).appendingPathComponent($0)) }
    }

    /// Runs the job to its end in a service (on `storage`, by default the configured one) and
    /// returns what the service said of it.
    func serveUntilFinished(_ id: Int, storage: (any Storage)? = nil) async throws -> [WorkerEvent] {
        var seen: [WorkerEvent] = []
        try await serve(storage: storage) { service, _ in
            for await event in service.events {
                seen.append(event)
                if case .finished(id, _) = event { break }
            }
        }
        return seen
    }
}

@Suite("Chat first: stills within a second, forwarded videos for free", .heavy)
struct ChatFirstTests {
    /// The stills land in the job and upload rows while the child is still encoding, and the
    /// final write keeps them and adds the rest.
    @Test func stillsArePublishedWhileTheVideoIsMade() async throws {
        let worker = try await InProcessWorker.make()
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .fullProcessing)
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            _ = await events.next { $0 == .run(id, .stillsPublished) }
            // Now: PROCESSING, and the bubble already has its picture.
            let row = try await worker.row(id)
            #expect(try row.text("status") == JobStatus.processing.rawValue)
            let upload = try await worker.upload(ofJob: id)
            #expect(endsInRunKey(try upload.text("poster"), job: id, file: "poster.jpg"))
            let metadata = try #require(try decodedJSON(upload.text("metadata"), as: [String: Any].self))
            let video = try #require(metadata["video"] as? [String: Any])
            #expect((video["blurhash"] as? String)?.count == 28 && video["width"] as? Int == 1280)
            #expect((metadata["processing"] as? [String: Any])?["status"] as? String == "PROCESSING")
            #expect(await events.ending(of: id) == .completed)
        }
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.completed.rawValue)
        let keys = try decodedJSON(row.text("keys"), as: [String: String].self)
        #expect(Set(keys?.keys.map { $0 } ?? []) == Set(fullProcessingRoles(hevcUpload: true).map(\.rawValue)))
        let logs = try #require(try decodedJSON(row.text("logs"), as: [[String: Any]].self))
        #expect(logs.compactMap { $0["event"] as? String } == ["claimed", "stills", "completed"])
    }

    /// The app cancels after the stills were published: the run stops and writes nothing more.
    @Test func cancelAfterTheStillsLeavesTheRowAsTheAppSetIt() async throws {
        let worker = try await InProcessWorker.make()
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .fullProcessing)
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            _ = await events.next { $0 == .run(id, .stillsPublished) }
            try await TestDatabase.query(
                worker.databaseURL, "UPDATE video_processing SET \"status\" = 'CANCELLED' WHERE id = $1", [String(id)])
            #expect(await events.ending(of: id) == .cancelled)
        }
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.cancelled.rawValue)
        let keys = try decodedJSON(row.text("keys"), as: [String: String].self)
        #expect(Set(keys?.keys.map { $0 } ?? []) == ["poster", "thumbnail"])
    }

    /// A forwarded clip (another upload of the same bytes) completes from the first one's outputs:
    /// byte-equal copies under its own keys, no child started, nothing decoded.
    @Test func forwardedUploadReusesTheOutputs() async throws {
        let worker = try await InProcessWorker.make()
        let first = try await worker.enqueue("vp9_opus.webm", type: .fullProcessing)
        #expect(try await worker.serveUntilFinished(first).contains(.finished(first, .completed)))
        let forwarded = try await worker.enqueue("vp9_opus.webm", type: .fullProcessing)
        let events = try await worker.serveUntilFinished(forwarded)
        #expect(events.contains(.run(forwarded, .reused(from: first))))
        #expect(events.contains(.finished(forwarded, .completed)))
        #expect(!events.contains { if case .run(forwarded, .progress) = $0 { true } else { false } }, "a child ran")

        let original = try await worker.outputFiles(ofJob: first)
        let copies = try await worker.outputFiles(ofJob: forwarded)
        #expect(Set(copies.keys) == Set(fullProcessingRoles(hevcUpload: false).map(\.rawValue)) && copies == original)
        // Shared, not copied: the forward's row names the very objects of the first job.
        let row = try await worker.row(forwarded)
        let keys = storageKeys(try row.text("keys"))
        #expect(endsInRunKey(keys["video"], job: first, file: "video.mp4"))
        #expect(keys == storageKeys(try await worker.row(first).text("keys")))
        #expect((try row.text("logs") ?? "").contains(#""event":"reused""#))
        let metadata = try #require(
            try await TestDatabase.query(
                worker.databaseURL,
                "SELECT \"outputMetadata\"::text AS o, \"inputMetadata\"::text AS i FROM video_processing WHERE id = $1",
                [String(forwarded)]
            ).first)
        #expect((try metadata.text("o") ?? "").contains(#""reusedFrom":\#(first)"#))
        let sha = try sha256Hex(URL(fileURLWithPath: Fixtures.path("vp9_opus.webm")))
        #expect((try metadata.text("i") ?? "").contains(#""sha256":"\#(sha)""#))
    }

    /// An output of the first job deleted from the store: the forwarded one is made for real.
    @Test func deletedSourceOutputFallsBackToARealRun() async throws {
        let worker = try await InProcessWorker.make()
        let first = try await worker.enqueue("vp9_opus.webm", type: .compression)
        _ = try await worker.serveUntilFinished(first)
        let video = try #require(storageKeys(try await worker.row(first).text("keys"))["video"])
        try await worker.configuration.makeStorage().delete(key: video)
        let forwarded = try await worker.enqueue("vp9_opus.webm", type: .compression)
        let events = try await worker.serveUntilFinished(forwarded)
        #expect(events.contains(.finished(forwarded, .completed)))
        #expect(!events.contains(.run(forwarded, .reused(from: first))))
        #expect(events.contains { if case .run(forwarded, .progress) = $0 { true } else { false } })
        #expect(try await worker.outputFiles(ofJob: forwarded)["video"] != nil)
    }

    /// Outputs made by another pipeline version are never served.
    @Test func anotherPipelineVersionIsNotServedOldOutputs() async throws {
        var worker = try await InProcessWorker.make()
        let first = try await worker.enqueue("no_audio.mp4", type: .thumbnail)
        _ = try await worker.serveUntilFinished(first)
        worker.configuration.pipelineVersion += 1
        let forwarded = try await worker.enqueue("no_audio.mp4", type: .thumbnail)
        let events = try await worker.serveUntilFinished(forwarded)
        #expect(events.contains(.finished(forwarded, .completed)))
        #expect(!events.contains { if case .run(forwarded, .reused) = $0 { true } else { false } })
    }

    /// `MEDIA_WORKER_REUSE=off` makes every job.
    @Test func reuseCanBeTurnedOff() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_REUSE": "off"])
        let first = try await worker.enqueue("no_audio.mp4", type: .thumbnail)
        _ = try await worker.serveUntilFinished(first)
        let forwarded = try await worker.enqueue("no_audio.mp4", type: .thumbnail)
        let events = try await worker.serveUntilFinished(forwarded)
        #expect(events.contains(.finished(forwarded, .completed)))
        #expect(!events.contains { if case .run(forwarded, .reused) = $0 { true } else { false } })
    }
}

@Suite("Chat first: the same bytes twice at once, and what the app hears", .heavy)
struct ChatFirstConcurrencyTests {
    /// Two uploads of the same bytes claimed together (two slots): one makes the outputs while the
    /// other waits for it, heartbeating, then reuses them. Neither waits for ever.
    @Test func sameBytesAtOnceAreMadeOnce() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_CONCURRENCY": "2"])
        let a = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        let b = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        var seen: [WorkerEvent] = []
        try await worker.serve { service, _ in
            var finished = 0
            for await event in service.events {
                seen.append(event)
                if case .finished = event { finished += 1 }
                if finished == 2 { break }
            }
        }
        #expect(seen.contains(.finished(a, .completed)) && seen.contains(.finished(b, .completed)))
        let reuses = seen.filter { if case .run(_, .reused) = $0 { true } else { false } }
        #expect(reuses == [.run(b, .reused(from: a))] || reuses == [.run(a, .reused(from: b))], "\(reuses)")
    }

    /// `media_worker_events` carries the stills and progress, at most once per ten points.
    @Test func theAppHearsOfStillsAndProgress() async throws {
        let worker = try await InProcessWorker.make()
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .fullProcessing)
        let listener = PostgresConnection(url: worker.databaseURL, label: "app", logger: worker.logger)
        try await listener.withSession("listen") { try $0.listen(JobStore.eventsChannel) }
        let heard = NotificationLog()
        let listening = Task {
            while !Task.isCancelled {
                let received = try await listener.withSession("wait") {
                    try $0.waitForNotifications(timeout: .milliseconds(200))
                }
                for notification in received { heard.append(notification.payload) }
            }
        }
        _ = try await worker.serveUntilFinished(id)
        #expect(await eventually(timeout: 5) { heard.all.contains { $0.contains(#""status":"COMPLETED""#) } })
        listening.cancel()
        _ = try? await listening.value
        await listener.close()
        let payloads = heard.all.compactMap { try? decodedJSON($0, as: [String: Any].self) }.filter {
            $0["jobId"] as? Int == id
        }
        #expect(payloads.contains { $0["stage"] as? String == "stills" && $0["status"] as? String == "PROCESSING" })
        let progress = payloads.compactMap { $0["progress"] as? Int }
        #expect(!progress.isEmpty, "no progress announced")
        // Once per ten points at most: each announcement in a new band of ten.
        #expect(zip(progress, progress.dropFirst()).allSatisfy { $1 / 10 > $0 / 10 }, "\(progress)")
        #expect(payloads.last?["status"] as? String == "COMPLETED")
    }
}

/// Notification payloads, from the listening task.
final class NotificationLog: @unchecked Sendable {
    // @unchecked: `payloads` is only touched under `lock`.
    private let lock = NSLock()
    private var payloads: [String] = []

    func append(_ payload: String) { lock.withLock { payloads.append(payload) } }
    var all: [String] { lock.withLock { payloads } }
}
