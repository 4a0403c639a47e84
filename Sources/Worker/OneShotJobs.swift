public import Foundation
public import Logging
public import Media
public import Queue
import Storage

/// What the one-shot commands do with jobs: put a local file in as the app would on upload
/// (`enqueue`, for local runs), and run one job now, whatever its state (`reprocess`).
public struct OneShotJobs: Sendable {
    let configuration: Configuration
    let storage: any Storage
    let logger: Logger

    public init(configuration: Configuration, logger: Logger) throws(ConfigurationError) {
        self.configuration = configuration
        storage = try configuration.makeStorage()
        self.logger = logger
    }

    /// Why a one-shot command could not go on.
    public enum Problem: Error, CustomStringConvertible {
        case noFile(String)
        case noJob(Int)
        case heldByWorker(Int)
        case claimedElsewhere(Int)

        public var description: String {
            switch self {
            case .noFile(let path): "no file at \(path)"
            case .noJob(let id): "no job \(id)"
            case .heldByWorker(let id): "job \(id) is being processed by a live worker; wait, or use --force"
            case .claimedElsewhere(let id): "job \(id) was claimed by another worker first"
            }
        }
    }

    /// Uploads `file` under a fresh `uploads/` key and inserts its upload (COMPLETED) and job rows;
    /// returns the job's id.
    public func enqueue(
        _ file: URL, type: ProcessingType, profile: QualityProfile?, userId: Int
    ) async throws -> Int {
        guard let size = try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int64 else {
            throw Problem.noFile(file.path)
        }
        let name = file.lastPathComponent
        let key =
            "uploads/\(UUID().uuidString.lowercased())/\(name.filter { $0.isLetter || $0.isNumber || "._-".contains($0) })"
        let mimeType = Self.mimeTypes[file.pathExtension.lowercased()] ?? "video/mp4"
        try await storage.upload(file, key: key, contentType: mimeType)
        let connection = configuration.connection(label: "enqueue", logger: logger)
        defer { Task { await connection.close() } }
        let store = JobStore(tables: configuration.tables)
        return try await connection.withSession("enqueue") { [storage] in
            try store.enqueue(
                $0, userId: userId, storageKey: key, storageUrl: storage.publicURL(for: key), fileName: name,
                mimeType: mimeType, fileSize: size, processingType: type, qualityProfile: profile
            ).jobId
        }
    }

    /// What the app would say an upload is, by its name (for local runs only: media-worker itself
    /// decides from the bytes).
    static let mimeTypes = ["mov": "video/quicktime", "webm": "video/webm", "mkv": "video/x-matroska"]

    /// Puts job `jobId` back to PENDING with a clean slate (from a live worker too, with
    /// `force`, which also makes it even when an earlier result could be reused), claims it and
    /// runs it here; `progress` sees 0…1.
    public func reprocess(
        _ jobId: Int, force: Bool, progress: @escaping @Sendable (Double) -> Void
    ) async throws -> (job: Job, ending: JobRunner.Ending) {
        let store = JobStore(tables: configuration.tables)
        let connection = configuration.connection(label: "reprocess", logger: logger)
        let me = WorkerIdentity.current
        let event = ProcessingLogEvent(
            event: "reprocess", attempt: 0, host: me.host, pid: me.pid, message: force ? "forced" : nil)
        let reset = try await connection.withSession("reset the job") {
            try store.resetForReprocess(
                $0, jobId: jobId, force: force, staleAfter: configuration.staleAfter, event: event)
        }
        switch reset {
        case .missing: throw Problem.noJob(jobId)
        case .heldByWorker: throw Problem.heldByWorker(jobId)
        case .reset: break
        }
        let claimed = try await connection.withSession("claim the job") { [configuration] in
            try store.claim(
                $0, retryBase: 0, uploadWait: configuration.uploadWait, host: me.host, pid: me.pid, jobId: jobId)
        }
        await connection.close()
        guard let job = claimed else { throw Problem.claimedElsewhere(jobId) }
        let runner = JobRunner(configuration: configuration, storage: storage, logger: logger)
        let ending = await runner.run(job, threads: 0, reuse: !force) { event in
            if case .progress(let fraction) = event { progress(fraction) }
        }
        return (job, ending)
    }
}
