import Foundation
import Media
import Queue
import TestSupport
import Testing
import Worker

/// A video forwarded often enough gets its AV1 variant as background work: made once, in a slot
/// no job wants, given back the moment a job needs it, and then served with every reuse.
@Suite("Variants of popular videos", .heavy)
struct PopularVariantTests {
    @Test func popularVideoGetsItsVariantWithoutDelayingChat() async throws {
        let worker = try await InProcessWorker.make(["MEDIA_WORKER_VARIANT_AFTER_REUSES": "2"])
        let first = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        #expect(try await worker.serveUntilFinished(first).contains(.finished(first, .completed)))
        var seen: [WorkerEvent] = []
        var chat = 0
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            for _ in 0..<2 {
                let forward = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
                while let event = await events.next() {
                    seen.append(event)
                    if event == .finished(forward, .completed) { break }
                }
            }
            // The second forward made it popular: the variant starts in the idle encode slot, and
            // a chat upload that needs the slot takes it back at once.
            while let event = await events.next() {
                seen.append(event)
                if event == .variantStarted(first) { break }
            }
            chat = try await worker.enqueue("portrait_rot180.mp4", type: .compression, user: 2)
            while let event = await events.next() {
                seen.append(event)
                if event == .variantEnded(first, .completed) { break }
            }
        }
        let order = { (event: WorkerEvent) in seen.firstIndex(of: event) ?? Int.max }
        #expect(order(.variantEnded(first, .released)) < order(.claimed(chat, .encode)), "\(seen)")
        #expect(order(.finished(chat, .completed)) < order(.variantEnded(first, .completed)))
        #expect(seen.filter { if case .variantStarted = $0 { true } else { false } }.count == 2)

        // The variant is in the source job's row, in every upload of those bytes, and in the kept
        // result: the next forward gets it too.
        let outputs = try await worker.outputFiles(ofJob: first)
        let variant = try #require(outputs["video_av1"])
        #expect(variant.count < (try #require(outputs["video"])).count)
        let uploads = try await TestDatabase.query(
            worker.databaseURL,
            """
            SELECT fu."metadata"::text AS m FROM file_upload fu JOIN video_processing vp ON vp."fileUploadId" = fu."id"
            WHERE vp."id" <> $1
            """, [String(chat)])
        #expect(uploads.all.count == 3)
        for upload in uploads.all {
            let metadata = try #require(try decodedJSON(upload.text("m"), as: [String: Any].self))
            let variants = try #require(metadata["variants"] as? [String: [String: Any]])
            #expect(variants["video_av1"]?["mimeType"] as? String == "video/mp4")
        }
        let later = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        #expect(try await worker.serveUntilFinished(later).contains(.finished(later, .completed)))
        #expect(try await worker.outputFiles(ofJob: later)["video_av1"] == variant)
        let work = try #require(
            try await TestDatabase.query(worker.databaseURL, "SELECT \"status\", \"reuses\" FROM media_worker_variants")
                .first)
        #expect(try work.text("status") == "COMPLETED" && work.decode("reuses", as: Int.self) == 3)
    }
}
