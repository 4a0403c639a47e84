import Foundation
import Media
import Queue
import TestSupport
import Testing

@testable import Worker

extension InProcessWorker {
    /// The inode of job `id`'s stored `role` output, as its row names it: the same number means the
    /// same file, not made again.
    func inode(ofJob id: Int, role: OutputRole) async throws -> UInt64 {
        let keys = try #require(try decodedJSON(try await row(id).text("keys"), as: [String: String].self))
        let path = URL(string: configuration.storageURL)!.appendingPathComponent(try #require(keys[role.rawValue])).path
        return try #require(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? UInt64)
    }

    /// The `event` names of job `id`'s `processingLogs`, in order.
    func logEvents(_ id: Int) async throws -> [String] {
        let logs = try decodedJSON(try await row(id).text("logs"), as: [[String: Any]].self) ?? []
        return logs.compactMap { $0["event"] as? String }
    }
}

extension WorkerEvent {
    /// Whether this is job `id`'s claim, in any lane.
    func claims(_ id: Int) -> Bool { if case .claimed(id, _) = self { true } else { false } }
    /// Whether this is the end of a run of job `id`, however it ended.
    func ends(_ id: Int) -> Bool { if case .finished(id, _) = self { true } else { false } }
}

extension AsyncStream<WorkerEvent>.Iterator {
    /// Reads events until `match` accepts one, collecting every event read (the match included).
    mutating func collect(until match: (WorkerEvent) -> Bool) async -> [WorkerEvent] {
        var seen: [WorkerEvent] = []
        while let event = await next() {
            seen.append(event)
            if match(event) { break }
        }
        return seen
    }
}

/// The two lanes of a host: with its one encode slot busy on one uploader's long encode, another
/// uploader's video still gets its stills at once (the fast lane), then its long pass when the slot
/// frees, without the stills made again. Run directly and through PgBouncer in transaction mode.
/// The busy slot holds an ULTRA encode (x264 `medium`, about 13 CPU-s): far longer than a first look
/// however loaded the machine is.
@Suite("Lanes: quick work never waits behind long work", .heavy)
struct LaneTests {
    @Test(arguments: Route.allCases) func fastLanePublishesStillsWhileTheEncodeSlotIsBusy(_ route: Route) async throws {
        let worker = try await InProcessWorker.make(route: route)
        let long = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression, profile: .ultra, user: 1)
        var clip = 0
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            _ = await events.next { $0 == .claimed(long, .encode) }
            clip = try await worker.enqueue("portrait_rot90.mp4", type: .fullProcessing, user: 2)
            let firstLook = await events.collect { $0 == .finished(clip, .parked) }
            #expect(firstLook.contains(.claimed(clip, .fast)) && firstLook.contains(.run(clip, .stillsPublished)))
            #expect(!firstLook.contains { $0.ends(long) }, "the encode ended first")
            // Between the phases: PENDING, progress 0, the stills and the probe already in the rows.
            let row = try #require(
                try await TestDatabase.query(
                    worker.databaseURL,
                    """
                    SELECT "status"::text AS status, "progress", "thumbnails"::text AS thumbnails,
                        "inputMetadata"->>'sha256' AS sha FROM video_processing WHERE id = $1
                    """, [String(clip)]
                ).first)
            #expect(try row.text("status") == JobStatus.pending.rawValue && row.decode("progress", as: Int.self) == 0)
            #expect((try decodedJSON(row.text("thumbnails"), as: [Any].self))?.count == 2)
            #expect(try row.text("sha") == sha256Hex(URL(fileURLWithPath: Fixtures.path("portrait_rot90.mp4"))))
            let upload = try await worker.upload(ofJob: clip)
            #expect(endsInRunKey(try upload.text("poster"), job: clip, file: "poster.jpg"))
            let metadata = try #require(try decodedJSON(upload.text("metadata"), as: [String: Any].self))
            #expect(((metadata["video"] as? [String: Any])?["blurhash"] as? String)?.count == 28)
            #expect((metadata["processing"] as? [String: Any])?["status"] as? String == "PENDING")
            #expect(try await worker.logEvents(clip) == ["claimed", "queued"])
            let poster = try await worker.inode(ofJob: clip, role: .poster)

            // The long pass, once the encode slot frees: no stills made again.
            let longPass = await events.collect { $0.ends(clip) }
            #expect(longPass.contains(.finished(long, .completed)) && longPass.contains(.claimed(clip, .encode)))
            #expect(longPass.last == .finished(clip, .completed))
            #expect(!longPass.contains(.run(clip, .stillsPublished)))
            #expect(try await worker.inode(ofJob: clip, role: .poster) == poster)
        }
        let row = try await worker.row(clip)
        #expect(try row.text("status") == JobStatus.completed.rawValue)
        let keys = try decodedJSON(row.text("keys"), as: [String: String].self) ?? [:]
        #expect(Set(keys.keys) == Set(fullProcessingRoles(hevcUpload: false).map(\.rawValue)))
        #expect(try await worker.logEvents(clip) == ["claimed", "queued", "claimed", "completed"])
    }

    /// The app cancels a job between its first look and its long pass: no long pass starts.
    @Test func cancelBetweenThePhasesStartsNoLongPass() async throws {
        let worker = try await InProcessWorker.make()
        let long = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression, profile: .ultra, user: 1)
        var (clip, seen): (Int, [WorkerEvent]) = (0, [])
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            _ = await events.next { $0 == .claimed(long, .encode) }
            clip = try await worker.enqueue("portrait_rot90.mp4", type: .fullProcessing, user: 2)
            _ = await events.next { [clip] in $0 == .finished(clip, .parked) }
            try await TestDatabase.query(
                worker.databaseURL, "UPDATE video_processing SET \"status\" = 'CANCELLED' WHERE id = $1", [String(clip)]
            )
            _ = await events.next { $0.ends(long) }
            // A job from a third uploader, younger than the cancelled one: had the cancelled one
            // been claimable, it would have gone first.
            let later = try await worker.enqueue("no_audio.mp4", type: .metadata, user: 3)
            seen = await events.collect { $0.ends(later) }
        }
        #expect(!seen.contains { $0.claims(clip) })
        #expect(seen.last.map { if case .finished(_, .completed) = $0 { true } else { false } } == true)
        let row = try await worker.row(clip)
        #expect(try row.text("status") == JobStatus.cancelled.rawValue)
        let keys = try decodedJSON(row.text("keys"), as: [String: String].self) ?? [:]
        #expect(Set(keys.keys) == ["poster", "thumbnail"])
    }

    /// A job rescued after its stills were published (its worker lost, as far as the others can
    /// tell) keeps them: the next run makes only the rest.
    @Test func rescueAfterTheStillsKeepsThem() async throws {
        let worker = try await InProcessWorker.make()
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .fullProcessing)
        var poster: UInt64 = 0
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            _ = await events.next { $0 == .run(id, .stillsPublished) }
            poster = try await worker.inode(ofJob: id, role: .poster)
            // What another worker's rescuer does to a job whose heartbeat it stopped hearing. A
            // heartbeat written after the rescuer's transaction began is newer than its `now()`, so
            // the rescuer counts every heartbeat as a minute old and asks until it gets the job.
            let connection = PostgresConnection(url: worker.databaseURL, label: "rescuer", logger: worker.logger)
            var rescued: [(id: Int, status: JobStatus)] = []
            for _ in 0..<50 where rescued.isEmpty {
                rescued = try await connection.withSession("rescue") {
                    try JobStore().rescueStale($0, staleAfter: -60, maxAttempts: 3, host: "other", pid: 1)
                }
                if rescued.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            }
            await connection.close()
            #expect(rescued.map(\.id) == [id])
            let rest = await events.collect { $0 == .finished(id, .completed) }
            #expect(rest.contains(.finished(id, .fencedOff)) && rest.contains(.claimed(id, .encode)))
            #expect(!rest.contains(.run(id, .stillsPublished)))
        }
        #expect(try await worker.inode(ofJob: id, role: .poster) == poster)
        let row = try await worker.row(id)
        #expect(try row.text("status") == JobStatus.completed.rawValue && row.decode("retries", as: Int.self) == 1)
        let keys = try decodedJSON(row.text("keys"), as: [String: String].self) ?? [:]
        #expect(Set(keys.keys) == Set(fullProcessingRoles(hevcUpload: true).map(\.rawValue)))
        #expect(try await worker.logEvents(id) == ["claimed", "stills", "rescued", "claimed", "completed"])
    }

    /// A paused type gets its first look and waits; `resume` lets its long pass run.
    @Test func pausedTypeWaitsAfterItsFirstLook() async throws {
        let worker = try await InProcessWorker.make()
        let connection = PostgresConnection(url: worker.databaseURL, label: "operator", logger: worker.logger)
        defer { Task { await connection.close() } }
        try await connection.withSession("pause") { try JobStore().pause($0, [.compression], reason: "incident") }
        let id = try await worker.enqueue("vp9_opus.webm", type: .compression)
        try await worker.serve { service, _ in
            var events = service.events.makeAsyncIterator()
            #expect(await events.ending(of: id) == .parked)
            #expect(try await worker.row(id).text("status") == JobStatus.pending.rawValue)
            _ = try await connection.withSession("resume") { try JobStore().resume($0, [.compression]) }
            #expect(await events.ending(of: id) == .completed)
        }
        #expect(try await worker.logEvents(id) == ["claimed", "queued", "claimed", "completed"])
    }
}
