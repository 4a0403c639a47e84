import Foundation
import Queue
import TestSupport
import Testing

/// The pieces of a long video in media-worker's own table: recorded for one run of the job,
/// claimed in order (by the coordinator for its own job, by anyone otherwise) while that run holds
/// the job, fenced by the piece's token, taken again when stale, failed after three attempts.
@Suite("Pieces of long videos")
struct PieceClaimTests {
    let store = JobStore()

    struct Span: Codable, Sendable, Equatable { var start: Int }

    @Test func claimedInOrderFencedAndTakenAgain() async throws {
        let url = try await TestDatabase.create()
        let store = store
        _ = try await insertJob(url, type: .compression)
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        defer { Task { await connection.close() } }
        let job = try #require(
            try await connection.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 1)
            })
        let claim = { (jobId: Int?) in
            try await connection.withSession("claim a piece") {
                try store.claimPiece($0, ofJob: jobId, staleAfter: 60, worker: "h/2", as: Span.self)
            }
        }
        let state = {
            try await connection.withSession("state") { try store.piecesState($0, job: job, staleAfter: 60) }
        }
        #expect(try await claim(nil) == nil)
        #expect(
            try await connection.withSession("record") {
                try store.insertPieces($0, job: job, spans: [Span(start: 0), Span(start: 30)])
            })
        let first = try #require(try await claim(job.id))
        #expect(
            first.index == 0 && first.span == Span(start: 0) && first.attempt == 1
                && first.processingType == .compression)
        let second = try #require(try await claim(nil))
        #expect(second.index == 1)
        #expect(try await claim(nil) == nil)  // both taken
        #expect(try await connection.withSession("beat") { try store.keepPieceAlive($0, second, progress: 0.5) })
        #expect(try await connection.withSession("done") { try store.finishPiece($0, first, key: "k0") })
        let halfway = try await state()
        #expect(halfway.total == 2 && halfway.completed == 1 && halfway.progress == 1.5 && halfway.keys == ["k0"])
        #expect(halfway.failure == nil)
        // The second piece's worker stops heartbeating: a worker that runs it itself (its
        // heartbeat only late) leaves it; any other takes it again, and the old claim is fenced off.
        try await TestDatabase.query(
            url, "UPDATE media_worker_pieces SET \"updatedAt\" = \"updatedAt\" - interval '2 minutes'")
        #expect(
            try await connection.withSession("claim a piece") {
                try store.claimPiece(
                    $0, ofJob: nil, staleAfter: 60, worker: "h/2", sparing: [second.token], as: Span.self)
            } == nil)
        let again = try #require(try await claim(nil))
        #expect(again.index == 1 && again.attempt == 2 && again.token != second.token)
        #expect(try await connection.withSession("stale") { try store.finishPiece($0, second, key: "old") } == false)
        // Its third worker stops too: nobody will take it, so it counts as failed.
        try await TestDatabase.query(
            url, "UPDATE media_worker_pieces SET \"updatedAt\" = \"updatedAt\" - interval '2 minutes'")
        let third = try #require(try await claim(nil))
        #expect(third.attempt == 3)
        try await TestDatabase.query(
            url, "UPDATE media_worker_pieces SET \"updatedAt\" = \"updatedAt\" - interval '2 minutes'")
        #expect(try await claim(nil) == nil)
        #expect(try await state().failure == "its worker stopped on each of three attempts")
    }

    @Test func aPieceOfARunThatLostTheJobIsNotClaimed() async throws {
        let url = try await TestDatabase.create()
        let store = store
        let id = try await insertJob(url, type: .compression)
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        defer { Task { await connection.close() } }
        let job = try #require(
            try await connection.withSession("claim") {
                try store.claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 1)
            })
        #expect(
            try await connection.withSession("record") { try store.insertPieces($0, job: job, spans: [Span(start: 0)]) }
        )
        let piece = try #require(
            try await connection.withSession("claim a piece") {
                try store.claimPiece($0, ofJob: nil, staleAfter: 60, worker: "h/2", as: Span.self)
            })
        // The app cancels the job: the piece's heartbeat says it is over, nothing is claimable.
        try await TestDatabase.query(
            url, "UPDATE video_processing SET \"status\" = 'CANCELLED' WHERE id = $1", [String(id)])
        #expect(
            try await connection.withSession("beat") { try store.keepPieceAlive($0, piece, progress: 0.2) } == false)
        try await connection.withSession("release") { _ = try store.finishPiece($0, piece, released: true) }
        #expect(
            try await connection.withSession("claim a piece") {
                try store.claimPiece($0, ofJob: nil, staleAfter: 60, worker: "h/2", as: Span.self)
            } == nil)
        // A run that lost the job records nothing.
        #expect(
            try await connection.withSession("record") { try store.insertPieces($0, job: job, spans: [Span(start: 0)]) }
                == false)
    }
}
