import Foundation
import Queue
import Storage
import TestSupport
import Testing

@testable import Worker

/// What services said, by service.
private actor Recorder {
    private(set) var events: [String: [WorkerEvent]] = [:]
    func add(_ event: WorkerEvent, from name: String) { events[name, default: []].append(event) }
}

/// A worker's storage that records which keys it fetched.
final class CountingStorage: Storage, @unchecked Sendable {
    // @unchecked: `fetched` is only touched under `lock`.
    private let storage: any Storage
    private let lock = NSLock()
    private var fetched: [String] = []

    init(_ storage: any Storage) { self.storage = storage }

    /// The keys downloaded so far, in order.
    var downloads: [String] { lock.withLock { fetched } }

    func download(key: String, to destination: URL, expectedSize: Int64?) async throws(StorageError) -> Transferred {
        lock.withLock { fetched.append(key) }
        return try await storage.download(key: key, to: destination, expectedSize: expectedSize)
    }
    func upload(_ source: URL, key: String, contentType: String) async throws(StorageError) -> Transferred {
        try await storage.upload(source, key: key, contentType: contentType)
    }
    func delete(key: String) async throws(StorageError) { try await storage.delete(key: key) }
    func object(at key: String) async throws(StorageError) -> StoredObject? { try await storage.object(at: key) }
    func list(prefix: String) async throws(StorageError) -> [StoredObject] { try await storage.list(prefix: prefix) }
    func publicURL(for key: String) -> String { storage.publicURL(for: key) }
    var redactedDescription: String { storage.redactedDescription }
    func check() async throws(StorageError) { try await storage.check() }
}

extension InProcessWorker {
    /// Runs one service per name at once, on this worker's database and storage (seen through
    /// `storages`, by name, when given), each recording its events, until `done` says so (or
    /// `timeout` seconds pass); returns what each said.
    func serveTogether(
        _ names: [String], storages: [String: CountingStorage] = [:], timeout: Double = 240,
        until done: @escaping @Sendable () async -> Bool
    ) async throws -> [String: [WorkerEvent]] {
        let recorder = Recorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names {
                group.addTask {
                    try await serve(storage: storages[name]) { service, _ in
                        let recording = Task {
                            for await event in service.events { await recorder.add(event, from: name) }
                        }
                        _ = await eventually(timeout: timeout) { await done() }
                        recording.cancel()
                    }
                }
            }
            try await group.waitForAll()
        }
        return await recorder.events
    }

    /// Job `id`'s status, as text.
    func status(_ id: Int) async -> String? { try? await row(id).text("status") }

    /// The rows of the pieces table (job id, status).
    func pieceRows() async throws -> [(job: Int, status: String)] {
        try await TestDatabase.query(
            databaseURL, "SELECT \"jobId\" AS job, \"status\" FROM media_worker_pieces ORDER BY \"jobId\", \"index\""
        ).all.map { (try $0.decode("job", as: Int.self) ?? 0, try $0.text("status") ?? "") }
    }
}

/// Long videos encoded in pieces by every worker with a free encode slot: the job's run cuts it,
/// stays its coordinator and joins the pieces; pieces go back to the queue when their worker
/// stops, and are forgotten when the job is cancelled.
@Suite("Long videos in pieces across workers", .heavy)
struct PiecesJobTests {
    /// 20 s cut into 2 s pieces (at least 10 s to be cut), two workers: the one that claims the job
    /// coordinates, the other encodes pieces; the joined video plays whole, in sync, its storyboard
    /// has a tile every 2 s (each piece made its own; the join alone could only take the keyframes,
    /// every 8.3 s), the join fetches only the pieces made elsewhere, each worker fetches the input
    /// once however many pieces it takes, and nothing of the pieces is left.
    @Test func twoWorkersEncodeOneVideo() async throws {
        let worker = try await InProcessWorker.make([
            "MEDIA_WORKER_PIECE_SECONDS": "2", "MEDIA_WORKER_PIECES_AFTER": "10", "MEDIA_WORKER_STORYBOARD_AFTER": "10",
        ])
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .fullProcessing)
        let storages = try ["a", "b"].reduce(into: [String: CountingStorage]()) {
            $0[$1] = CountingStorage(try worker.configuration.makeStorage())
        }
        let said = try await worker.serveTogether(["a", "b"], storages: storages) {
            [JobStatus.completed.rawValue, JobStatus.failed.rawValue].contains(await worker.status(id))
        }
        #expect(await worker.status(id) == JobStatus.completed.rawValue)
        let coordinator = try #require(said.first { $0.value.contains(.claimed(id, .encode)) }?.key)
        let helper = coordinator == "a" ? "b" : "a"
        let helped = (said[helper] ?? []).filter { if case .pieceEnded(id, _, .completed) = $0 { true } else { false } }
        #expect(helped.count >= 1, "the second worker encoded no piece: \(said[helper] ?? [])")
        // The join fetched only the helper's pieces: the coordinator's own stayed where it made them.
        let gathered = (said[coordinator] ?? []).compactMap {
            if case .run(id, .piecesGathered(let madeHere, let fetched)) = $0 { (madeHere, fetched) } else { nil }
        }
        #expect(gathered.count == 1 && gathered.first?.1 == helped.count, "\(gathered)")
        #expect(gathered.first.map { $0.0 >= 1 && $0.0 + $0.1 == 5 } == true, "\(gathered)")
        for (name, storage) in storages {
            let inputs = storage.downloads.filter { $0.hasSuffix("long_hevc_720p_20s.mp4") }
            #expect(inputs.count == 1, "\(name) took \(helped.count) pieces: \(storage.downloads)")
        }
        let metadata = try #require(
            try await TestDatabase.query(
                worker.databaseURL,
                "SELECT \"outputMetadata\"::text AS m, \"progress\" FROM video_processing WHERE id = $1", [String(id)]
            ).first)
        let video = try #require(
            try decodedJSON(metadata.text("m"), as: [String: Any].self)?["video"] as? [String: Any])
        let why = (video["encoder"] as? [String: Any])?["why"] as? [String] ?? []
        // 2 s pieces of a video with keyframes every 8.3 s: the cuts between keyframes that would
        // decode more than a quarter of the video in all are dropped, 5 pieces are left.
        #expect(why.first == "video encoded in 5 pieces, joined without re-encoding", "\(why)")
        #expect(try metadata.decode("progress", as: Int.self) == 100)
        // The joined video, as stored: every frame, both streams 20 s.
        let file = try Fixtures.temporaryDirectory("joined").appendingPathComponent("video.mp4")
        try (try await worker.outputFiles(ofJob: id))["video"]?.write(to: file)
        #expect(try FFprobe.videoPacketCount(file.path) == 600)
        let streams = try #require(try FFprobe.describe(file.path)?["streams"] as? [[String: Any]])
        let lengths = streams.compactMap { ($0["duration"] as? String).flatMap(Double.init) }
        #expect(lengths.count == 2 && lengths.allSatisfy { abs($0 - 20) < 0.034 }, "\(lengths)")
        let cues = try #require((try await worker.outputFiles(ofJob: id))["storyboard_vtt"])
        #expect(String(decoding: cues, as: UTF8.self).components(separatedBy: " --> ").count - 1 == 10)
        // Nothing of the pieces is left: no rows, no stored files.
        #expect(try await worker.pieceRows().isEmpty)
        let stored = try await worker.configuration.makeStorage().list(prefix: "media-worker/jobs/\(id)/")
        #expect(!stored.isEmpty && !stored.contains { $0.key.contains("/pieces/") }, "\(stored.map(\.key))")
    }

    /// One worker with two encode slots: the pieces its second slot takes read the coordinator's
    /// copy of the input and stay in the join's folder, so the long video fetches its input once
    /// and no piece back (each piece used to fetch the whole input, and the join every piece).
    @Test func oneWorkersSlotsShareTheInputAndThePieces() async throws {
        let worker = try await InProcessWorker.make([
            "MEDIA_WORKER_PIECE_SECONDS": "2", "MEDIA_WORKER_PIECES_AFTER": "10", "MEDIA_WORKER_CONCURRENCY": "2",
        ])
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        let storage = CountingStorage(try worker.configuration.makeStorage())
        let said = try await worker.serveUntilFinished(id, storage: storage)
        #expect(said.contains(.finished(id, .completed)), "\(said)")
        let helped = said.filter { if case .pieceEnded(id, _, .completed) = $0 { true } else { false } }
        #expect(helped.count >= 1, "the second slot encoded no piece: \(said)")
        let gathered = said.compactMap {
            if case .run(id, .piecesGathered(let madeHere, let fetched)) = $0 { [madeHere, fetched] } else { nil }
        }
        #expect(gathered == [[5, 0]])
        let downloads = storage.downloads
        #expect(downloads.filter { $0.hasSuffix("long_hevc_720p_20s.mp4") }.count == 1, "\(downloads)")
        #expect(!downloads.contains { $0.contains("/pieces/") }, "\(downloads)")
        let file = try Fixtures.temporaryDirectory("joined").appendingPathComponent("video.mp4")
        try (try await worker.outputFiles(ofJob: id))["video"]?.write(to: file)
        #expect(try FFprobe.videoPacketCount(file.path) == 600)
        #expect(try await worker.pieceRows().isEmpty)
    }

    /// Shorter than the threshold: one pass, no pieces.
    @Test func shortVideosAreNotCut() async throws {
        let worker = try await InProcessWorker.make([
            "MEDIA_WORKER_PIECE_SECONDS": "4", "MEDIA_WORKER_PIECES_AFTER": "30",
        ])
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        let said = try await worker.serveUntilFinished(id)
        #expect(said.contains(.finished(id, .completed)))
        #expect(!said.contains { if case .pieceStarted = $0 { true } else { false } })
        let metadata = try #require(
            try await TestDatabase.query(
                worker.databaseURL, "SELECT \"outputMetadata\"::text AS m FROM video_processing WHERE id = $1",
                [String(id)]
            ).first)
        #expect(!(try metadata.text("m") ?? "").contains("pieces"))
    }

    /// The app cancels the job once a piece is stored: the run ends CANCELLED, its pieces are
    /// forgotten and no join runs.
    @Test func cancelStopsEveryPiece() async throws {
        let worker = try await InProcessWorker.make([
            "MEDIA_WORKER_PIECE_SECONDS": "4", "MEDIA_WORKER_PIECES_AFTER": "10",
        ])
        let id = try await worker.enqueue("long_hevc_720p_20s.mp4", type: .compression)
        var seen: [WorkerEvent] = []
        try await worker.serve { service, _ in
            let recording = Task {
                var seen: [WorkerEvent] = []
                for await event in service.events {
                    seen.append(event)
                    if case .finished(id, _) = event { break }
                }
                return seen
            }
            #expect(
                await eventually(timeout: 120) {
                    (try? await worker.pieceRows().contains { $0.status == "COMPLETED" }) == true
                })
            try await TestDatabase.query(
                worker.databaseURL, "UPDATE video_processing SET \"status\" = 'CANCELLED' WHERE id = $1", [String(id)])
            seen = await recording.value
        }
        #expect(seen.last == .finished(id, .cancelled), "\(seen.suffix(5))")
        #expect(await worker.status(id) == JobStatus.cancelled.rawValue)
        #expect(try await worker.pieceRows().isEmpty)
        let keys = try decodedJSON(try await worker.row(id).text("keys"), as: [String: String].self) ?? [:]
        #expect(keys["video"] == nil)
    }

    /// The pieces table as the tests read it: index, status, attempts, who holds it.
    private static func pieces(_ deployment: Deployment) async throws -> [(
        index: Int, status: String, attempts: Int, worker: String
    )] {
        try await TestDatabase.query(
            deployment.databaseURL,
            "SELECT \"index\", \"status\", \"attempts\", COALESCE(\"worker\", '') AS worker FROM media_worker_pieces"
        ).all.map {
            (
                try $0.decode("index", as: Int.self) ?? -1, try $0.text("status") ?? "",
                try $0.decode("attempts", as: Int.self) ?? 0, try $0.text("worker") ?? ""
            )
        }
    }

    /// The stored video of job `id` has all 600 frames.
    private static func expectWholeVideo(_ deployment: Deployment, job id: Int) async throws {
        let row = try await deployment.job(id)
        let error = try row.text("errorMessage") ?? ""
        #expect(try row.text("status") == "COMPLETED", "\(error)")
        let keys = try #require(try deployment.json(row.text("outputStorageKeys")) as? [String: String])
        let video = deployment.storage.appendingPathComponent(try #require(keys["video"])).path
        #expect(try FFprobe.videoPacketCount(video) == 600)
        #expect(try await pieces(deployment).isEmpty)
    }

    /// Two daemons, both idle when the job arrives: one claims it and coordinates, the other is
    /// killed while it encodes a piece. The piece goes stale, the coordinator takes it again (a
    /// second attempt), and the job completes whole.
    @Test func aKilledWorkersPieceIsTakenAgain() async throws {
        let deployment = try await Deployment.make()
        let environment = deployment.environment.merging([
            "MEDIA_WORKER_PIECE_SECONDS": "2", "MEDIA_WORKER_PIECES_AFTER": "10", "MEDIA_WORKER_STALE_AFTER": "3",
            "MEDIA_WORKER_LOG_LEVEL": "info",
        ]) { $1 }
        let logs = try Fixtures.temporaryDirectory("log")
        let daemons = try ["a", "b"].map {
            try BackgroundProgram(
                Fixtures.executable, ["serve"], environment: environment, log: logs.appendingPathComponent("\($0).log"))
        }
        defer { for daemon in daemons { daemon.signal(SIGKILL) } }
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        // The daemon that is not the job's coordinator (the one whose encode slot claimed it: a
        // fast lane may have taken its first look), caught while its child encodes a piece: the
        // child is stopped at once (found in /proc, no database round trip: a piece takes about a
        // second), so the piece cannot finish before its worker is killed; the worker's heartbeat
        // goes on holding it meanwhile.
        var coordinator: Int?
        var held: (index: Int, daemon: BackgroundProgram)?
        #expect(
            try await eventually(timeout: 120) {
                if coordinator == nil {
                    coordinator = try await TestDatabase.query(
                        deployment.databaseURL,
                        """
                        SELECT (e->>'pid')::int AS pid
                        FROM video_processing, json_array_elements("processingLogs") WITH ORDINALITY AS l(e, n)
                        WHERE id = $1 AND e->>'event' = 'claimed' AND e->>'lane' = 'encode' ORDER BY n DESC LIMIT 1
                        """, [String(id)]
                    ).first?.decode("pid", as: Int.self)
                }
                guard let coordinator, let helper = daemons.first(where: { Int($0.pid) != coordinator }),
                    let child = BackgroundProgram.children(of: helper.pid, running: "run-job").first
                else { return false }
                kill(child, SIGSTOP)
                guard
                    let piece = try await Self.pieces(deployment).first(where: {
                        $0.status == "PROCESSING" && $0.worker.hasSuffix("/\(helper.pid)")
                    })
                else {
                    kill(child, SIGCONT)
                    return false
                }
                held = (piece.index, helper)
                return true
            })
        let said = {
            ["a", "b"].map { name in
                let log = try? String(contentsOf: logs.appendingPathComponent("\(name).log"), encoding: .utf8)
                return "\(name).log:\n\(log ?? "-")"
            }.joined(separator: "\n")
        }
        let (index, helper) = try #require(held, "no piece held by the other daemon; \(said())")
        helper.signal(SIGKILL)
        _ = await helper.wait(timeout: 5)
        let completed = try await eventually(timeout: 120) {
            try await deployment.job(id).text("status") == "COMPLETED"
        }
        let piecesLeft = completed ? [] : try await Self.pieces(deployment)
        #expect(completed, "the job did not complete; pieces: \(piecesLeft); \(said())")
        // The piece's second attempt, as the worker that made it logged it (its row is gone with
        // the pieces once the job completed, which can be within seconds of the kill).
        let survivor = try #require(zip(["a", "b"], daemons).first { $0.1.pid != helper.pid }?.0)
        let log = (try? String(contentsOf: logs.appendingPathComponent("\(survivor).log"), encoding: .utf8)) ?? ""
        let retried = log.split(separator: "\n").contains {
            $0.contains("piece ended") && $0.contains("piece=\(index)") && $0.contains("attempt=2")
                && $0.contains("outcome=completed")
        }
        #expect(retried, "the killed worker's piece was not taken again")
        try await Self.expectWholeVideo(deployment, job: id)
    }

    /// The coordinator dies (SIGKILL) with pieces stored: the job is rescued and made again by
    /// another worker, and the sweep removes the dead run's pieces (no row names them; a piece is
    /// never published, so no grace). Storage ends holding exactly what the row names.
    @Test func aCrashedCoordinatorsPiecesAreRemoved() async throws {
        let deployment = try await Deployment.make()
        let settings = [
            "MEDIA_WORKER_PIECE_SECONDS": "2", "MEDIA_WORKER_PIECES_AFTER": "10", "MEDIA_WORKER_STALE_AFTER": "3",
            "MEDIA_WORKER_SWEEP_GRACE": "0",
        ]
        let logs = try Fixtures.temporaryDirectory("log")
        let start = { (name: String) in
            try BackgroundProgram(
                Fixtures.executable, ["serve"], environment: deployment.environment.merging(settings) { $1 },
                log: logs.appendingPathComponent("\(name).log"))
        }
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let coordinator = try start("a")
        defer { coordinator.signal(SIGKILL) }
        #expect(
            try await eventually(timeout: 120) {
                try await Self.pieces(deployment).filter { $0.status == "COMPLETED" }.count >= 2
            })
        coordinator.signal(SIGKILL)
        _ = await coordinator.wait(timeout: 5)
        let stranded = try await deployment.storedKeys().filter { $0.contains("/pieces/") }
        #expect(!stranded.isEmpty)
        let rescuer = try start("b")
        defer { rescuer.signal(SIGKILL) }
        #expect(
            try await eventually(timeout: 180) { try await deployment.job(id).text("status") == "COMPLETED" })
        #expect(
            try await eventually(timeout: 30) {
                try await deployment.storedKeys().allSatisfy { !$0.contains("/pieces/") }
            })
        #expect(try await deployment.truthProblems(ofJob: id) == [])
        #expect(try await Self.pieces(deployment).isEmpty)
    }

    /// `reprocess --force` while the job is in pieces: the old run is fenced off and forgets its
    /// pieces, the new run cuts the video again, and the job completes whole.
    @Test func reprocessMidwayStartsOver() async throws {
        let deployment = try await Deployment.make()
        let settings = ["MEDIA_WORKER_PIECE_SECONDS": "4", "MEDIA_WORKER_PIECES_AFTER": "10"]
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let daemon = try BackgroundProgram(
            Fixtures.executable, ["serve"], environment: deployment.environment.merging(settings) { $1 },
            log: try Fixtures.temporaryDirectory("log").appendingPathComponent("serve.log"))
        defer { daemon.signal(SIGKILL) }
        #expect(
            try await eventually(timeout: 60) {
                try await Self.pieces(deployment).contains { $0.status == "COMPLETED" }
            })
        let firstRun = try await deployment.job(id).text("startedAt")
        // The reset job goes to whoever claims it first: this command, or the daemon beside it.
        let reprocessed = try await deployment.run("reprocess", String(id), "--force", extra: settings)
        #expect(
            reprocessed.status == 0 || reprocessed.stderr.contains("was claimed by another worker first"),
            "\(reprocessed.stderr)")
        #expect(
            try await eventually(timeout: 120) { try await deployment.job(id).text("status") == "COMPLETED" })
        #expect(try await deployment.job(id).text("startedAt") != firstRun)
        try await Self.expectWholeVideo(deployment, job: id)
    }
}
