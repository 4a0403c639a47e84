/// `media-worker migrate`: the app's three tables, their enum types and indexes as its ORM
/// (TypeORM) creates them, plus a trigger that notifies media-worker on insert, and media-worker's
/// own tables by their numbered steps (`OwnMigrations.swift`; production needs those too). The
/// app's tables are for local runs and tests only: in production the app owns them. Idempotent.
extension JobStore {
    @discardableResult
    public func migrate(_ session: PostgresSession) throws -> [OwnMigration] {
        let vpName = Self.unquotedLast(tables.videoProcessing)
        let fuName = Self.unquotedLast(tables.fileUpload)
        return try session.transaction("create the tables") {
            // Two workers migrating at once must not race on CREATE TYPE.
            try session.execute("SELECT pg_advisory_xact_lock(\(Self.lockNamespace), 0)", operation: "lock for migrate")
            for column in enumColumns {
                let list = column.values.map { "'\($0)'" }.joined(separator: ", ")
                try session.execute(
                    """
                    DO $$ BEGIN CREATE TYPE "\(column.typeName)" AS ENUM (\(list));
                    EXCEPTION WHEN duplicate_object THEN NULL; END $$
                    """, operation: "create enum types")
            }
            try session.execute(
                """
                CREATE TABLE IF NOT EXISTS \(tables.user) (
                    "id" SERIAL PRIMARY KEY,
                    "email" character varying,
                    "createdAt" TIMESTAMP NOT NULL DEFAULT now(),
                    "updatedAt" TIMESTAMP NOT NULL DEFAULT now(),
                    "deletedAt" TIMESTAMP
                )
                """, operation: "create the user table")
            try session.execute(
                """
                CREATE TABLE IF NOT EXISTS \(tables.fileUpload) (
                    "id" SERIAL PRIMARY KEY,
                    "uploaderId" integer NOT NULL REFERENCES \(tables.user)("id"),
                    "fileName" character varying NOT NULL,
                    "originalName" character varying NOT NULL,
                    "mimeType" character varying NOT NULL,
                    "fileSize" integer NOT NULL,
                    "storageKey" character varying NOT NULL UNIQUE,
                    "storageUrl" character varying NOT NULL,
                    "thumbnailUrl" character varying,
                    "metadata" json,
                    "status" "\(fuName)_status_enum" NOT NULL DEFAULT 'PENDING',
                    "createdAt" TIMESTAMP NOT NULL DEFAULT now(),
                    "updatedAt" TIMESTAMP NOT NULL DEFAULT now(),
                    "deletedAt" TIMESTAMP
                )
                """, operation: "create the file_upload table")
            try session.execute(
                """
                CREATE TABLE IF NOT EXISTS \(tables.videoProcessing) (
                    "id" SERIAL PRIMARY KEY,
                    "userId" integer REFERENCES \(tables.user)("id"),
                    "fileUploadId" integer REFERENCES \(tables.fileUpload)("id"),
                    "processingType" "\(vpName)_processingtype_enum" NOT NULL,
                    "status" "\(vpName)_status_enum" NOT NULL DEFAULT 'PENDING',
                    "qualityProfile" "\(vpName)_qualityprofile_enum",
                    "inputStorageKey" character varying NOT NULL,
                    "originalFileName" character varying NOT NULL,
                    "inputMimeType" character varying NOT NULL,
                    "inputFileSize" bigint NOT NULL,
                    "outputStorageKeys" text,
                    "outputTotalSize" bigint,
                    "outputUrls" text,
                    "progress" integer NOT NULL DEFAULT 0,
                    "estimatedDurationSeconds" integer,
                    "actualDurationSeconds" integer,
                    "inputMetadata" json,
                    "outputMetadata" json,
                    "thumbnails" json,
                    "errorMessage" text,
                    "processingLogs" json,
                    "retryCount" integer NOT NULL DEFAULT 0,
                    "isFromDeletedUser" boolean NOT NULL DEFAULT false,
                    "startedAt" TIMESTAMP,
                    "completedAt" TIMESTAMP,
                    "createdAt" TIMESTAMP NOT NULL DEFAULT now(),
                    "updatedAt" TIMESTAMP NOT NULL DEFAULT now()
                )
                """, operation: "create the video_processing table")
            let applied = try migrateOwnTables(session)
            try session.execute(
                """
                CREATE INDEX IF NOT EXISTS "IDX_\(vpName)_user_status" ON \(tables.videoProcessing) ("userId", "status")
                """, operation: "create indexes")
            try session.execute(
                """
                CREATE INDEX IF NOT EXISTS "IDX_\(vpName)_status_created" ON \(tables.videoProcessing) ("status", "createdAt")
                """, operation: "create indexes")
            // The one statement an app adds in production to get the same wake-up is the trigger
            // below (or `SELECT pg_notify('media_worker_jobs', NEW.id::text)` after its insert).
            try session.execute(
                """
                CREATE OR REPLACE FUNCTION media_worker_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_notify('\(Self.jobsChannel)', NEW."id"::text); RETURN NEW; END $$
                """, operation: "create the notify function")
            try session.execute(
                """
                DO $$ BEGIN
                    CREATE TRIGGER media_worker_notify_job AFTER INSERT ON \(tables.videoProcessing)
                    FOR EACH ROW EXECUTE FUNCTION media_worker_notify_job();
                EXCEPTION WHEN duplicate_object THEN NULL; END $$
                """, operation: "create the notify trigger")
            return applied
        }
    }

    /// The app's enum columns: their type names as TypeORM makes them, all their values (for
    /// `migrate`), and the values media-worker writes or compares with (for `doctor`).
    var enumColumns: [(table: String, column: String, typeName: String, values: [String], used: [String])] {
        let (vp, fu) = (tables.videoProcessing, tables.fileUpload)
        let (vpName, fuName) = (Self.unquotedLast(vp), Self.unquotedLast(fu))
        let types = ProcessingType.allCases.map(\.rawValue)
        let statuses = JobStatus.allCases.map(\.rawValue)
        let profiles = QualityProfile.allCases.map(\.rawValue)
        return [
            (vp, "processingType", "\(vpName)_processingtype_enum", types, types),
            (vp, "status", "\(vpName)_status_enum", statuses, statuses),
            (vp, "qualityProfile", "\(vpName)_qualityprofile_enum", profiles, profiles),
            (
                fu, "status", "\(fuName)_status_enum", UploadStatus.allCases.map(\.rawValue),
                [UploadStatus.completed.rawValue]
            ),
        ]
    }

    /// A quoted, maybe schema-qualified table name's own name: `"app"."file_upload"` → `file_upload`.
    static func unquotedLast(_ quoted: String) -> String {
        String(quoted.split(separator: ".").last!.dropFirst().dropLast())
    }
}
