import Foundation
import Media
import Queue
import Storage
import TestSupport
import Testing

@testable import Worker

extension InProcessWorker {
    /// Every object under media-worker's prefix in the storage folder.
    func storedKeys() async throws -> Set<String> {
        Set(try await configuration.makeStorage().list(prefix: OutputKeys.prefix).map(\.key))
    }

    /// Soft-deletes job `id`'s upload, as the app does.
    func deleteUpload(ofJob id: Int) async throws {
        try await TestDatabase.query(
            databaseURL,
            """
            UPDATE file_upload SET "deletedAt" = now() AT TIME ZONE 'utc'
            WHERE id = (SELECT "fileUploadId" FROM video_processing WHERE id = $1)
            """, [String(id)])
    }

    /// Waits (up to two minutes) until every job of `ids` is COMPLETED.
    func completed(_ ids: [Int]) async throws -> Bool {
        try await eventually(timeout: 120) {
            for id in ids where try await row(id).text("status") != JobStatus.completed.rawValue { return false }
            return true
        }
    }

    /// Job `id`'s upload row: `thumbnailUrl` and `metadata`.
    func upload(of id: Int) async throws -> PostgresRow {
        try #require(
            try await TestDatabase.query(
                databaseURL,
                """
                SELECT fu."thumbnailUrl" AS poster, fu."metadata"::text AS metadata FROM file_upload fu
                JOIN video_processing vp ON vp."fileUploadId" = fu.id WHERE vp.id = $1
                """, [String(id)]
            ).first)
    }
}

/// A person who deletes a video in the chat expects it, and everything made from it, to go:
/// erasure within `MEDIA_WORKER_ERASE_AFTER` (0 here: the next sweep), a running job of a deleted
/// upload stopped, no reuse of a deleted upload's outputs, and bytes shared with a live forward kept
/// for that forward.
@Suite("Erasure of deleted uploads", .heavy)
struct ErasureTests {
    /// The upload is deleted while its video is being made: the run stops at its next heartbeat,
    /// ends CANCELLED and writes nothing more; the sweep then removes the stills it had published
    /// and the rows stop naming them.
    @Test func uploadDeletedMidRunStopsTheRunAndIsErased() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_ERASE_AFTER": "0"])
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .fullProcessing)
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            _ = await events.next { $0 == .run(id, .stillsPublished) }
            _ = await events.next { if case .run(id, .progress(let fraction)) = $0 { fraction > 0.1 } else { false } }
            #expect(try await worker.storedKeys().count == 2)
            try await worker.deleteUpload(ofJob: id)
            #expect(await events.ending(of: id) == .cancelled)
            #expect(
                try await eventually(timeout: 20) {
                    let named = storageKeys(try await worker.row(id).text("keys"))
                    return try await worker.storedKeys().isEmpty && named.isEmpty
                })
        }
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.cancelled.rawValue)
        #expect(
            try row.text("error")?.hasPrefix("cancelled: the upload was deleted while it was being processed") == true)
        let events = try await worker.logEvents(id)
        // The sweep may erase before the run notices, or after: either way, once each.
        #expect(Set(events.suffix(2)) == ["cancelled", "erased"] && !events.contains("completed"), "\(events)")
        let upload = try await worker.upload(of: id)
        #expect(try upload.text("poster") == nil)
        let metadata = try #require(try decodedJSON(upload.text("metadata"), as: [String: Any].self))
        #expect(metadata["video"] == nil && metadata["variants"] == nil && metadata["erasedAt"] != nil)
        #expect((metadata["processing"] as? [String: Any])?["status"] as? String == "CANCELLED")
    }

    /// A forward shares the first upload's objects (N forwards store the bytes once). Deleting the
    /// first upload erases its row's side but keeps the shared bytes for the live forward; deleting
    /// the forward too removes them. A new upload of the same bytes is then made afresh, never
    /// served a deleted upload's outputs.
    @Test func sharedBytesStayWithTheLiveForwardAndDeletedOnesAreNeverReused() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_ERASE_AFTER": "0"])
        let first = try await worker.enqueue("vp9_opus.webm", type: .compression)
        let forwards = [
            try await worker.enqueue("vp9_opus.webm", type: .compression, user: 2),
            try await worker.enqueue("vp9_opus.webm", type: .compression, user: 3),
        ]
        var fresh = 0
        try await worker.serve { _, _ in
            #expect(try await worker.completed([first] + forwards))
            let keys = storageKeys(try await worker.row(first).text("keys"))
            let forwarded = storageKeys(try await worker.row(forwards[1]).text("keys"))
            #expect(keys.count == 1 && forwarded == keys)
            // Three uploads, one set of bytes.
            #expect(try await worker.storedKeys() == Set(keys.values))

            try await worker.deleteUpload(ofJob: first)
            #expect(try await eventually(timeout: 20) { (try await worker.logEvents(first)).last == "erased" })
            let erased = storageKeys(try await worker.row(first).text("keys"))
            #expect(erased.isEmpty)
            #expect(try await worker.storedKeys() == Set(keys.values), "shared with live forwards")
            #expect(try await worker.outputFiles(ofJob: forwards[0])["video"] != nil)

            for id in forwards { try await worker.deleteUpload(ofJob: id) }
            #expect(try await eventually(timeout: 20) { try await worker.storedKeys().isEmpty })
            let kept = try await TestDatabase.query(worker.databaseURL, "SELECT 1 FROM media_worker_outputs").all
            #expect(kept.isEmpty)

            fresh = try await worker.enqueue("vp9_opus.webm", type: .compression, user: 4)
            #expect(try await worker.completed([fresh]))
            #expect(!(try await worker.logEvents(fresh)).contains("reused"))
        }
        let made = storageKeys(try await worker.row(fresh).text("keys"))
        #expect(endsInRunKey(made["video"], job: fresh, file: "video.mp4"))
        #expect(try await worker.storedKeys() == Set(made.values))
    }

    /// The app deletes a job row outright: no row names its objects any more, and the sweep
    /// removes them (an erasure: at once, not after the grace period).
    @Test func deletedJobRowsLeaveNothing() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_ERASE_AFTER": "0"])
        let kept = try await worker.enqueue("portrait_rot90.mp4", type: .thumbnail)
        let gone = try await worker.enqueue("no_audio.mp4", type: .thumbnail, user: 2)
        try await worker.serve { _, _ in
            #expect(try await worker.completed([kept, gone]))
            let keys = storageKeys(try await worker.row(kept).text("keys"))
            #expect(try await worker.storedKeys().count == 4)
            try await TestDatabase.query(
                worker.databaseURL, "DELETE FROM video_processing WHERE id = $1", [String(gone)])
            #expect(try await eventually(timeout: 20) { try await worker.storedKeys() == Set(keys.values) })
        }
    }
}
