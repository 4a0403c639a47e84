import Foundation
import Queue
import TestSupport
import Testing

/// A fresh job table and the claims made on it, directly or through PgBouncer in transaction mode.
private struct ClaimBench {
    /// The database, directly: what the test sets up and reads with.
    let url: String
    let claims: PostgresConnection
    let store = JobStore()

    init(_ route: Route) async throws {
        url = try await TestDatabase.create()
        claims = PostgresConnection(url: try await route.url(for: url), label: "claims", logger: .init(label: "test"))
    }

    /// A runnable job of `type` by `user` (nil: no `userId`), created `minutesAgo`.
    @discardableResult
    func add(user: Int?, type: ProcessingType = .metadata, minutesAgo: Int) async throws -> Int {
        let id = try await insertJob(url, type: type)
        if let user {
            try await TestDatabase.query(
                url, "INSERT INTO \"user\" (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id", [String(user)])
        }
        try await TestDatabase.query(
            url,
            """
            UPDATE video_processing SET "userId" = $2::int,
                "createdAt" = (now() AT TIME ZONE 'utc') - make_interval(mins => $3::int),
                "updatedAt" = (now() AT TIME ZONE 'utc') - make_interval(mins => $3::int)
            WHERE id = $1 RETURNING id
            """, [String(id), user.map(String.init), String(minutesAgo)])
        return id
    }

    func claim(_ rules: JobStore.ClaimRules = .init()) async throws -> Job? {
        let store = store
        return try await claims.withSession("claim") {
            try store.claim($0, rules: rules, retryBase: 0, uploadWait: 3600, host: "h", pid: 7)
        }
    }

    /// Claims until nothing more is claimed; the uploaders of the jobs claimed, in order.
    func claimAll(_ rules: JobStore.ClaimRules = .init()) async throws -> [Int?] {
        var uploaders: [Int?] = []
        while let job = try await claim(rules) { uploaders.append(job.userId) }
        return uploaders
    }

    /// Writes what a first look leaves: `inputMetadata` with the bytes' hash, the job PENDING.
    func markLooked(_ id: Int) async throws {
        try await TestDatabase.query(
            url,
            """
            UPDATE video_processing SET "status" = 'PENDING', "inputMetadata" = '{"sha256": "ab"}'::json
            WHERE id = $1 RETURNING id
            """, [String(id)])
    }

    func finish(_ id: Int) async throws {
        try await TestDatabase.query(
            url, "UPDATE video_processing SET \"status\" = 'COMPLETED' WHERE id = $1 RETURNING id", [String(id)])
    }

    func close() async { await claims.close() }
}

@Suite("Claim order: fair shares, the fast lane, paused types")
struct ClaimOrderTests {
    /// The next claim goes to the uploader with the fewest jobs running, then the oldest job: one
    /// person's burst does not hold back the others.
    @Test(arguments: Route.allCases) func fewestRunningUploaderFirst(_ route: Route) async throws {
        let bench = try await ClaimBench(route)
        for minutes in [60, 59, 58, 57] { try await bench.add(user: 1, minutesAgo: minutes) }
        for minutes in [30, 29] { try await bench.add(user: 2, minutesAgo: minutes) }
        try await bench.add(user: 3, minutesAgo: 1)
        #expect(try await bench.claimAll() == [1, 2, 3, 1, 2, 1, 1])
        await bench.close()
    }

    /// With a cap of one slot per uploader, an uploader holding one gets no more while another's
    /// job waits; a newcomer is served at once; alone, an uploader gets every slot. Jobs without a
    /// `userId` count as one uploader.
    @Test(arguments: Route.allCases) func perUploaderCap(_ route: Route) async throws {
        let bench = try await ClaimBench(route)
        let capped = JobStore.ClaimRules(maxSlotsPerUploader: 1)
        for minutes in [60, 59, 58] { try await bench.add(user: nil, minutesAgo: minutes) }
        try await bench.add(user: 2, minutesAgo: 30)
        try await bench.add(user: 2, minutesAgo: 29)
        let first = try #require(try await bench.claim(capped))
        #expect(first.userId == nil)
        #expect(try await bench.claim(capped)?.userId == 2)
        // Both hold their one slot and the other waits: neither gets another.
        #expect(try await bench.claim(capped) == nil)
        try await bench.add(user: 3, minutesAgo: 0)
        #expect(try await bench.claim(capped)?.userId == 3)
        #expect(try await bench.claim(capped) == nil)
        // The first uploader's job ends: its next one goes.
        try await bench.finish(first.id)
        #expect(try await bench.claim(capped)?.userId == nil)
        await bench.close()

        let alone = try await ClaimBench(route)
        for minutes in [3, 2, 1] { try await alone.add(user: 5, minutesAgo: minutes) }
        #expect(try await alone.claimAll(capped) == [5, 5, 5])
        await alone.close()
    }

    /// The fast lane takes quick work only: THUMBNAIL, METADATA, and a first look; a long pass
    /// waits for an encode slot.
    @Test(arguments: Route.allCases) func fastLaneTakesQuickWorkOnly(_ route: Route) async throws {
        let bench = try await ClaimBench(route)
        let looked = try await bench.add(user: 1, type: .compression, minutesAgo: 10)
        try await bench.markLooked(looked)
        let fresh = try await bench.add(user: 2, type: .fullProcessing, minutesAgo: 5)
        let thumbnail = try await bench.add(user: 3, type: .thumbnail, minutesAgo: 1)
        let fast = JobStore.ClaimRules(quickOnly: true)
        let first = try #require(try await bench.claim(fast))
        #expect(first.id == fresh && first.firstLookSha256 == nil)
        #expect(try await bench.claim(fast)?.id == thumbnail)
        #expect(try await bench.claim(fast) == nil)
        let long = try #require(try await bench.claim())
        #expect(long.id == looked && long.firstLookSha256 == "ab")
        await bench.close()
    }

    /// A paused type's first look still runs, its long pass and quick types wait, nothing counts as
    /// work left for `--until-idle`, and a resume lets them go.
    @Test(arguments: Route.allCases) func pausedTypesWaitUntilResumed(_ route: Route) async throws {
        let bench = try await ClaimBench(route)
        let store = bench.store
        try await bench.claims.withSession("pause") { try store.pause($0, [.compression, .thumbnail], reason: "test") }
        let compression = try await bench.add(user: 1, type: .compression, minutesAgo: 10)
        let thumbnail = try await bench.add(user: 2, type: .thumbnail, minutesAgo: 5)
        let firstLook = try #require(try await bench.claim())
        #expect(firstLook.id == compression && firstLook.typePaused)
        try await bench.markLooked(compression)
        #expect(try await bench.claim() == nil)
        #expect(
            try await bench.claims.withSession("idle") { try store.isIdle($0, uploadWait: 3600, hasPausedTable: true) })
        let paused = try await bench.claims.withSession("list") { try store.pausedTypes($0) }
        #expect(
            paused.map(\.processingType) == [.compression, .thumbnail] && paused.allSatisfy { $0.reason == "test" })

        #expect(try await bench.claims.withSession("resume") { try store.resume($0, [.thumbnail]) } == 1)
        #expect(try await bench.claim()?.id == thumbnail)
        #expect(try await bench.claim() == nil)
        _ = try await bench.claims.withSession("resume") { try store.resume($0, ProcessingType.allCases) }
        let longPass = try #require(try await bench.claim())
        #expect(longPass.id == compression && !longPass.typePaused)
        await bench.close()
    }
}
