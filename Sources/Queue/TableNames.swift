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

    /// The names used when none is given, in the order of `init`'s parameters.
    public static let defaultNames = [
        "video_processing", "file_upload", "user", "media_worker_outputs", "media_worker_paused_types",
        "media_worker_variants", "media_worker_pieces", "media_worker_unreferenced", "media_worker_sweeps",
        "media_worker_migrations",
    ]

    /// Names may be schema-qualified (`app.video_processing`); anything but identifiers is refused;
    /// nil is the default name.
    public init(
        videoProcessing: String? = nil, fileUpload: String? = nil, user: String? = nil, outputs: String? = nil,
        paused: String? = nil, variants: String? = nil, pieces: String? = nil, unreferenced: String? = nil,
        sweeps: String? = nil, migrations: String? = nil
    ) throws {
        let names = try zip(
            [videoProcessing, fileUpload, user, outputs, paused, variants, pieces, unreferenced, sweeps, migrations],
            Self.defaultNames
        ).map { try Self.quote($0 ?? $1) }
        (self.videoProcessing, self.fileUpload, self.user, self.outputs, self.paused) =
            (names[0], names[1], names[2], names[3], names[4])
        (self.variants, self.pieces, self.unreferenced, self.sweeps, self.migrations) =
            (names[5], names[6], names[7], names[8], names[9])
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
