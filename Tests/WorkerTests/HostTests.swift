import Foundation
import Queue
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// GET `url`: status and body.
func fetch(_ url: String) async throws -> (Int, String) {
    try await withCheckedThrowingContinuation { continuation in
        URLSession.shared.dataTask(with: URL(string: url)!) { data, response, error in
            if let response = response as? HTTPURLResponse {
                continuation.resume(returning: (response.statusCode, String(decoding: data ?? Data(), as: UTF8.self)))
            } else {
                continuation.resume(throwing: error ?? TestSupportError("no response from \(url)"))
            }
        }.resume()
    }
}

/// The value of a Prometheus sample line `name{labels} value` (labels in the exporter's order).
func sample(_ metrics: String, _ series: String) -> Double? {
    metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }
        .flatMap { Double($0.split(separator: " ").last ?? "") }
}

@Suite("serve on a media host: sd_notify, metrics, health, logs, doctor", .heavy)
struct HostTests {
    @Test func notifiesSystemdServesMetricsAndLogsOneLinePerEvent() async throws {
        let deployment = try await Deployment.make()
        let good = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let bad = try await deployment.enqueue("truncated.mp4", type: "METADATA")
        // A job whose upload has not finished stays PENDING: the one the depth gauge counts.
        let waiting = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        try await TestDatabase.query(
            deployment.databaseURL,
            "UPDATE file_upload SET \"status\" = 'UPLOADING' WHERE id = (SELECT \"fileUploadId\" FROM video_processing WHERE id = $1)",
            [String(waiting)])
        let notify = try DatagramListener()
        let port = try freePort()
        let log = deployment.scratch.appendingPathComponent("serve.log")
        let password = "NotReallyUsed42"
        let server = try BackgroundProgram(
            Fixtures.executable, ["serve"],
            environment: deployment.environment.merging([
                "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000", "MEDIA_WORKER_LOG_LEVEL": "info",
                "MEDIA_WORKER_METRICS_ADDR": "127.0.0.1:\(port)",
                // Trust authentication ignores it; it must still never be printed.
                "DATABASE_URL": deployment.databaseURL + "&password=\(password)",
            ]) { $1 }, log: log)

        #expect(
            try await eventually(timeout: 30) {
                try await [good, bad].asyncMap { try await deployment.job($0).text("status") } == [
                    "COMPLETED", "FAILED",
                ]
            })
        #expect(await notify.wait(timeout: 10) { $0 == "WATCHDOG=1" })
        // Depth is sampled every 5 s: wait for a sample taken after both jobs ended.
        #expect(
            try await eventually(timeout: 12) {
                let metrics = try await fetch("http://127.0.0.1:\(port)/metrics").1
                return sample(metrics, #"media_worker_queue_depth{status="PROCESSING"}"#) == 0
                    && sample(metrics, #"media_worker_queue_depth{status="PENDING"}"#) == 1
            })

        let (status, metrics) = try await fetch("http://127.0.0.1:\(port)/metrics")
        #expect(status == 200)
        #expect(sample(metrics, #"media_worker_jobs_finished_total{type="METADATA",outcome="completed"}"#) == 1)
        #expect(sample(metrics, #"media_worker_jobs_finished_total{type="METADATA",outcome="failed"}"#) == 1)
        #expect(sample(metrics, #"media_worker_job_duration_seconds_count{type="METADATA"}"#) == 2)
        #expect(sample(metrics, #"media_worker_stage_duration_seconds_count{stage="download"}"#) == 2)
        #expect((sample(metrics, "media_worker_input_bytes_total") ?? 0) > 100_000)
        #expect(sample(metrics, #"media_worker_queue_depth{status="PENDING"}"#) == 1)
        #expect(
            sample(metrics, #"media_worker_queue_depth{status="COMPLETED"}"#) == nil, "finished jobs are not counted")
        #expect(sample(metrics, "media_worker_jobs_running") == 0)
        let health = try await fetch("http://127.0.0.1:\(port)/healthz")
        let ready = try await fetch("http://127.0.0.1:\(port)/readyz")
        #expect(health.0 == 200 && health.1.hasPrefix("ok"))
        #expect(ready.0 == 200)

        server.signal(SIGTERM)
        #expect(await server.wait(timeout: 30) == 0)
        let messages = notify.messages
        let readyIndex = try #require(messages.firstIndex { $0.hasPrefix("READY=1\n") })
        let firstWatchdog = try #require(messages.firstIndex(of: "WATCHDOG=1"))
        let stopping = try #require(messages.firstIndex { $0.hasPrefix("STOPPING=1\n") })
        #expect(readyIndex < firstWatchdog && firstWatchdog < stopping)
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 2)
        #expect(messages[stopping].contains("EXTEND_TIMEOUT_USEC="))
        #expect(messages.contains { $0.hasPrefix("STATUS=") && $0.contains("1 completed, 1 failed") })
        #expect(messages.contains { $0.contains("last error: job \(bad): corrupt_input") })

        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.contains { $0.contains(#"msg="job started" job=\#(good) type=METADATA attempt=1 "#) })
        #expect(
            lines.contains {
                $0.contains(#"msg="job failed" job=\#(bad) type=METADATA attempt=1 error="corrupt_input"#)
            })
        #expect(lines.allSatisfy { $0.hasPrefix("time=") && $0.contains(" level=") && $0.contains(" msg=") })
        #expect(!lines.contains { $0.contains(password) })
    }

    /// The database stops: watchdog pings stop and /healthz turns 503 once it has been gone for the
    /// stale-after time; it comes back: both recover without a restart.
    @Test func watchdogOnlyWhileTheDatabaseAnswers() async throws {
        let cluster = try await TestDatabase.privateCluster()
        let deployment = try await Deployment(
            databaseURL: cluster.url, storage: try Fixtures.temporaryDirectory("store"),
            scratch: try Fixtures.temporaryDirectory("scratch"), route: .direct)
        let notify = try DatagramListener()
        let port = try freePort()
        let server = try BackgroundProgram(
            Fixtures.executable, ["serve"],
            environment: deployment.environment.merging([
                "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000", "MEDIA_WORKER_STALE_AFTER": "2",
                "MEDIA_WORKER_METRICS_ADDR": "127.0.0.1:\(port)",
            ]) { $1 }, log: deployment.scratch.appendingPathComponent("serve.log"))
        defer { server.signal(SIGKILL) }
        #expect(await notify.wait(timeout: 20) { $0 == "WATCHDOG=1" })

        try await onOwnThread { try cluster.stop() }
        #expect(
            try await eventually(timeout: 15) {
                let (status, body) = try await fetch("http://127.0.0.1:\(port)/healthz")
                return status == 503 && body.contains("database unanswered")
            })
        // No ping while it is gone: none in six watchdog intervals.
        let down = notify.messages.count
        #expect(await !notify.wait(timeout: 1.2, from: down) { $0 == "WATCHDOG=1" })

        try await onOwnThread { try cluster.start() }
        #expect(await notify.wait(timeout: 20, from: down) { $0 == "WATCHDOG=1" })
        #expect(try await fetch("http://127.0.0.1:\(port)/healthz").0 == 200)
        server.signal(SIGTERM)
        #expect(await server.wait(timeout: 30) == 0)
    }

    /// SIGTERM while the database is away and jobs run: the daemon stops within its grace and a
    /// few seconds, not after minutes of reconnecting (its jobs are rescued later by heartbeat).
    @Test func stopsPromptlyWhileTheDatabaseIsAway() async throws {
        let cluster = try await TestDatabase.privateCluster()
        let deployment = try await Deployment(
            databaseURL: cluster.url, storage: try Fixtures.temporaryDirectory("store"),
            scratch: try Fixtures.temporaryDirectory("scratch"), route: .direct)
        let jobs = [
            try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION", profile: "ULTRA"),
            try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION", profile: "HIGH"),
        ]
        let server = try BackgroundProgram(
            Fixtures.executable, ["serve", "--concurrency", "2"],
            environment: deployment.environment.merging(["MEDIA_WORKER_SHUTDOWN_GRACE": "2"]) { $1 },
            log: deployment.scratch.appendingPathComponent("serve.log"))
        defer { server.signal(SIGKILL) }
        #expect(
            try await eventually(timeout: 30) {
                try await jobs.asyncMap { try await deployment.job($0).text("status") } == ["PROCESSING", "PROCESSING"]
            })
        try await onOwnThread { try cluster.stop() }
        let stopping = ContinuousClock.now
        server.signal(SIGTERM)
        #expect(await server.wait(timeout: 60) == 0)
        let took = ContinuousClock.now - stopping
        #expect(took < .seconds(15), "stopped after \(took)")
        try await onOwnThread { try cluster.start() }
    }

    @Test func jsonLogsCarryJournaldPriorities() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let result = try await deployment.run(
            "serve", "--until-idle", "--log-format", "json",
            extra: ["JOURNAL_STREAM": "8:12345", "MEDIA_WORKER_LOG_LEVEL": "info"])
        #expect(result.status == 0, "\(result.stderr)")
        var ended: [String: String]?
        for line in result.stderr.split(separator: "\n") {
            let priority = try #require(line.firstMatch(of: /^<([0-7])>/), "\(line)")
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.dropFirst(priority.0.count).utf8)) as? [String: String]
            )
            #expect(object["time"] == nil)  // journald stamps entries itself
            if object["msg"] == "job ended" { ended = object }
        }
        #expect(ended?["job"] == "\(id)" && ended?["type"] == "METADATA" && ended?["outcome"] == "completed")
    }

    @Test func doctorPassesOnAGoodHostAndSaysWhatToFix() async throws {
        let deployment = try await Deployment.make()
        let good = try await deployment.run("doctor", "--min-free-space", "1M")
        let goodText = String(decoding: good.stdout, as: UTF8.self)
        #expect(good.status == 0, "\(goodText)")
        #expect(goodText.contains("all 17 checks passed"), "\(goodText)")
        #expect(
            goodText.contains(
                "✔ migrations        own tables at version \(JobStore.ownSchemaVersion), as this binary expects"),
            "\(goodText)")
        #expect(goodText.contains("✔ sweep             deleted uploads' outputs go within 600 s"), "\(goodText)")
        #expect(goodText.contains("media_worker_paused_types\": nothing paused"), "\(goodText)")
        #expect(goodText.contains("✔ tls               no TLS, Unix socket in /"), "\(goodText)")
        #expect(goodText.contains("✔ privileges        the database user may read and update jobs and uploads"))
        #expect(goodText.contains("✔ encoders          libx264, aac, mjpeg, libsvtav1"))
        #expect(goodText.contains("✔ variants          \"media_worker_variants\": a video reused 3 times"))
        #expect(goodText.contains("✔ job sandbox       Landlock ABI"), "\(goodText)")

        let noDatabase = try await deployment.run(
            "doctor", extra: ["DATABASE_URL": "postgresql://media:Secret99@127.0.0.1:1/app"])
        let noDatabaseText = String(decoding: noDatabase.stdout, as: UTF8.self)
        #expect(noDatabase.status == 1)
        #expect(noDatabaseText.contains("✘ database          cannot connect to postgresql://media:***@127.0.0.1:1/app"))
        #expect(noDatabaseText.contains("fix: check DATABASE_URL"))
        #expect(!noDatabaseText.contains("Secret99"))

        let readOnly = try await deployment.run(
            "doctor", extra: ["MEDIA_STORAGE_URL": "file:///proc/media-worker-store"])
        let readOnlyText = String(decoding: readOnly.stdout, as: UTF8.self)
        #expect(readOnly.status == 1)
        #expect(
            readOnlyText.contains(
                "✘ storage           storage unusable: cannot create /proc/media-worker-store: No such file or directory"
            ))
        #expect(readOnlyText.contains("fix: check MEDIA_STORAGE_URL names a folder this user can write"))

        // A user that may read but not write the app's uploads.
        let role = "mw_reader_\(UInt32.random(in: 0...UInt32.max))"
        try await TestDatabase.query(deployment.databaseURL, "CREATE ROLE \(role) LOGIN")
        try await TestDatabase.query(deployment.databaseURL, "GRANT SELECT, UPDATE ON video_processing TO \(role)")
        try await TestDatabase.query(
            deployment.databaseURL, "GRANT SELECT ON file_upload, \"user\", media_worker_outputs TO \(role)")
        let limited = try await deployment.run(
            "doctor",
            extra: [
                "DATABASE_URL": deployment.databaseURL.replacingOccurrences(of: "user=postgres", with: "user=\(role)")
            ])
        let limitedText = String(decoding: limited.stdout, as: UTF8.self)
        #expect(limited.status == 1)
        #expect(
            limitedText.contains(
                #"✘ privileges        the database user lacks UPDATE on "file_upload", INSERT on "media_worker_outputs", "#
                    + #"UPDATE on "media_worker_outputs""#), "\(limitedText)")

        // Own tables a step behind the binary: doctor says so, `migrate --own-tables-only` applies it.
        let latest = JobStore.ownSchemaVersion
        try await TestDatabase.query(
            deployment.databaseURL, "DELETE FROM media_worker_migrations WHERE \"version\" = $1", [String(latest)])
        let behind = try await deployment.run("doctor")
        #expect(behind.status == 1)
        #expect(
            String(decoding: behind.stdout, as: UTF8.self).contains(
                "✘ migrations        own tables at version \(latest - 1), this binary expects \(latest)"))
        let behindServe = try await deployment.run("serve", "--until-idle")
        #expect(behindServe.status == 0)
        #expect(behindServe.stderr.contains("own tables at version \(latest - 1), this binary expects \(latest)"))
        let migrated = try await deployment.run("migrate", "--own-tables-only")
        #expect(
            String(decoding: migrated.stdout, as: UTF8.self).hasPrefix(
                "applied step \(latest) of media-worker's own tables: \(JobStore.ownMigrations.last!.summary)\n"))
        #expect(try await deployment.run("doctor").status == 0)

        try await TestDatabase.query(deployment.databaseURL, #"ALTER TABLE video_processing DROP COLUMN "thumbnails""#)
        let oldSchema = try await deployment.run("doctor")
        #expect(oldSchema.status == 1)
        #expect(String(decoding: oldSchema.stdout, as: UTF8.self).contains(#"lacks column(s) "thumbnails""#))

        // The daemon refuses to start the same way (at once with --until-idle; systemd units wait).
        let serve = try await deployment.run(
            "serve", "--until-idle", extra: ["MEDIA_STORAGE_URL": "file:///proc/media-worker-store"])
        #expect(serve.status != 0)
        #expect(serve.stderr.contains("storage unusable: cannot create /proc/media-worker-store"))
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
