import Foundation
import Logging
import Queue
import Storage

/// Keeps storage exactly what the rows say. A sweep first erases what deleted uploads (or users)
/// left: their rows stop naming their outputs, then the objects no live row shares go. Then it
/// lists every object under `OutputKeys.prefix`, holds the list against one snapshot of the rows
/// (`StorageAudit`) and removes what no live row names: erased and piece objects at once, replaced
/// ones (a reprocess, a run that lost its claim) after `MEDIA_WORKER_SWEEP_GRACE`. Objects of runs
/// still holding their job are never touched. The fleet's workers take turns through a lease, so
/// one sweep runs at a time and one per `Configuration.sweepInterval` in all; `storage audit`
/// runs the same code by hand.
public struct StorageSweep: Sendable, WorkingWithContext {
    let context: WorkerContext

    public init(context: WorkerContext) {
        self.context = context
    }

    /// What one sweep (or audit) found and did.
    public struct Outcome: Sendable {
        public var audit: StorageAudit
        /// Jobs whose outputs were erased (their upload or user deleted), and the objects that went with them.
        public var erasedJobs: [Int] = []
        public var erasedObjects: [String] = []
        /// Objects removed for being unreferenced.
        public var removed: [StorageAudit.Entry] = []
        /// Keys live rows name whose object is not in storage (looked at twice).
        public var missing: [(key: String, jobs: [Int])] = []
        /// Removals that failed (they are tried again by the next sweep).
        public var failures: [String] = []
    }

    /// Audits storage; with `remove`, erases and removes what is due first (the sweep).
    public func run(remove: Bool) async throws -> Outcome {
        var erasedJobs: [Int] = []
        var erasedObjects: [String] = []
        var failures: [String] = []
        if remove {
            // Bounded per sweep, so one sweep cannot hold the lease for ever; the next goes on.
            for _ in 0..<20 {
                let (store, identity) = (store, identity)
                let ids = try await database.withSession("find the outputs of deleted uploads") {
                    try store.jobsToErase($0, limit: 50)
                }
                guard !ids.isEmpty else { break }
                let keys = try await database.withSession("erase deleted uploads' outputs") {
                    try store.erase($0, jobs: ids, host: identity.host, pid: identity.pid)
                }
                try await forgetInUploads(keys)
                erasedJobs += ids
                for key in keys {
                    do {
                        try await storage.delete(key: key)
                        erasedObjects.append(key)
                    } catch {
                        failures.append("\(key): \(error)")
                    }
                }
            }
        }
        // The listing comes before the snapshot: an object listed but recorded since is seen as
        // referenced, and no object can be recorded that the snapshot calls unreferenced (a run
        // records only its own keys, and only while it holds its job: those are in flight).
        let objects = try await storage.list(prefix: OutputKeys.prefix)
        let owners = Set(objects.compactMap { OutputKeys.owner(of: $0.key)?.jobId })
        let store = store
        let references = try await database.withSession("read what the rows reference") {
            try store.storageReferences($0, jobIds: owners)
        }
        let audit = StorageAudit(objects: objects, references: references)
        var outcome = Outcome(audit: audit, erasedJobs: erasedJobs, erasedObjects: erasedObjects)
        for candidate in audit.unlisted where try await storage.object(at: candidate.key) == nil {
            outcome.missing.append(candidate)
        }
        guard remove else {
            outcome.failures = failures
            return outcome
        }
        let unreferenced = Dictionary(
            audit.unreferenced.map { ($0.object.key, $0.object.bytes) }, uniquingKeysWith: { first, _ in first })
        try await database.withSession("note the unreferenced objects") {
            try store.noteUnreferenced($0, unreferenced)
        }
        // Rows first: live uploads stop naming what goes (their jobs' rows no longer do).
        let removable = audit.removable(grace: configuration.sweepGrace)
        try await forgetInUploads(
            removable.map(\.object.key),
            uploads: Set(removable.flatMap { references.uploadKeys[$0.object.key] ?? [] }).sorted())
        for entry in removable {
            do {
                try await storage.delete(key: entry.object.key)
                outcome.removed.append(entry)
            } catch {
                failures.append("\(entry.object.key): \(error)")
            }
        }
        let removed = outcome.removed.map(\.object.key)
        try await database.withSession("forget removed objects") {
            try store.forgetUnreferenced($0, keys: removed)
            try store.forgetDeadRows($0)
        }
        outcome.failures = failures
        return outcome
    }

    /// Makes live uploads stop naming `keys` (in `metadata.variants`, and as `thumbnailUrl`)
    /// before they are removed: `uploads`, or those a query finds.
    private func forgetInUploads(_ keys: [String], uploads known: [Int]? = nil) async throws {
        guard !keys.isEmpty else { return }
        let (store, urls) = (store, keys.map(storage.publicURL(for:)))
        try await database.withSession("forget removed objects in the uploads") {
            let uploads = try known ?? store.uploadsNaming($0, keys: keys)
            try store.forgetUploadReferences($0, uploads: uploads, keys: keys, urls: urls)
        }
    }

    /// `storage audit`: the audit, or with `remove` a sweep under the fleet's lease (refused while
    /// a worker is sweeping).
    public func runHoldingTheLease(remove: Bool) async throws -> Outcome {
        guard remove else { return try await run(remove: false) }
        guard let outcome = try await underTheLease(holder: "\(identity.name) storage audit", every: 0)
        else { throw SweepBusy() }
        return outcome
    }

    /// The daemon's turn: sweeps when this worker gets the fleet's lease (nobody else sweeping,
    /// and the last sweep at least `sweepInterval` ago); logs what it did.
    func runIfDue() async {
        let outcome: Outcome
        do {
            guard
                let swept = try await underTheLease(
                    holder: identity.name, every: configuration.sweepInterval)
            else { return }
            outcome = swept
        } catch {
            logger.warning("the storage sweep failed; the next one tries again", metadata: ["error": "\(error)"])
            return
        }
        let removedBytes = outcome.removed.reduce(Int64(0)) { $0 + $1.object.bytes }
        if !outcome.erasedJobs.isEmpty || !outcome.removed.isEmpty || !outcome.failures.isEmpty {
            logger.notice(
                "storage swept",
                metadata: [
                    "erasedJobs": "\(outcome.erasedJobs.count)", "erasedObjects": "\(outcome.erasedObjects.count)",
                    "removed": "\(outcome.removed.count)", "removedBytes": "\(removedBytes)",
                    "failures": "\(outcome.failures.count)",
                ])
        }
        for failure in outcome.failures.prefix(5) {
            logger.warning("could not remove an object; the next sweep tries again", metadata: ["error": "\(failure)"])
        }
        if let first = outcome.missing.first {
            logger.error(
                "rows name objects that are not in storage",
                metadata: ["count": "\(outcome.missing.count)", "first": "\(first.key)"])
        }
    }

    /// Sweeps while holding the fleet's lease, taken when free and due (`every` seconds since the
    /// last sweep). The lease lapses `staleAfter` seconds after its holder stops renewing it (a
    /// worker that died mid-sweep), and is renewed while the sweep goes on. Nil when the lease was
    /// not free.
    private func underTheLease(holder: String, every: Double) async throws -> Outcome? {
        let (store, hold) = (store, max(3, configuration.staleAfter))
        guard
            try await database.withSession(
                "take the sweep lease", { try store.takeSweepLease($0, holder: holder, every: every, hold: hold) })
        else { return nil }
        let renewal = Task { [database] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(hold / 3))
                if Task.isCancelled { return }
                _ = try? await database.withSession("renew the sweep lease") {
                    try store.renewSweepLease($0, holder: holder, hold: hold)
                }
            }
        }
        let outcome: Result<Outcome, any Error>
        do {
            outcome = .success(try await run(remove: true))
        } catch {
            outcome = .failure(error)
        }
        renewal.cancel()
        _ = try? await database.withSession("end the sweep lease") { try store.endSweepLease($0, holder: holder) }
        return try outcome.get()
    }
}

/// Another sweep holds the fleet's lease.
public struct SweepBusy: Error, CustomStringConvertible {
    public var description: String { "a worker is sweeping storage right now; try again in a minute" }
}
