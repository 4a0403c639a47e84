import Foundation
import Media
import Queue

/// Publishes a running job's stills the moment the child hands them over: uploads them and, in
/// one fenced transaction, writes them to the job and upload rows and tells the app, while the
/// child goes on with the video. A chat bubble gets its picture within a second.
final class StillsPublisher: @unchecked Sendable {
    // @unchecked: `info` and `task` are only touched under `lock`.
    /// Stores one still of the run's job (from the folder given) and says where it is.
    typealias Upload = @Sendable (OutputFile, URL) async throws -> StoredOutput
    private let upload: Upload
    private let run: Run
    private let control: RunControl
    private let observe: @Sendable (JobRunner.Event) -> Void
    private let lock = NSLock()
    private var info: MediaInfo?
    private var task: Task<[OutputRole: StoredOutput], Never>?

    init(
        run: Run, upload: @escaping Upload, control: RunControl,
        observe: @escaping @Sendable (JobRunner.Event) -> Void
    ) {
        self.upload = upload
        self.run = run
        self.control = control
        self.observe = observe
    }

    /// What the child's probe found (sent before the stills).
    func probed(_ info: MediaInfo) { lock.withLock { self.info = info } }

    /// Starts publishing `files` (in `directory`), once.
    func publish(_ files: [OutputFile], from directory: URL, sha256: String) {
        lock.withLock {
            guard task == nil, let info else { return }
            task = Task { await self.write(files, from: directory, info: info, sha256: sha256) }
        }
    }

    /// Waits for the publishing to end; what was stored (empty if nothing was, or it failed: the
    /// final write-back then uploads them).
    func finished() async -> [OutputRole: StoredOutput] {
        await lock.withLock { task }?.value ?? [:]
    }

    private func write(_ files: [OutputFile], from directory: URL, info: MediaInfo, sha256: String) async
        -> [OutputRole: StoredOutput]
    {
        let (job, logger) = (run.job, run.logger)
        var stored: [OutputRole: StoredOutput] = [:]
        do {
            for file in files where file.role.isStill {
                if let problem = OutputCheck.problem(with: file, in: directory) {
                    logger.error("the media process reported a bad still", metadata: ["problem": "\(problem)"])
                    return [:]
                }
                stored[file.role] = try await upload(file, directory)
            }
            let stills = JobStore.OutputColumns(
                stored.values.sorted { $0.file.role < $1.file.role }, input: info, sha256: sha256)
            let event = run.event("stills", message: "poster and thumbnail published while the rest is made")
            let store = run.store
            let published = try await run.database.withSession("publish the stills") {
                try store.publishStills($0, job: job, stills, event: event)
            }
            guard published else {
                // Rescued, cancelled or reprocessed meanwhile: stop, write nothing more.
                control.fence()
                return [:]
            }
            run.metrics.timeToStills(run.elapsed)
            observe(.stillsPublished)
            return stored
        } catch is ClaimLost {
            control.fence()
            return [:]
        } catch {
            logger.warning(
                "could not publish the stills early; they come with the rest", metadata: ["error": "\(error)"])
            return [:]
        }
    }
}
