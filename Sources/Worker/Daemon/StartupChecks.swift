import JobChild
import Logging
import Observability
import Queue
import Storage

/// The start-up duty: the database, storage and confinement checked before any claim, and
/// media-worker's own tables looked for (what is missing turns its feature off, loudly).
struct StartupChecks: Sendable, WorkingWithContext {
    let context: WorkerContext
    let state: ServiceState
    let notifier: SystemdNotifier
    /// A run that ends when the queue is empty gives up at the first failure.
    let untilIdle: Bool

    /// Start-up: waits until the database answers, the storage can be written, read and deleted,
    /// and a job's child can be fully confined, saying what is wrong meanwhile (in the log and in
    /// systemd's status). `--until-idle` runs give up at the first failure instead.
    func waitForDependencies() async throws {
        var delay = 1.0
        while !state.isDraining {
            var problem: String
            do {
                _ = try await database.withSession("check the database") { try store.serverVersion($0) }
                do {
                    try await storage.check()
                    guard let sandboxProblem = await checkSandbox() else { return }
                    problem = sandboxProblem
                } catch {
                    problem = "\(error)"
                }
            } catch {
                problem = "database unreachable (\(configuration.redactedDatabaseURL)): \(error)"
            }
            if untilIdle { throw WorkerStartError(problem) }
            logger.error("not ready; retrying in \(Int(delay)) s", metadata: ["problem": "\(problem)"])
            notifier.status("not ready: \(problem)")
            // Short naps, so a stop is not kept waiting for the end of a long one.
            let wakeAt = ContinuousClock.now + .seconds(delay)
            while ContinuousClock.now < wakeAt, !state.isDraining { try? await Task.sleep(for: .milliseconds(100)) }
            delay = min(delay * 2, 30)
        }
    }

    /// Fail closed: starts a confined child as a job's is started and returns why it is not fully
    /// confined (then no job is claimed), or nil. With `MEDIA_WORKER_SANDBOX=partial` the
    /// operator accepted less: said loudly, and jobs run.
    func checkSandbox() async -> String? {
        let problem: String?
        do {
            problem = try await SandboxCheck.spawn(
                executable: configuration.childExecutable, temporaryDirectory: configuration.temporaryDirectory
            ).problem
        } catch {
            problem = "could not start a confined child: \(error)"
        }
        guard let problem else { return nil }
        if configuration.sandboxPolicy == .partial {
            logger.critical(
                "DANGEROUS: running jobs without a complete sandbox (MEDIA_WORKER_SANDBOX=partial)",
                metadata: ["problem": "\(problem)"])
            return nil
        }
        return "\(problem); fix: \(SandboxCheck.fix)"
    }

    /// Reuse of forwarded videos, pausing types and the storage sweep need media-worker's own
    /// tables: without them (an app database nobody ran `migrate --own-tables-only` on) every job
    /// is made, nothing is paused and storage is not swept, and the operator hears so once, as
    /// they hear when the tables' numbered steps are behind or ahead of this binary's.
    /// Returns whether the sweep's tables exist.
    func lookForOwnTables() async -> Bool {
        let (store, tables, database) = (store, configuration.tables, database)
        switch try? await database.withSession("read the schema version", { try store.schemaAgreement($0) }) {
        case let agreement? where agreement != .current(version: JobStore.ownSchemaVersion):
            logger.warning("\(agreement.description)", metadata: ["table": "\(tables.migrations)"])
        default: break
        }
        let present = { (table: String) async -> Bool in
            (try? await database.withSession("look for media-worker's own tables") {
                try store.hasTable($0, table)
            }) != false
        }
        if configuration.reuseOutputs, await !present(tables.outputs) {
            logger.warning(
                "reuse of forwarded videos is off: the outputs table does not exist (run `media-worker migrate --own-tables-only`)",
                metadata: ["table": "\(tables.outputs)"])
        }
        if await !present(tables.paused) {
            state.noPausedTable()
            logger.warning(
                "pausing processing types is off: the paused-types table does not exist (run `media-worker migrate --own-tables-only`)",
                metadata: ["table": "\(tables.paused)"])
        }
        if configuration.pieceSeconds > 0, await !present(tables.pieces) {
            state.noPiecesTable()
            logger.warning(
                "long videos are encoded in one pass: the pieces table does not exist (run `media-worker migrate --own-tables-only`)",
                metadata: ["table": "\(tables.pieces)"])
        }
        if configuration.variantAfterReuses > 0, await !present(tables.variants) {
            state.noVariantsTable()
            logger.warning(
                "variants of popular videos are off: the variants table does not exist (run `media-worker migrate --own-tables-only`)",
                metadata: ["table": "\(tables.variants)"])
        }
        guard await present(tables.unreferenced), await present(tables.sweeps) else {
            logger.warning(
                "storage is not swept (deleted uploads' outputs stay): its tables do not exist (run `media-worker migrate --own-tables-only`)",
                metadata: ["tables": "\(tables.unreferenced), \(tables.sweeps)"])
            return false
        }
        return true
    }
}
