/// The app's three table names and media-worker's seven own (configurable: apps rename them, and an
/// operator may keep media-worker's in a schema of their own), validated and quoted once.
public struct TableNames: Sendable, Equatable {
    /// Quoted, ready for SQL, e.g. `"public"."video_processing"`.
    public let videoProcessing: String
    public let fileUpload: String
    public let user: String
    /// media-worker's own table (never one of the app's): results kept for reuse by later jobs with
    /// the same bytes (forwarded videos).
    public let outputs: String
    /// media-worker's own table of processing types whose long pass operators paused fleet-wide.
    public let paused: String
    /// media-worker's own table of background work: efficient variants of popular videos.
    public let variants: String
    /// media-worker's own table of the pieces long videos are encoded in, by any worker.
    public let pieces: String
    /// media-worker's own table of stored objects no row references, and since when.
    public let unreferenced: String
    /// media-worker's own table holding the storage sweep's fleet-wide lease.
    public let sweeps: String
    /// media-worker's own table of the numbered steps its own tables went through.
    public let migrations: String

    /// Names may be schema-qualified (`app.video_processing`); anything but identifiers is refused.
    public init(
        videoProcessing: String = "video_processing", fileUpload: String = "file_upload", user: String = "user",
        outputs: String = "media_worker_outputs", paused: String = "media_worker_paused_types",
        variants: String = "media_worker_variants", pieces: String = "media_worker_pieces",
        unreferenced: String = "media_worker_unreferenced", sweeps: String = "media_worker_sweeps",
        migrations: String = "media_worker_migrations"
    ) throws {
        self.videoProcessing = try Self.quote(videoProcessing)
        self.fileUpload = try Self.quote(fileUpload)
        self.user = try Self.quote(user)
        self.outputs = try Self.quote(outputs)
        self.paused = try Self.quote(paused)
        self.variants = try Self.quote(variants)
        self.pieces = try Self.quote(pieces)
        self.unreferenced = try Self.quote(unreferenced)
        self.sweeps = try Self.quote(sweeps)
        self.migrations = try Self.quote(migrations)
    }

    public static let `default` = try! TableNames()

    private static func quote(_ name: String) throws -> String {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
            parts.allSatisfy({ part in
                guard let first = part.first, first == "_" || first.isLetter else { return false }
                return part.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber } && part.count <= 63
            })
        else {
            throw PostgresError(
                kind: .query, operation: "use table name \(name)", sqlState: nil,
                detail: "a table name is an identifier, optionally schema-qualified")
        }
        return parts.map { "\"\($0)\"" }.joined(separator: ".")
    }
}
