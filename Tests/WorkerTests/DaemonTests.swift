import Foundation
import Media
import Queue
import Storage
import TestSupport
import Testing

/// A database and a storage folder, driven through the real `media-worker` binary.
struct Deployment {
    /// The database, directly: what the tests read and write with.
    let databaseURL: String
    let storage: URL
    /// Where the daemon makes jobs' private folders (its own, so tests can check it is left empty).
    let scratch: URL
    /// What the daemon connects to: the database, or PgBouncer in front of it.
    let daemonURL: String
    let route: Route

    init(databaseURL: String, storage: URL, scratch: URL, route: Route) async throws {
        self.databaseURL = databaseURL
        self.storage = storage
        self.scratch = scratch
        self.route = route
        daemonURL = try await route.url(for: databaseURL)
    }

    static func make(_ route: Route = .direct) async throws -> Deployment {
        try await Deployment(
            databaseURL: try await TestDatabase.create(), storage: try Fixtures.temporaryDirectory("store"),
            scratch: try Fixtures.temporaryDirectory("scratch"), route: route)
    }

    var environment: [String: String] {
        var environment = [
            "PATH": "/usr/bin:/bin", "DATABASE_URL": daemonURL, "MEDIA_STORAGE_URL": storage.absoluteString,
            "MEDIA_WORKER_POLL_INTERVAL": "0.2", "MEDIA_WORKER_RETRY_BASE": "0", "MEDIA_WORKER_LOG_LEVEL": "warning",
            "MEDIA_WORKER_TMPDIR": scratch.path,
        ]
        if route == .pooled { environment["MEDIA_WORKER_POOL_MODE"] = "transaction" }
        return environment
    }

    func run(_ arguments: String..., extra: [String: String] = [:]) async throws -> ProgramResult {
        try await runProgramAsync(Fixtures.executable, arguments, environment: environment.merging(extra) { $1 })
    }

    /// `media-worker enqueue`; returns the job id.
    func enqueue(_ fixture: String, type: String = "FULL_PROCESSING", profile: String? = nil) async throws -> Int {
        var arguments = ["enqueue", Fixtures.path(fixture), "--type", type]
        if let profile { arguments += ["--profile", profile] }
        let result = try await runProgramAsync(Fixtures.executable, arguments, environment: environment)
        guard result.status == 0,
            let id = Int(String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw TestSupportError("enqueue failed: \(result.stderr)") }
        return id
    }

    func job(_ id: Int) async throws -> PostgresRow {
        try #require(
            try await TestDatabase.query(
                databaseURL,
                """
                SELECT "status"::text AS status, "progress", "retryCount", "errorMessage", "outputStorageKeys",
                    "outputUrls", "outputTotalSize", "outputMetadata"::text AS "outputMetadata",
                    "inputMetadata"::text AS "inputMetadata", "thumbnails"::text AS thumbnails,
                    "processingLogs"::text AS logs, "startedAt"::text AS "startedAt", "completedAt"::text AS "completedAt",
                    "actualDurationSeconds", "estimatedDurationSeconds", "fileUploadId"
                FROM video_processing WHERE "id" = $1
                """, [String(id)]
            ).first)
    }

    /// Every key under media-worker's prefix in the storage folder.
    func storedKeys() async throws -> [String] {
        try await LocalStorage(root: storage, publicBase: nil).list(prefix: "media-worker/").map(\.key)
    }

    func json(_ text: String?) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(try #require(text).utf8))
    }
}

@Suite("serve: the daemon end to end", .heavy)
struct DaemonTests {
    /// Which roles each processing type writes.
    /// The fixture is an iPhone-like HEVC clip that fits MEDIUM: COMPRESSION and FULL_PROCESSING
    /// also copy it as `video_hevc`.
    static let roles: [String: Set<String>] = [
        "METADATA": [], "THUMBNAIL": ["poster", "thumbnail"], "COMPRESSION": ["video", "video_hevc"],
        "PREVIEW": ["preview"], "FULL_PROCESSING": ["video", "video_hevc", "preview", "poster", "thumbnail"],
    ]

    @Test func everyProcessingTypeIsClaimedRunAndWrittenBack() async throws {
        let deployment = try await Deployment.make()
        var ids: [String: Int] = [:]
        for type in Self.roles.keys.sorted() {
            ids[type] = try await deployment.enqueue("portrait_hevc_rot90.mov", type: type)
        }
        // The app's own metadata keys must survive the merge.
        try await TestDatabase.query(
            deployment.databaseURL, "UPDATE file_upload SET \"metadata\" = '{\"app\": {\"keep\": true}}'")

        let served = try await deployment.run("serve", "--until-idle")
        #expect(served.status == 0, "\(served.stderr)")

        for (type, id) in ids {
            let row = try await deployment.job(id)
            let error = try row.text("errorMessage") ?? ""
            #expect(try row.text("status") == "COMPLETED", "\(type): \(error)")
            #expect(try row.decode("progress", as: Int.self) == 100)
            #expect(try row.text("errorMessage") == nil)
            #expect(try row.text("completedAt") != nil && row.text("startedAt") != nil)
            #expect(try row.decode("actualDurationSeconds", as: Int.self) != nil)
            #expect(try row.decode("estimatedDurationSeconds", as: Int.self) != nil)
            let keys = try #require(try deployment.json(row.text("outputStorageKeys")) as? [String: String])
            #expect(Set(keys.keys) == Self.roles[type]!, "\(type)")
            for (role, key) in keys {
                #expect(endsInRunKey(key, job: id, file: OutputRole(rawValue: role)!.fileName))
                #expect(FileManager.default.fileExists(atPath: deployment.storage.appendingPathComponent(key).path))
            }
            let urls = try #require(try deployment.json(row.text("outputUrls")) as? [String: String])
            #expect(Set(urls.keys) == Set(keys.keys))
            let total = try row.decode("outputTotalSize", as: Int64.self) ?? 0
            let onDisk = try keys.values.reduce(Int64(0)) {
                $0
                    + (try FileManager.default.attributesOfItem(
                        atPath: deployment.storage.appendingPathComponent($1).path)[.size] as! Int64)
            }
            #expect(total == onDisk)
            let input = try #require(try deployment.json(row.text("inputMetadata")) as? [String: Any])
            #expect((input["video"] as? [String: Any])?["rotation"] as? Int == 90)
            let metadata = try #require(try deployment.json(row.text("outputMetadata")) as? [String: [String: Any]])
            #expect(Set(metadata.keys) == Self.roles[type]!)
            if let video = metadata["video"] {
                #expect(video["width"] as? Int == 360 && video["height"] as? Int == 640)
                #expect(video["mimeType"] as? String == "video/mp4" && video["videoCodec"] as? String == "h264")
            }
            if let variant = metadata["video_hevc"] {
                #expect(variant["width"] as? Int == 360 && variant["height"] as? Int == 640)
                #expect(variant["videoCodec"] as? String == "hevc")
                #expect((variant["encoder"] as? [String: Any])?["path"] as? String == "remux")
            }
            let thumbnails = try deployment.json(row.text("thumbnails")) as? [[String: Any]] ?? []
            #expect(thumbnails.count == (Self.roles[type]!.contains("poster") ? 2 : 0))
            let logs = try #require(try deployment.json(row.text("logs")) as? [[String: Any]])
            // FULL_PROCESSING publishes its stills before the rest. A job with a long pass that
            // the fast lane took first (the encode slot was busy) had its first look there, then
            // waited for the slot.
            let whole = type == "FULL_PROCESSING" ? ["claimed", "stills", "completed"] : ["claimed", "completed"]
            let inTwo =
                ProcessingType(rawValue: type)!.hasLongPass ? [["claimed", "queued", "claimed", "completed"]] : []
            #expect(([whole] + inTwo).contains(logs.compactMap { $0["event"] as? String }), "\(type): \(logs)")
        }
        let uploads = try await TestDatabase.query(
            deployment.databaseURL, "SELECT \"metadata\"::text AS m, \"thumbnailUrl\" AS t FROM file_upload")
        for upload in uploads.all {
            let metadata = try #require(try deployment.json(upload.text("m")) as? [String: Any])
            #expect((metadata["app"] as? [String: Bool])?["keep"] == true)
            #expect(metadata["video"] != nil && metadata["processing"] != nil)
        }
        let variants = uploads.all.compactMap { try? deployment.json($0.text("m")) as? [String: Any] }
            .compactMap { $0["variants"] as? [String: [String: Any]] }
        #expect(variants.filter { $0["video_hevc"]?["mimeType"] as? String == "video/mp4" }.count == 2)
        let withPoster = uploads.all.filter { (try? $0.text("t")) != nil }
        #expect(withPoster.count == 2)  // THUMBNAIL and FULL_PROCESSING
    }

    @Test func jobRunsEndToEndWithS3Storage() async throws {
        let server = try await S3TestServer.shared()
        let deployment = try await Deployment.make()
        let prefix = "daemon-\(UUID().uuidString.lowercased().prefix(8))"
        let s3 = server.credentialEnvironment.merging(["MEDIA_STORAGE_URL": server.storageURL(prefix: prefix)]) { $1 }
        let enqueued = try await runProgramAsync(
            Fixtures.executable, ["enqueue", Fixtures.path("portrait_hevc_rot90.mov")],
            environment: deployment.environment.merging(s3) { $1 })
        let id = try #require(Int(String(decoding: enqueued.stdout, as: UTF8.self).trimmingCharacters(in: .newlines)))

        let served = try await deployment.run("serve", "--until-idle", extra: s3)
        #expect(served.status == 0, "\(served.stderr)")
        #expect(!served.stderr.contains(server.secretAccessKey))

        let row = try await deployment.job(id)
        let error = try row.text("errorMessage") ?? ""
        #expect(try row.text("status") == "COMPLETED", "\(error)")
        let keys = try #require(try deployment.json(row.text("outputStorageKeys")) as? [String: String])
        let urls = try #require(try deployment.json(row.text("outputUrls")) as? [String: String])
        #expect(Set(keys.keys) == Self.roles["FULL_PROCESSING"]!)
        let storage = S3Storage(
            location: try S3Location(url: server.storageURL(prefix: prefix)),
            credentials: S3Credentials(accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey),
            publicBase: nil)
        let folder = try Fixtures.temporaryDirectory("s3-daemon")
        defer { try? FileManager.default.removeItem(at: folder) }
        for (role, key) in keys {
            #expect(urls[role] == "\(server.endpoint)/\(server.bucket)/\(prefix)/\(key)")
            let info = try await storage.info(key: key)
            #expect(info.contentType == (role.hasPrefix("video") || role == "preview" ? "video/mp4" : "image/jpeg"))
        }
        // The transcode is in the bucket, upright and whole.
        let video = folder.appendingPathComponent("video.mp4")
        try await storage.download(key: try #require(keys["video"]), to: video, expectedSize: nil)
        if let probe = try FFprobe.describe(video.path) {
            let stream = (probe["streams"] as? [[String: Any]])?.first { $0["codec_type"] as? String == "video" }
            #expect(stream?["width"] as? Int == 360 && stream?["height"] as? Int == 640)
        }
    }

    /// On S3: N forwards of one video store its bytes once (they share the first job's objects);
    /// the audit walks the bucket and names a stray object (as a run that lost its claim would
    /// leave) as unreferenced; the sweep removes it, then erases what deleted uploads left.
    @Test func forwardsStoreTheBytesOnceAndTheAuditSweepsTheBucket() async throws {
        let server = try await S3TestServer.shared()
        let deployment = try await Deployment.make()
        let prefix = "audit-\(UUID().uuidString.lowercased().prefix(8))"
        let s3 = server.credentialEnvironment.merging(["MEDIA_STORAGE_URL": server.storageURL(prefix: prefix)]) { $1 }
        var ids: [Int] = []
        for user in 1...4 {
            let enqueued = try await runProgramAsync(
                Fixtures.executable,
                ["enqueue", Fixtures.path("vp9_opus.webm"), "--type", "COMPRESSION", "--user-id", String(user)],
                environment: deployment.environment.merging(s3) { $1 })
            ids.append(
                try #require(Int(String(decoding: enqueued.stdout, as: UTF8.self).trimmingCharacters(in: .newlines))))
        }
        let served = try await deployment.run("serve", "--until-idle", extra: s3)
        #expect(served.status == 0, "\(served.stderr)")
        let storage = S3Storage(
            location: try S3Location(url: server.storageURL(prefix: prefix)),
            credentials: S3Credentials(accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey),
            publicBase: nil)
        let first = try await deployment.job(ids[0])
        let keys = storageKeys(try first.text("outputStorageKeys"))
        for id in ids {
            #expect(try await deployment.job(id).text("status") == "COMPLETED")
            #expect(storageKeys(try await deployment.job(id).text("outputStorageKeys")) == keys)
        }
        let stored = try await storage.list(prefix: "media-worker/")
        #expect(Set(stored.map(\.key)) == Set(keys.values))
        #expect(stored.reduce(Int64(0)) { $0 + $1.bytes } == (try first.decode("outputTotalSize", as: Int64.self)))

        let stray = "media-worker/jobs/\(ids[0])/20260101000000/video.mp4"
        try await storage.upload(
            URL(fileURLWithPath: Fixtures.path("no_audio.mp4")), key: stray, contentType: "video/mp4")
        let audit = try await deployment.run("storage", "audit", "--json", extra: s3)
        #expect(audit.status == 0, "\(audit.stderr)")
        let objects = try #require(
            (try JSONSerialization.jsonObject(with: audit.stdout) as? [String: Any])?["objects"] as? [[String: Any]])
        #expect(objects.count == keys.count + 1)
        #expect(
            objects.first { $0["key"] as? String == stray }?["reason"] as? String == "replaced"
                && objects.filter { $0["verdict"] as? String == "referenced" }.count == keys.count)

        let swept = try await deployment.run(
            "storage", "audit", "--sweep", extra: s3.merging(["MEDIA_WORKER_SWEEP_GRACE": "0"]) { $1 })
        #expect(swept.status == 0, "\(swept.stderr)")
        #expect(Set(try await storage.list(prefix: "media-worker/").map(\.key)) == Set(keys.values))

        try await TestDatabase.query(deployment.databaseURL, "UPDATE file_upload SET \"deletedAt\" = now()")
        let erased = try await deployment.run("storage", "audit", "--sweep", extra: s3)
        #expect(erased.status == 0, "\(erased.stderr)")
        #expect(String(decoding: erased.stdout, as: UTF8.self).contains("4 deleted uploads' jobs erased"))
        #expect(try await storage.list(prefix: "media-worker/").isEmpty)
        #expect(storageKeys(try await deployment.job(ids[3]).text("outputStorageKeys")).isEmpty)
    }

    /// A real 4K upload keeps the memory it needs: its child's address space, budgeted from the
    /// upload's 140 KB before parsing and from its 3840x2160 picture once probed, lets the job make
    /// its 720p video and its AV1 variant.
    @Test func a4KUploadIsMadeWithinItsMemoryBudget() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("uhd_hevc_1s.mp4", type: "COMPRESSION")
        let served = try await deployment.run(
            "serve", "--until-idle", extra: ["MEDIA_WORKER_EFFICIENT_VARIANT": "always"])
        #expect(served.status == 0, "\(served.stderr)")
        let row = try await deployment.job(id)
        let error = try row.text("errorMessage") ?? ""
        #expect(try row.text("status") == "COMPLETED", "\(error)")
        let metadata = try #require(try deployment.json(row.text("outputMetadata")) as? [String: [String: Any]])
        #expect(metadata["video"]?["height"] as? Int == 720 && metadata["video"]?["width"] as? Int == 1280)
        let variant = metadata["video_av1"]
        let leftOut = (metadata["video"]?["encoder"] as? [String: Any])?["why"] as? [String]
        #expect(
            variant?["videoCodec"] as? String == "av1"
                || leftOut?.contains { $0.hasPrefix("video_av1 left out: it came out") } == true)
    }

    @Test func badInputFailsOnceAndPointlessWorkIsCancelled() async throws {
        let deployment = try await Deployment.make()
        let corrupt = try await deployment.enqueue("truncated.mp4")
        let textFile = try await deployment.enqueue("not_a_video.mp4")
        let deletedUpload = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let deletedUser = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let waiting = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let url = deployment.databaseURL
        try await TestDatabase.query(
            url,
            "UPDATE file_upload SET \"deletedAt\" = now() WHERE id = (SELECT \"fileUploadId\" FROM video_processing WHERE id = $1)",
            [String(deletedUpload)])
        try await TestDatabase.query(url, "INSERT INTO \"user\" (id, \"deletedAt\") VALUES (2, now())")
        try await TestDatabase.query(
            url, "UPDATE video_processing SET \"userId\" = 2 WHERE id = $1", [String(deletedUser)])
        try await TestDatabase.query(
            url,
            "UPDATE file_upload SET \"status\" = 'UPLOADING' WHERE id = (SELECT \"fileUploadId\" FROM video_processing WHERE id = $1)",
            [String(waiting)])

        let served = try await deployment.run("serve", "--until-idle")
        #expect(served.status == 0, "\(served.stderr)")

        for (id, code) in [(corrupt, "corrupt_input"), (textFile, "unsupported")] {
            let row = try await deployment.job(id)
            #expect(try row.text("status") == "FAILED")
            #expect(try row.decode("retryCount", as: Int.self) == 0)
            let error = try row.text("errorMessage") ?? ""
            #expect(error.hasPrefix("\(code): "), "\(error)")
        }
        for id in [deletedUpload, deletedUser] {
            let row = try await deployment.job(id)
            #expect(try row.text("status") == "CANCELLED")
            #expect(try row.text("errorMessage")?.hasPrefix("cancelled: ") == true)
            #expect(try row.text("outputStorageKeys") == nil)
        }
        let row = try await deployment.job(waiting)
        #expect(try row.text("status") == "PENDING" && row.decode("retryCount", as: Int.self) == 0)
    }

    /// Four slots on three connections (one to LISTEN, one for the reuse locks, one shared):
    /// jobs run side by side, every one completes, and the server never sees a fourth connection.
    @Test func connectionsStayWithinTheBudget() async throws {
        let deployment = try await Deployment.make()
        var ids: [Int] = []
        // Two of them long enough (several seconds each) that four slots surely overlap, however
        // loaded the machine: short ones alone could each end before the next was claimed.
        let fixtures = [
            "long_hevc_720p_20s.mp4", "landscape_1080p_h264_aac.mp4", "vp9_opus.webm", "theora_vorbis.ogg",
            "mpeg4_mp3.avi",
        ]
        for fixture in fixtures {
            ids.append(try await deployment.enqueue(fixture, type: "COMPRESSION"))
        }
        let refused = try await deployment.run("serve", "--until-idle", extra: ["MEDIA_WORKER_MAX_CONNECTIONS": "2"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("MEDIA_WORKER_MAX_CONNECTIONS"), "\(refused.stderr)")
        #expect(refused.stderr.contains("at least 3 here"), "\(refused.stderr)")

        let server = try BackgroundProgram(
            Fixtures.executable, ["serve", "--until-idle", "--concurrency", "4"],
            environment: deployment.environment.merging(["MEDIA_WORKER_MAX_CONNECTIONS": "3"]) { $1 },
            log: deployment.scratch.appendingPathComponent("serve.log"))
        defer { server.signal(SIGKILL) }
        let pattern = "media-worker % \(server.pid) %"
        let sampler = Task { () throws -> (connections: Int, running: Int) in
            var most = (connections: 0, running: 0)
            while !Task.isCancelled {
                let row = try #require(
                    try await TestDatabase.query(
                        deployment.databaseURL,
                        """
                        SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                                AND application_name LIKE $1) AS connections,
                            (SELECT count(*) FROM video_processing WHERE "status" = 'PROCESSING') AS running
                        """, [pattern]
                    ).first)
                most.connections = max(most.connections, try row.decode("connections", as: Int.self) ?? 0)
                most.running = max(most.running, try row.decode("running", as: Int.self) ?? 0)
                try? await Task.sleep(for: .milliseconds(50))
            }
            return most
        }
        let status = await server.wait(timeout: 180)
        sampler.cancel()
        let (mostConnections, mostRunning) = try await sampler.value
        #expect(status == 0)
        #expect(mostConnections >= 2 && mostConnections <= 3, "\(mostConnections) connections")
        #expect(mostRunning >= 2, "jobs ran one at a time")
        for id in ids { #expect(try await deployment.job(id).text("status") == "COMPLETED") }
    }

    /// Through the pooler with a direct `MEDIA_WORKER_LISTEN_URL`: a new job is heard at once, not
    /// at the next poll (ten minutes away here).
    @Test func pooledDaemonHearsNewJobsOnItsListenURL() async throws {
        let deployment = try await Deployment.make(.pooled)
        let server = try BackgroundProgram(
            Fixtures.executable, ["serve"],
            environment: deployment.environment.merging([
                "MEDIA_WORKER_LISTEN_URL": deployment.databaseURL, "MEDIA_WORKER_POLL_INTERVAL": "600",
            ]) { $1 }, log: deployment.scratch.appendingPathComponent("serve.log"))
        defer { server.signal(SIGKILL) }
        // Listening once its listener connection (named by its pid) is there.
        let listener = "media-worker % \(server.pid) listener"
        #expect(
            try await eventually(timeout: 30) {
                let rows = try await TestDatabase.query(
                    deployment.databaseURL,
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1", [listener])
                return try rows.first?.decode("n", as: Int.self) == 1
            })
        let id = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        #expect(
            try await eventually(timeout: 20) { try await deployment.job(id).text("status") == "COMPLETED" },
            "the job waited for a poll")
    }

    /// Three daemons, fifty jobs: every job completed, each claimed exactly once.
    @Test(arguments: Route.allCases) func threeWorkersShareOneQueue(_ route: Route) async throws {
        let deployment = try await Deployment.make(route)
        let first = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        // The other 49 reuse the stored input (as many jobs on one upload would).
        try await TestDatabase.query(
            deployment.databaseURL,
            """
            INSERT INTO video_processing ("userId", "fileUploadId", "processingType", "inputStorageKey",
                "originalFileName", "inputMimeType", "inputFileSize")
            SELECT "userId", "fileUploadId", "processingType", "inputStorageKey", "originalFileName", "inputMimeType",
                "inputFileSize" FROM video_processing, generate_series(1, 49) WHERE id = $1
            """, [String(first)])
        let results = try await withThrowingTaskGroup(of: ProgramResult.self) { group in
            for _ in 0..<3 { group.addTask { try await deployment.run("serve", "--until-idle", "--concurrency", "2") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.status == 0 })
        let rows = try await TestDatabase.query(
            deployment.databaseURL,
            """
            SELECT "status"::text AS status, (SELECT count(*) FROM json_array_elements("processingLogs") e
                WHERE e->>'event' = 'claimed') AS claims, (SELECT count(DISTINCT e->>'pid') FROM json_array_elements("processingLogs") e) AS pids
            FROM video_processing
            """)
        #expect(rows.count == 50)
        #expect(
            try rows.all.allSatisfy { try $0.text("status") == "COMPLETED" && $0.decode("claims", as: Int.self) == 1 })
    }

    @Test(arguments: Route.allCases) func abandonedJobIsRescuedAndCompleted(_ route: Route) async throws {
        let deployment = try await Deployment.make(route)
        let id = try await deployment.enqueue("no_audio.mp4", type: "THUMBNAIL")
        // As a worker that died mid-job leaves it: PROCESSING, no heartbeat, nobody holding its lock.
        try await TestDatabase.query(
            deployment.databaseURL,
            """
            UPDATE video_processing SET "status" = 'PROCESSING', "startedAt" = now() - interval '5 minutes',
                "updatedAt" = now() - interval '5 minutes' WHERE id = $1
            """, [String(id)])
        let served = try await deployment.run("serve", "--until-idle", "--stale-after", "2")
        #expect(served.status == 0, "\(served.stderr)")
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "COMPLETED")
        #expect(try row.decode("retryCount", as: Int.self) == 1)
        let logs = try #require(try deployment.json(row.text("logs")) as? [[String: Any]])
        #expect(logs.compactMap { $0["event"] as? String } == ["rescued", "claimed", "completed"])
    }

    /// A reprocessed job gets new URLs (an object is never rewritten: a URL may be cached for
    /// ever); the old objects stay for the grace period, then a sweep removes them and nothing
    /// else.
    @Test func reprocessRunsACompletedJobAgainUnderNewURLs() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("portrait_rot90.mp4", type: "THUMBNAIL")
        #expect(try await deployment.run("serve", "--until-idle").status == 0)
        let before = try await deployment.job(id)
        #expect(try before.text("status") == "COMPLETED")
        let result = try await deployment.run("reprocess", String(id))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("completed"))
        let after = try await deployment.job(id)
        #expect(try after.text("status") == "COMPLETED")
        #expect(try after.text("startedAt") != before.text("startedAt"))
        let (old, new) = (
            storageKeys(try before.text("outputStorageKeys")), storageKeys(try after.text("outputStorageKeys"))
        )
        #expect(Set(old.keys) == ["poster", "thumbnail"] && Set(new.keys) == Set(old.keys))
        #expect(Set(old.values).isDisjoint(with: new.values))
        #expect(
            storageKeys(try after.text("outputUrls")).values.allSatisfy { !old.values.contains(where: $0.hasSuffix) })
        let logs = try #require(try deployment.json(after.text("logs")) as? [[String: Any]])
        #expect(
            logs.compactMap { $0["event"] as? String } == ["claimed", "completed", "reprocess", "claimed", "completed"])
        #expect(try await deployment.run("reprocess", "999999").status != 0)

        let stored = { Set(try await deployment.storedKeys()) }
        #expect(try await stored() == Set(old.values).union(new.values))
        // Within the grace period the old objects stay (a client may have just read their URLs).
        let audit = try await deployment.run("storage", "audit", "--sweep")
        #expect(audit.status == 0, "\(audit.stderr)")
        #expect(try await stored() == Set(old.values).union(new.values))
        let swept = try await deployment.run("storage", "audit", "--sweep", extra: ["MEDIA_WORKER_SWEEP_GRACE": "0"])
        #expect(swept.status == 0, "\(swept.stderr)")
        #expect(String(decoding: swept.stdout, as: UTF8.self).contains("2 unreferenced objects removed"))
        #expect(try await stored() == Set(new.values))
    }

    @Test func timeoutsAreRetriedThenFail() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("landscape_1080p_h264_aac.mp4", type: "COMPRESSION")
        let served = try await deployment.run(
            "serve", "--until-idle", extra: ["MEDIA_WORKER_JOB_TIMEOUT": "0.05", "MEDIA_WORKER_MAX_ATTEMPTS": "2"])
        #expect(served.status == 0, "\(served.stderr)")
        let row = try await deployment.job(id)
        #expect(try row.text("status") == "FAILED")
        #expect(try row.decode("retryCount", as: Int.self) == 1)
        #expect(try row.text("errorMessage")?.hasPrefix("timeout: ") == true)
        let logs = try #require(try deployment.json(row.text("logs")) as? [[String: Any]])
        #expect(logs.compactMap { $0["event"] as? String } == ["claimed", "retry", "claimed", "failed"])
        // Its private folders are gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).isEmpty)
    }
}
