import Foundation
import Queue
import TestSupport
import Testing
import Worker

/// A fleet's byte budget (`MEDIA_WORKER_MAX_BYTES_<PROFILE>`) on real jobs: the stored video fits
/// it, and a result kept from before the budget that does not fit is made again, not reused.
@Suite("Byte budgets on jobs", .heavy)
struct ByteBudgetJobTests {
    @Test func budgetIsMetAndOldResultsOverItAreNotReused() async throws {
        var worker = try await InProcessWorker.make()
        let first = try await worker.enqueue("landscape_1080p_h264_aac.mp4", type: .compression)
        #expect(try await worker.serveUntilFinished(first).contains(.finished(first, .completed)))
        let unbudgeted = try #require(try await worker.outputFiles(ofJob: first)["video"])
        #expect(unbudgeted.count > 200 << 10)

        worker.configuration.maxBytes = [.medium: 150 << 10]
        let second = try await worker.enqueue("landscape_1080p_h264_aac.mp4", type: .compression)
        let events = try await worker.serveUntilFinished(second)
        #expect(events.contains(.finished(second, .completed)))
        #expect(!events.contains(.run(second, .reused(from: first))), "served the result made before the budget")
        let video = try #require(try await worker.outputFiles(ofJob: second)["video"])
        #expect(video.count <= 150 << 10 && Double(video.count) >= 0.9 * Double(150 << 10), "\(video.count) bytes")
    }
}
