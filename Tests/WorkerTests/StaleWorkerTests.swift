import Foundation
import Media
import Queue
import Storage
import TestSupport
import Testing

extension Deployment {
    /// Checks that storage holds exactly what job `id`'s row says: every named object exists with
    /// the bytes, SHA-256, size and duration its `outputMetadata` gives (ffprobe judging), and no
    /// other object is stored. Returns the problems found.
    func truthProblems(ofJob id: Int) async throws -> [String] {
        let row = try await job(id)
        let keys = storageKeys(try row.text("outputStorageKeys"))
        let metadata = try json(row.text("outputMetadata")) as? [String: [String: Any]] ?? [:]
        var problems: [String] = []
        for (role, key) in keys.sorted(by: { $0.key < $1.key }) {
            let file = storage.appendingPathComponent(key)
            guard let entry = metadata[role], FileManager.default.fileExists(atPath: file.path) else {
                problems.append("\(role): \(key) is not stored, or has no metadata")
                continue
            }
            let bytes = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int ?? -1
            if entry["bytes"] as? Int != bytes {
                problems.append("\(role): \(bytes) B stored, row says \(entry["bytes"] ?? "-")")
            }
            if entry["sha256"] as? String != (try sha256Hex(file)) {
                problems.append("\(role): other bytes than the row's SHA-256")
            }
            let streams = try FFprobe.describe(file.path)?["streams"] as? [[String: Any]] ?? []
            let picture = streams.first { $0["width"] != nil }
            if picture?["width"] as? Int != entry["width"] as? Int
                || picture?["height"] as? Int != entry["height"] as? Int
            {
                problems.append(
                    "\(role): \(picture?["width"] ?? "?")x\(picture?["height"] ?? "?") stored, row says \(entry["width"] ?? "?")x\(entry["height"] ?? "?")"
                )
            }
        }
        let stored = Set(try await storedKeys())
        if stored != Set(keys.values) {
            problems.append("stored objects no row names: \(stored.subtracting(keys.values).sorted())")
        }
        return problems
    }
}

/// A worker that lost its claim while it still holds a finished encode (frozen by SIGSTOP, or cut
/// off from the database while its storage works) must not change what the row of the worker that
/// replaced it points at. Before runs had keys of their own, 6 tries in 7 overwrote the rescuer's
/// objects; the pre-upload claim check also keeps the stale worker from storing anything at all.
@Suite("A stale worker never changes storage", .heavy)
struct StaleWorkerTests {
    static let settings = [
        "MEDIA_WORKER_STALE_AFTER": "3", "MEDIA_WORKER_CONCURRENCY": "1", "MEDIA_WORKER_FAST_SLOTS": "1",
        "MEDIA_WORKER_LOG_LEVEL": "info", "MEDIA_WORKER_PIECE_SECONDS": "0",
    ]

    /// Starts worker `name` (its own job folder, so its child can be found) on `databaseURL`.
    func worker(_ name: String, _ deployment: Deployment, databaseURL: String? = nil) throws -> BackgroundProgram {
        let folder = deployment.scratch.appendingPathComponent(name, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var environment = deployment.environment.merging(Self.settings) { $1 }
        environment["MEDIA_WORKER_TMPDIR"] = folder.path
        if let databaseURL { environment["DATABASE_URL"] = databaseURL }
        let log = deployment.scratch.appendingPathComponent("\(name).log")
        return try BackgroundProgram(Fixtures.executable, ["serve"], environment: environment, log: log)
    }

    /// Worker A, frozen (or cut off) mid-encode, with its deployment and job.
    struct Stale {
        let deployment: Deployment
        let proxy: PartitionProxy?
        let id: Int
        let a: BackgroundProgram

        func stop() {
            proxy?.stop()
            a.signal(SIGCONT)
            a.signal(SIGKILL)
        }
    }

    /// Starts worker A on a job and, once it encoded a tenth of it, freezes it (or cuts it off).
    /// Nil when A finished the job before that: the suite's load can starve the test's own polling
    /// for longer than A's encode takes, and then there is nothing stale to test.
    func freezeMidEncode(cutOff: Bool) async throws -> Stale? {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION", profile: "HIGH")
        let proxy = cutOff ? try PartitionProxy(to: deployment.databaseURL) : nil
        let a: BackgroundProgram
        do {
            a = try worker("a", deployment, databaseURL: proxy?.url(for: deployment.databaseURL))
        } catch {
            proxy?.stop()
            throw error
        }
        let stale = Stale(deployment: deployment, proxy: proxy, id: id, a: a)
        // Whatever ends this early (a thrown error, a missed freeze) stops A and the proxy.
        var caught = false
        defer { if !caught { stale.stop() } }
        #expect(
            try await eventually(timeout: 90) {
                (try await deployment.job(id).decode("progress", as: Int.self) ?? 0) >= 10
            })
        if let proxy { proxy.refuse() } else { a.signal(SIGSTOP) }
        // A write A sent just before may still be landing.
        try await Task.sleep(for: .seconds(1))
        caught = try await deployment.job(id).text("status") == "PROCESSING"
        return caught ? stale : nil
    }

    /// Worker A encodes a tenth of the job, then loses its claim (frozen, or cut off); worker B
    /// rescues the job and completes it; A's child finishes its encode meanwhile; A wakes (or gets
    /// the database back) holding a finished encode of a job it no longer holds.
    func staleWorker(cutOff: Bool) async throws {
        var caught: Stale?
        for _ in 1...3 where caught == nil { caught = try await freezeMidEncode(cutOff: cutOff) }
        let stale = try #require(caught, "worker A finished its job three times before it could be frozen")
        defer { stale.stop() }
        let (deployment, proxy, id, a) = (stale.deployment, stale.proxy, stale.id, stale.a)
        let b = try worker("b", deployment)
        defer { b.signal(SIGKILL) }
        #expect(try await eventually(timeout: 180) { try await deployment.job(id).text("status") == "COMPLETED" })
        let aFolder = deployment.scratch.appendingPathComponent("a").path
        #expect(await eventually(timeout: 120) { BackgroundProgram.processes(matching: aFolder).isEmpty })
        if let proxy {
            // Its progress writes failed; it went on to store, and the claim check got no answer.
            #expect(
                await eventually(timeout: 90) { a.output.contains("was not confirmed; storing nothing") }, "\(a.output)"
            )
            proxy.mend()
        } else {
            a.signal(SIGCONT)
        }
        #expect(await eventually(timeout: 90) { a.output.contains("outcome=fencedOff") }, "\(a.output)")
        #expect(try await deployment.truthProblems(ofJob: id) == [])
        let logs = try deployment.json(try await deployment.job(id).text("logs")) as? [[String: Any]] ?? []
        #expect(logs.compactMap { $0["event"] as? String }.suffix(3) == ["rescued", "claimed", "completed"])
        let audit = try await deployment.run("storage", "audit", "--json")
        #expect(audit.status == 0, "\(audit.stderr)")
        let objects =
            (try JSONSerialization.jsonObject(with: audit.stdout) as? [String: Any])?["objects"] as? [[String: Any]]
        #expect(!(objects ?? []).isEmpty && (objects ?? []).allSatisfy { $0["verdict"] as? String == "referenced" })
    }

    /// Frozen (SIGSTOP) past the stale-after time while its child finishes the encode. On waking,
    /// whichever notices first (its heartbeat, fenced off, or the claim check before storing) ends
    /// the run having stored nothing.
    @Test func frozenWorker() async throws { try await staleWorker(cutOff: false) }

    /// Cut off from the database (every connection reset, as in a failover or a PgBouncer restart)
    /// while its storage works: its progress writes fail and it goes on to store its outputs, but
    /// the claim check before the upload gets no answer, so it stores nothing.
    @Test func workerCutOffFromTheDatabase() async throws { try await staleWorker(cutOff: true) }
}
