import Foundation

/// What storage must hold, as the rows say it: the statements of the storage sweep (erasure of
/// deleted uploads, the audit of every stored object) and of its fleet-wide lease. Rows change
/// first, storage after: a row never points at an object that is gone.
extension JobStore {
    // MARK: The lease

    /// Takes the sweep's lease for `holder` when nobody holds it and the last sweep ended at
    /// least `every` seconds ago (0: whenever free); it lapses by itself after `hold` seconds
    /// (a sweeper that died). One sweep at a time across the fleet, and one per interval in all,
    /// however many workers try.
    public func takeSweepLease(_ session: PostgresSession, holder: String, every: Double, hold: Double) throws -> Bool {
        try session.transaction("take the sweep lease") {
            try session.execute(
                "INSERT INTO \(tables.sweeps) (\"pass\") VALUES ('storage') ON CONFLICT DO NOTHING",
                operation: "take the sweep lease")
            return try session.execute(
                """
                UPDATE \(tables.sweeps) SET "holder" = $1, "heldUntil" = \(Self.now) + make_interval(secs => $3::float8)
                WHERE "pass" = 'storage' AND ("heldUntil" IS NULL OR "heldUntil" < \(Self.now))
                    AND ("lastRunAt" IS NULL OR "lastRunAt" <= \(Self.now) - make_interval(secs => $2::float8))
                """, [holder, String(every), String(hold)], operation: "take the sweep lease") == 1
        }
    }

    /// Extends the lease of `holder` by `hold` seconds from now (a sweep still going); false when
    /// it lapsed and another worker took it.
    public func renewSweepLease(_ session: PostgresSession, holder: String, hold: Double) throws -> Bool {
        try session.execute(
            """
            UPDATE \(tables.sweeps) SET "heldUntil" = \(Self.now) + make_interval(secs => $2::float8)
            WHERE "pass" = 'storage' AND "holder" = $1 AND "heldUntil" IS NOT NULL
            """, [holder, String(hold)], operation: "renew the sweep lease") == 1
    }

    /// Gives the lease back, recording that a sweep ran now.
    public func endSweepLease(_ session: PostgresSession, holder: String) throws {
        try session.execute(
            """
            UPDATE \(tables.sweeps) SET "heldUntil" = NULL, "lastRunAt" = \(Self.now)
            WHERE "pass" = 'storage' AND "holder" = $1
            """, [holder], operation: "end the sweep lease")
    }

    // MARK: Erasure

    /// Jobs with outputs that are no longer wanted: their upload was soft-deleted, or their
    /// user (oldest first, at most `limit`).
    public func jobsToErase(_ session: PostgresSession, limit: Int) throws -> [Int] {
        try session.query(
            """
            SELECT vp."id" FROM \(vp) AS vp WHERE \(Self.hasKeys("vp")) AND NOT (\(wanted("vp")))
            ORDER BY vp."id" LIMIT $1
            """, [String(limit)], operation: "find the outputs of deleted uploads"
        ).all.map { try $0.require("id") }
    }

    /// Erases the rows' side of the jobs `ids` (no longer wanted) in ONE transaction:
    /// each job's output columns are emptied (an `erased` event says what went), its upload loses
    /// `thumbnailUrl` and `metadata.video`/`variants` (and gets `metadata.erasedAt`), and what was
    /// kept for reuse or variant work from it is forgotten. Returns the keys no live row still
    /// names, which the caller then removes from storage (bytes shared with a live upload, a
    /// forward of the same video, stay theirs). The jobs' rows are locked first, so a forward
    /// recording a reuse of them (`complete`) is either seen here or refused.
    public func erase(_ session: PostgresSession, jobs ids: [Int], host: String, pid: Int32) throws -> [String] {
        guard !ids.isEmpty else { return [] }
        return try session.transaction("erase deleted uploads' outputs") {
            let list = try Self.json(ids)
            let named = try session.query(
                """
                SELECT vp."id", k.value AS key FROM \(vp) AS vp, \(Self.eachKey("vp")) AS k
                WHERE vp."id" IN (SELECT value::int FROM json_array_elements_text($1::json)) AND NOT (\(wanted("vp")))
                ORDER BY vp."id" FOR UPDATE OF vp
                """, [list], operation: "lock the jobs to erase"
            ).all.map { (try $0.require("id", as: Int.self), try $0.require("key", as: String.self)) }
            let keys = Array(Set(named.map(\.1))).sorted()
            let shared = try liveReferences(session, among: keys, except: ids)
            for id in Set(named.map(\.0)) {
                let mine = named.filter { $0.0 == id }.map(\.1)
                let event = ProcessingLogEvent(
                    event: "erased", attempt: 0, host: host, pid: pid,
                    message:
                        "the upload or its user was deleted: \(mine.filter { !shared.contains($0) }.count) outputs removed "
                        + "from storage, \(mine.filter(shared.contains).count) kept for a live upload of the same video"
                )
                try session.execute(
                    """
                    UPDATE \(vp) SET "outputStorageKeys" = '{}', "outputUrls" = '{}', "outputMetadata" = '{}'::json,
                        "thumbnails" = '[]'::json, "outputTotalSize" = 0, "updatedAt" = \(Self.now),
                        "processingLogs" = \(Self.appendLog(2))
                    WHERE "id" = $1
                    """, [String(id), try Self.json(event)], operation: "erase a job's outputs")
                try session.execute(
                    """
                    UPDATE \(tables.fileUpload) AS fu SET "thumbnailUrl" = NULL,
                        "metadata" = (COALESCE(fu."metadata"::jsonb, '{}') - 'video' - 'variants'
                            || jsonb_build_object('erasedAt', to_char(\(Self.now), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))::json
                    FROM \(vp) AS vp WHERE vp."id" = $1 AND fu."id" = vp."fileUploadId"
                    """, [String(id)], operation: "erase an upload's outputs")
                try session.execute(
                    "DELETE FROM \(tables.outputs) WHERE \"jobId\" = $1", [String(id)],
                    operation: "forget a deleted upload's result")
                try session.execute(
                    "DELETE FROM \(tables.variants) WHERE \"jobId\" = $1", [String(id)],
                    operation: "forget a deleted upload's variant work")
            }
            return keys.filter { !shared.contains($0) }
        }
    }

    /// Which of `keys` a live row (a wanted job other than `except`) still names.
    private func liveReferences(_ session: PostgresSession, among keys: [String], except: [Int]) throws -> Set<String> {
        guard !keys.isEmpty else { return [] }
        return Set(
            try session.query(
                """
                SELECT k.value AS key FROM \(vp) AS vp, \(Self.eachKey("vp")) AS k
                WHERE k.value IN (SELECT value FROM json_array_elements_text($1::json)) AND \(wanted("vp"))
                    AND vp."id" NOT IN (SELECT value::int FROM json_array_elements_text($2::json))
                """, [try Self.json(keys), try Self.json(except)], operation: "find outputs shared with live uploads"
            ).all.map { try $0.require("key", as: String.self) })
    }

    /// The live uploads whose `metadata.variants` names any of `keys`.
    public func uploadsNaming(_ session: PostgresSession, keys: [String]) throws -> [Int] {
        guard !keys.isEmpty else { return [] }
        return try session.query(
            """
            SELECT DISTINCT fu."id" FROM \(tables.fileUpload) AS fu, \(Self.eachVariant("fu")) AS v
            WHERE fu."deletedAt" IS NULL AND v.value ->> 'key' IN (SELECT value FROM json_array_elements_text($1::json))
            """, [try Self.json(keys)], operation: "find the uploads naming objects"
        ).all.map { try $0.require("id") }
    }

    /// Makes live uploads stop naming objects about to be removed (rows first): their entries in
    /// `metadata.variants` whose key is among `keys` go, and `thumbnailUrl` if it is among `urls`.
    public func forgetUploadReferences(_ session: PostgresSession, uploads: [Int], keys: [String], urls: [String])
        throws
    {
        guard !uploads.isEmpty else { return }
        try session.execute(
            """
            UPDATE \(tables.fileUpload) AS fu SET
                "metadata" = jsonb_set(fu."metadata"::jsonb, '{variants}', COALESCE((
                    SELECT jsonb_object_agg(v.key, v.value) FROM \(Self.eachVariant("fu")) AS v
                    WHERE NOT (v.value ->> 'key' IN (SELECT value FROM json_array_elements_text($2::json)))),
                    '{}'::jsonb))::json,
                "thumbnailUrl" = CASE WHEN fu."thumbnailUrl" IN (SELECT value FROM json_array_elements_text($3::json))
                    THEN NULL ELSE fu."thumbnailUrl" END,
                "updatedAt" = \(Self.now)
            WHERE fu."id" IN (SELECT value::int FROM json_array_elements_text($1::json))
            """, [try Self.json(uploads), try Self.json(keys), try Self.json(urls)],
            operation: "forget removed objects in the uploads")
    }

    // MARK: The audit

    /// Everything the rows say about storage at one instant (one repeatable-read snapshot).
    public struct StorageReferences: Sendable {
        /// Key → the jobs naming it, and whether any of them is live (wanted).
        public var jobKeys: [String: (jobs: [Int], live: Bool)] = [:]
        /// Key → the live uploads naming it in `metadata.variants` (a mirror of their jobs' rows:
        /// cleaned before an object no job row names is removed).
        public var uploadKeys: [String: [Int]] = [:]
        /// Job id → its claim token, for every PROCESSING job (its run's objects are in flight).
        public var running: [Int: String] = [:]
        /// Job id → the claim tokens of its PROCESSING variant work.
        public var variantWork: [Int: Set<String>] = [:]
        /// Of the job ids asked about: those whose row exists, and whether it is wanted.
        public var jobs: [Int: Bool] = [:]
        /// Unreferenced keys already noticed by an earlier sweep, and since when (seconds ago).
        public var unreferencedFor: [String: Double] = [:]

        public init() {}
    }

    /// The references to storage, with the rows of `jobIds` (the jobs stored objects belong to).
    public func storageReferences(_ session: PostgresSession, jobIds: Set<Int>) throws -> StorageReferences {
        try session.transaction("read what the rows reference") {
            try session.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", operation: "take one snapshot")
            var references = StorageReferences()
            for row in try session.query(
                """
                SELECT vp."id", k.value AS key, \(wanted("vp")) AS live
                FROM \(vp) AS vp, \(Self.eachKey("vp")) AS k WHERE \(Self.hasKeys("vp"))
                """, operation: "read the jobs' keys"
            ).all {
                let key: String = try row.require("key")
                var entry = references.jobKeys[key] ?? ([], false)
                entry.jobs.append(try row.require("id"))
                entry.live = try entry.live || row.require("live", as: Bool.self)
                references.jobKeys[key] = entry
            }
            for row in try session.query(
                """
                SELECT fu."id", v.value ->> 'key' AS key FROM \(tables.fileUpload) AS fu, \(Self.eachVariant("fu")) AS v
                WHERE fu."deletedAt" IS NULL AND v.value ->> 'key' IS NOT NULL
                """, operation: "read the uploads' variant keys"
            ).all {
                references.uploadKeys[try row.require("key"), default: []].append(try row.require("id"))
            }
            for row in try session.query(
                "SELECT \"id\", \"startedAt\"::text AS token FROM \(vp) WHERE \"status\" = 'PROCESSING'",
                operation: "read the running jobs"
            ).all {
                references.running[try row.require("id")] = try row.decode("token") ?? ""
            }
            for row in try session.query(
                "SELECT \"jobId\", \"token\" FROM \(tables.variants) WHERE \"status\" = 'PROCESSING' AND \"token\" IS NOT NULL",
                operation: "read the running variant work"
            ).all {
                references.variantWork[try row.require("jobId"), default: []].insert(try row.require("token"))
            }
            for row in try session.query(
                """
                SELECT vp."id", \(wanted("vp")) AS live FROM \(vp) AS vp
                WHERE vp."id" IN (SELECT value::int FROM json_array_elements_text($1::json))
                """, [try Self.json(jobIds.sorted())], operation: "read the jobs of stored objects"
            ).all {
                references.jobs[try row.require("id")] = try row.require("live", as: Bool.self)
            }
            for row in try session.query(
                """
                SELECT "key", EXTRACT(EPOCH FROM \(Self.now) - "since")::float8 AS age FROM \(tables.unreferenced)
                """, operation: "read the unreferenced objects"
            ).all {
                references.unreferencedFor[try row.require("key")] = try row.require("age", as: Double.self)
            }
            return references
        }
    }

    /// Records which objects are unreferenced now (`keys`, with their sizes): new ones from now,
    /// earlier ones keep their time; objects no longer in the list are forgotten.
    public func noteUnreferenced(_ session: PostgresSession, _ objects: [String: Int64]) throws {
        try session.transaction("note the unreferenced objects") {
            let list = try Self.json(objects)
            try session.execute(
                """
                DELETE FROM \(tables.unreferenced) WHERE NOT ($1::jsonb ? "key")
                """, [list], operation: "forget objects referenced again or gone")
            try session.execute(
                """
                INSERT INTO \(tables.unreferenced) ("key", "bytes", "since")
                SELECT key, value::text::bigint, \(Self.now) FROM jsonb_each($1::jsonb)
                ON CONFLICT ("key") DO NOTHING
                """, [list], operation: "note unreferenced objects")
        }
    }

    /// Forgets objects removed from storage.
    public func forgetUnreferenced(_ session: PostgresSession, keys: [String]) throws {
        guard !keys.isEmpty else { return }
        try session.execute(
            "DELETE FROM \(tables.unreferenced) WHERE \"key\" IN (SELECT value FROM json_array_elements_text($1::json))",
            [try Self.json(keys)], operation: "forget removed objects")
    }

    /// Removes rows of media-worker's own tables that point at nothing any more: pieces of runs
    /// that no longer hold their job (a coordinator that died), and results kept for reuse whose
    /// job was reprocessed, failed or deleted since.
    public func forgetDeadRows(_ session: PostgresSession) throws {
        try session.execute(
            """
            DELETE FROM \(tables.pieces) AS p WHERE NOT EXISTS (SELECT 1 FROM \(vp) AS vp
                WHERE vp."id" = p."jobId" AND vp."status" = 'PROCESSING' AND vp."startedAt"::text = p."run")
            """, operation: "forget the pieces of dead runs")
        try session.execute(
            """
            DELETE FROM \(tables.outputs) AS o WHERE NOT EXISTS (SELECT 1 FROM \(vp) AS vp
                WHERE vp."id" = o."jobId" AND vp."status" = 'COMPLETED' AND vp."completedAt" = o."completedAt")
            """, operation: "forget results that no longer stand")
    }

    /// SQL: the job row `row` names outputs (`outputStorageKeys` holds a JSON object).
    private static func hasKeys(_ row: String) -> String {
        "(\(row).\"outputStorageKeys\" LIKE '{%' AND \(row).\"outputStorageKeys\" <> '{}')"
    }

    /// SQL: the (key, value) rows of the job row `row`'s `outputStorageKeys` (none when it holds
    /// no JSON object).
    private static func eachKey(_ row: String) -> String {
        """
        LATERAL json_each_text(CASE WHEN \(row)."outputStorageKeys" LIKE '{%' THEN \(row)."outputStorageKeys"::json
            ELSE '{}'::json END)
        """
    }

    /// SQL: the (role, entry) rows of the upload row `row`'s `metadata.variants`.
    private static func eachVariant(_ row: String) -> String {
        """
        LATERAL jsonb_each(CASE WHEN jsonb_typeof(\(row)."metadata"::jsonb -> 'variants') = 'object'
            THEN \(row)."metadata"::jsonb -> 'variants' ELSE '{}'::jsonb END)
        """
    }
}
