import Foundation
import TestSupport
import Testing

@testable import Queue
@testable import Worker

/// How many times a fetch ran, and makes the next ones fail on demand.
private actor Fetches {
    private(set) var count = 0
    var failing = false

    func fetch(into file: URL) throws {
        count += 1
        if failing { throw CocoaError(.fileReadUnknown) }
        try Data("input".utf8).write(to: file)
    }

    func fail(_ failing: Bool) { self.failing = failing }
}

/// The inputs a worker shares between the pieces of another worker's long video it takes:
/// fetched once per run, kept a little after the last piece, never kept when the fetch failed.
@Suite struct PieceInputsRules {
    private let parent: String
    private let run = JobClaim(id: 7, token: "20261207120000")

    init() throws { parent = try Fixtures.temporaryDirectory("piece-inputs").path }

    @Test func piecesOfOneRunFetchItsInputOnce() async throws {
        let (inputs, fetches) = (PieceInputs(linger: .seconds(60)), Fetches())
        async let first = inputs.borrow(run, in: parent) { try await fetches.fetch(into: $0) }
        async let second = inputs.borrow(run, in: parent) { try await fetches.fetch(into: $0) }
        let (a, b) = try await (first, second)
        #expect(a.input == b.input)
        #expect(try String(contentsOf: a.input, encoding: .utf8) == "input")
        inputs.giveBack(a)
        inputs.giveBack(b)
        // The next piece, after both ended: the same copy.
        let c = try await inputs.borrow(run, in: parent) { try await fetches.fetch(into: $0) }
        #expect(c.input == a.input)
        #expect(await fetches.count == 1)
        // Another run (a reprocess) has its own.
        let other = try await inputs.borrow(JobClaim(id: 7, token: "later"), in: parent) {
            try await fetches.fetch(into: $0)
        }
        let fetched = await fetches.count
        #expect(other.input != a.input && fetched == 2)
        await inputs.removeAll()
        #expect(!FileManager.default.fileExists(atPath: a.input.deletingLastPathComponent().path))
    }

    @Test func anInputGoesWhenItsLastPieceEndedAndLingered() async throws {
        let inputs = PieceInputs(linger: .milliseconds(200))
        let a = try await inputs.borrow(run, in: parent) { try Data("x".utf8).write(to: $0) }
        let b = try await inputs.borrow(run, in: parent) { _ in Issue.record("fetched twice") }
        let folder = a.input.deletingLastPathComponent().path
        inputs.giveBack(a)
        try await Task.sleep(for: .milliseconds(500))
        // One piece still reads it.
        let held = await inputs.count
        #expect(FileManager.default.fileExists(atPath: folder) && held == 1)
        inputs.giveBack(b)
        #expect(await eventually(timeout: 5) { await inputs.count == 0 })
        #expect(!FileManager.default.fileExists(atPath: folder))
    }

    @Test func aFailedFetchIsNotKept() async throws {
        let (inputs, fetches) = (PieceInputs(linger: .seconds(60)), Fetches())
        await fetches.fail(true)
        await #expect(throws: CocoaError.self) {
            try await inputs.borrow(run, in: parent) { try await fetches.fetch(into: $0) }
        }
        #expect(await inputs.count == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
        await fetches.fail(false)
        let next = try await inputs.borrow(run, in: parent) { try await fetches.fetch(into: $0) }
        let fetched = await fetches.count
        #expect(try String(contentsOf: next.input, encoding: .utf8) == "input" && fetched == 2)
        await inputs.removeAll()
    }
}
