import Foundation
import TestSupport
import Testing

/// Killing, stopping and cancelling a job while it runs (on `long_hevc_720p_20s.mp4`, a few
/// seconds of transcoding).
@Suite("serve: a running job", .heavy)
struct RunningJobTests {
    /// How long a daemon may take to finish the encode (about 8 s alone). Its child runs at nice
    /// 19, so while the test process's own media work (at nice 0) fills both cores it nearly
    /// stops: once, in a full run, two of these daemons were not done after 120 s.
    static let encodeWait = 300.0

    /// Starts `serve` in the background and waits until the job is PROCESSING and its child runs
    /// (as early as possible, so the job is far from done even on a loaded machine).
    func startWhileRunning(
        _ deployment: Deployment, job: Int, _ arguments: [String] = [], extra: [String: String] = [:]
    ) async throws -> BackgroundProgram {
        let log = try Fixtures.temporaryDirectory("log").appendingPathComponent("serve.log")
        let daemon = try BackgroundProgram(
            Fixtures.executable, ["serve"] + arguments, environment: deployment.environment.merging(extra) { $1 },
            log: log)
        // A child exists only while its job is PROCESSING; /proc is cheaper to poll than the database.
        if await eventually(timeout: 30, { !children(of: deployment).isEmpty }) { return daemon }
        daemon.signal(SIGKILL)
        throw TestSupportError("the job never got going: \(daemon.output)")
    }

    func children(of deployment: Deployment) -> [pid_t] {
        BackgroundProgram.processes(matching: deployment.scratch.path).filter { pid in
            (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map { String(decoding: $0, as: UTF8.self) }
                ?? "")
                .contains("run-job")
        }
    }

    @Test(arguments: Route.allCases) func killedWorkersJobIsRescuedAndNoDecoderIsLeft(_ route: Route) async throws {
        let deployment = try await Deployment.make(route)
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let daemon = try await startWhileRunning(deployment, job: id)
        #expect(children(of: deployment).count == 1)
        daemon.signal(SIGKILL)
        _ = await daemon.wait(timeout: 5)
        // PR_SET_PDEATHSIG: the child goes with its parent.
        #expect(
            await eventually(timeout: 2) { children(of: deployment).isEmpty },
            "decoder processes left running: \(children(of: deployment))")
        // The killed daemon's job folder, input and all, is still there; the next daemon to start on
        // the host removes it.
        let left = try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path)
        #expect(left.count == 1 && left[0].hasPrefix("media-worker-job-\(id)-"), "\(left)")
        // Stale after 5 s: the killed daemon's job is rescued soon. This daemon never rescues its
        // own run, however late its heartbeat on a loaded host (in CI it once did, twice in a row).
        let served = try await deployment.run("serve", "--until-idle", "--stale-after", "5")
        #expect(served.status == 0, "\(served.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).isEmpty)
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "COMPLETED")
        #expect(try row.decode("retryCount", as: Int.self) == 1)
        let logs = try #require(try deployment.json(row.text("logs")) as? [[String: Any]])
        #expect(
            logs.compactMap { $0["event"] as? String } == ["claimed", "rescued", "claimed", "completed"],
            "\(logs)\n\(served.stderr)")
    }

    @Test func crashedChildIsRetriedThenSucceeds() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let daemon = try await startWhileRunning(deployment, job: id, ["--until-idle"])
        // As the kernel's OOM killer or a decoder crash would end it.
        let running = children(of: deployment)
        #expect(running.count == 1)
        for child in running { kill(child, SIGKILL) }
        #expect(await daemon.wait(timeout: Self.encodeWait) == 0, "\(daemon.output)")
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "COMPLETED")
        #expect(try row.decode("retryCount", as: Int.self) == 1)
        let logs = try #require(try deployment.json(row.text("logs")) as? [[String: Any]])
        // The retry is claimed by the encode slot, or, when the fast lane looks first, parked
        // there for it (`queued`).
        let events = logs.compactMap { $0["event"] as? String }
        #expect(
            events == ["claimed", "retry", "claimed", "completed"]
                || events == ["claimed", "retry", "claimed", "queued", "claimed", "completed"], "\(events)")
        #expect((logs[1]["message"] as? String)?.hasPrefix("crashed: ") == true)
    }

    @Test func sigtermWithinTheGracePeriodLetsTheJobFinish() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let daemon = try await startWhileRunning(deployment, job: id, ["--shutdown-grace", "120"])
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: Self.encodeWait) == 0, "\(daemon.output)")
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "COMPLETED")
    }

    @Test(arguments: Route.allCases) func sigtermBeyondTheGracePeriodReleasesTheJob(_ route: Route) async throws {
        let deployment = try await Deployment.make(route)
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let daemon = try await startWhileRunning(deployment, job: id, ["--shutdown-grace", "0.2"])
        daemon.signal(SIGTERM)
        #expect(await daemon.wait(timeout: 30) == 0, "\(daemon.output)")
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "PENDING")
        #expect(try row.decode("retryCount", as: Int.self) == 0)
        let logs = try #require(try deployment.json(row.text("logs")) as? [[String: Any]])
        #expect(logs.last?["event"] as? String == "released")
        #expect(children(of: deployment).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).isEmpty)
    }

    @Test(arguments: Route.allCases) func cancelDuringARunStopsTheChildAndLeavesTheRowCancelled(_ route: Route)
        async throws
    {
        let deployment = try await Deployment.make(route)
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let daemon = try await startWhileRunning(deployment, job: id, ["--until-idle"])
        let cancelled = try await TestDatabase.query(
            deployment.databaseURL,
            "UPDATE video_processing SET \"status\" = 'CANCELLED' WHERE id = $1 AND \"status\" = 'PROCESSING' RETURNING id",
            [String(id)])
        try #require(cancelled.count == 1, "the job ended before it could be cancelled")
        #expect(await daemon.wait(timeout: 30) == 0, "\(daemon.output)")
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "CANCELLED")
        #expect(try row.text("outputStorageKeys") == nil)
        #expect(children(of: deployment).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).isEmpty)
    }

    /// The database restarts mid-run: the worker reconnects and the job still completes.
    @Test func databaseRestartMidRun() async throws {
        let cluster = try await TestDatabase.privateCluster()
        let deployment = try await Deployment(
            databaseURL: cluster.url, storage: try Fixtures.temporaryDirectory("store"),
            scratch: try Fixtures.temporaryDirectory("scratch"), route: .direct)
        let id = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION")
        let daemon = try await startWhileRunning(deployment, job: id, ["--until-idle"])
        try await onOwnThread { try cluster.restart() }
        #expect(await daemon.wait(timeout: Self.encodeWait) == 0, "\(daemon.output)")
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "COMPLETED")
        #expect(try row.decode("retryCount", as: Int.self) == 0)
    }
}
