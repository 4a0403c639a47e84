import Media

/// Where media-worker stores what it makes. Every run writes under keys no other run uses (the
/// claim's token is in the key), so a run that lost its claim (frozen, cut off from the database)
/// can only add objects beside the live run's, never change what a row points at; an object is
/// never rewritten, so its URL may be cached forever, and a reprocessed job gets new URLs.
///
/// ```
/// media-worker/jobs/<job id>/<run>/<role>.<ext>                  a run's outputs
/// media-worker/jobs/<job id>/<run>/pieces/<index>-<claim>.mp4    a long video's pieces
/// media-worker/jobs/<job id>/<run>/pieces/<index>-<claim>.tiles  and their storyboard tiles
/// media-worker/jobs/<job id>/variant-<claim>/video_av1.mp4       background variant work
/// ```
///
/// `<run>` is the job's claim token (its `startedAt`) in digits. What no row references is
/// removed by the sweep (`StorageSweep`).
public enum OutputKeys {
    /// Everything media-worker stores lives under this prefix.
    public static let prefix = "media-worker/jobs/"

    /// The run folder of a job's claim `token`: its digits, e.g. `20261207014210123456`.
    public static func run(_ token: String) -> String { token.filter(\.isNumber) }

    /// The folder of variant work claimed with `token`.
    public static func variantRun(_ token: String) -> String { "variant-\(token.lowercased())" }

    /// Where the run with claim `token` of job `jobId` stores `role`.
    static func output(jobId: Int, token: String, role: OutputRole) -> String {
        "\(prefix)\(jobId)/\(run(token))/\(role.fileName)"
    }

    /// Where the piece `index`, claimed with `claim`, of the run `token` of job `jobId` is stored.
    static func piece(jobId: Int, token: String, index: Int, claim: String) -> String {
        "\(prefix)\(jobId)/\(run(token))/pieces/\(index)-\(claim.lowercased().prefix(8)).mp4"
    }

    /// Where the storyboard tiles of the piece stored under `pieceKey` are stored, beside it.
    static func tiles(ofPiece pieceKey: String) -> String {
        (pieceKey.hasSuffix(".mp4") ? String(pieceKey.dropLast(4)) : pieceKey) + ".tiles"
    }

    /// Where variant work claimed with `claim` on the result of job `jobId` stores `role`.
    static func variant(jobId: Int, claim: String, role: OutputRole) -> String {
        "\(prefix)\(jobId)/\(variantRun(claim))/\(role.fileName)"
    }

    /// The folder holding every piece of the run `token` of job `jobId`.
    static func pieces(jobId: Int, token: String) -> String { "\(prefix)\(jobId)/\(run(token))/pieces/" }

    /// The job and run folder a key was stored under, or nil for a key outside this layout.
    /// Keys of the layout before runs were in keys (`jobs/<id>/<role>.<ext>`) have no run.
    public static func owner(of key: String) -> (jobId: Int, run: String?)? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, let jobId = Int(parts[0]) else { return nil }
        return (jobId, parts.count >= 3 ? String(parts[1]) : nil)
    }
}
