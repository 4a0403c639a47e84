import Foundation
import Queue
import TestSupport
import Testing

/// Variant work of popular videos in media-worker's own table: queued once by the reuse that
/// reaches the threshold however many workers count at once, claimed only when no job is runnable,
/// fenced by its token, given back without counting an attempt.
@Suite("Variant work of popular videos")
struct VariantWorkTests {
    let store = JobStore()
    let key = JobStore.ReuseKey(
        sha256: "ab12", processingType: .compression, qualityProfile: .medium, pipelineVersion: 3)

    @Test func queuedExactlyOnceAcrossWorkers() async throws {
        let url = try await TestDatabase.create()
        let (store, key) = (store, key)
        // Three workers, three forwards each, all at once.
        let queued = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<3 {
                group.addTask {
                    let connection = PostgresConnection(url: url, label: "w\(worker)", logger: .init(label: "test"))
                    var queued = 0
                    for _ in 0..<3 {
                        if try await connection.withSession(
                            "count", { try store.countReuse($0, key: key, jobId: 7, threshold: 3) })
                        {
                            queued += 1
                        }
                    }
                    await connection.close()
                    return queued
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(queued == 1)
        let row = try #require(
            try await TestDatabase.query(url, "SELECT \"status\", \"reuses\" FROM media_worker_variants").first)
        #expect(try row.text("status") == "PENDING" && row.decode("reuses", as: Int.self) == 9)
    }

    @Test func claimedOnlyWhenNoJobIsRunnableAndFenced() async throws {
        let url = try await TestDatabase.create()
        let (store, key) = (store, key)
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        defer { Task { await connection.close() } }
        #expect(
            try await connection.withSession("count") { try store.countReuse($0, key: key, jobId: 7, threshold: 1) })
        let claim = {
            try await connection.withSession("claim") {
                try store.claimVariantWork(
                    $0, pipelineVersion: 3, staleAfter: 60, uploadWait: 3600, hasPausedTable: true)
            }
        }
        // A chat job waiting: the variant waits.
        let job = try await insertJob(url, type: .compression)
        #expect(try await claim() == nil)
        #expect(
            try await connection.withSession("look") {
                try store.hasRunnableJob($0, uploadWait: 3600, hasPausedTable: true, needingAnEncodeSlot: true)
            })
        try await TestDatabase.query(
            url, "UPDATE video_processing SET \"status\" = 'COMPLETED' WHERE id = $1", [String(job)])
        // Another pipeline's work is never served.
        #expect(
            try await connection.withSession("claim") {
                try store.claimVariantWork(
                    $0, pipelineVersion: 4, staleAfter: 60, uploadWait: 3600, hasPausedTable: true)
            } == nil)
        let work = try #require(try await claim())
        #expect(work.key == key && work.jobId == 7 && work.attempt == 1)
        #expect(try await claim() == nil)  // taken
        #expect(try await connection.withSession("beat") { try store.keepVariantWorkAlive($0, work) })
        // Given back: queued again, the attempt not counted; the old claim is fenced off.
        try await connection.withSession("release") { try store.releaseVariantWork($0, work) }
        let again = try #require(try await claim())
        #expect(again.attempt == 1 && again.token != work.token)
        #expect(try await connection.withSession("beat") { try store.keepVariantWorkAlive($0, work) } == false)
        // A worker that stops heartbeating loses it to the next claim.
        try await TestDatabase.query(
            url, "UPDATE media_worker_variants SET \"updatedAt\" = \"updatedAt\" - interval '2 minutes'")
        let rescued = try #require(try await claim())
        #expect(rescued.attempt == 2 && rescued.token != again.token)
    }
}
