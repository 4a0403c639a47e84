import Foundation
public import Queue
public import Storage

/// Every stored object held against what the rows say (a pure judgement: no I/O), and every
/// reference the rows make to an object that is not stored.
public struct StorageAudit: Sendable {
    /// What an object is to the rows.
    public enum Verdict: Sendable, Equatable {
        /// A live row names it: a wanted job's output columns (a live upload's
        /// `metadata.variants` mirrors its jobs' and keeps nothing alive by itself).
        case referenced
        /// Written by a run that still holds its job (or variant work still claimed): it may yet
        /// be recorded.
        case inFlight
        /// No live row names it.
        case unreferenced(Reason)
    }

    /// Why an object is unreferenced, which says how soon it goes.
    public enum Reason: String, Sendable, Equatable {
        case jobDeleted = "its job row was deleted"
        case uploadDeleted = "its upload (or its user) was deleted"
        case piece = "a piece of a run that has ended"
        case replaced = "no row names it: replaced by a newer run, or stored by a run that lost its claim"

        /// Removed at the first sweep that sees it: nobody may fetch it any more (erasure), or
        /// nobody ever could (pieces are never published). Only replaced objects get the grace
        /// period, for a client that has just read the old URL.
        public var removedAtOnce: Bool { self != .replaced }
    }

    public struct Entry: Sendable, Equatable {
        public var object: StoredObject
        public var verdict: Verdict
        /// How long an earlier sweep has known it unreferenced (seconds; 0 when first seen now).
        public var unreferencedFor: Double
    }

    public var entries: [Entry]
    /// Keys live rows name that are not among the stored objects (before a second look: an
    /// object stored and recorded after the listing shows up here too), with the jobs naming them.
    public var unlisted: [(key: String, jobs: [Int])]

    public init(objects: [StoredObject], references: JobStore.StorageReferences) {
        entries = objects.map { object in
            let verdict = Self.verdict(of: object.key, references)
            let known = if case .unreferenced = verdict { references.unreferencedFor[object.key] ?? 0 } else { 0.0 }
            return Entry(object: object, verdict: verdict, unreferencedFor: known)
        }
        let stored = Set(objects.map(\.key))
        unlisted = references.jobKeys
            .filter { $0.value.live && $0.key.hasPrefix(OutputKeys.prefix) && !stored.contains($0.key) }
            .map { (key: $0.key, jobs: $0.value.jobs.sorted()) }
            .sorted { $0.key < $1.key }
    }

    static func verdict(of key: String, _ references: JobStore.StorageReferences) -> Verdict {
        if references.jobKeys[key]?.live == true { return .referenced }
        guard let owner = OutputKeys.owner(of: key) else { return .unreferenced(.replaced) }
        if let run = owner.run {
            if run.hasPrefix("variant-"),
                references.variantWork[owner.jobId]?.contains(String(run.dropFirst(8))) == true
            {
                return .inFlight
            }
            if let token = references.running[owner.jobId], OutputKeys.run(token) == run { return .inFlight }
        } else if references.running[owner.jobId] != nil {
            // The layout before runs were in keys: a running job's fixed keys may yet be recorded.
            return .inFlight
        }
        switch references.jobs[owner.jobId] {
        case nil: return .unreferenced(.jobDeleted)
        case false?: return .unreferenced(.uploadDeleted)
        case true?: return .unreferenced(key.contains("/pieces/") ? .piece : .replaced)
        }
    }

    /// The unreferenced entries, by key → bytes (what the unreferenced table records).
    public var unreferenced: [Entry] {
        entries.filter { if case .unreferenced = $0.verdict { true } else { false } }
    }

    /// What a sweep removes now: erased and piece objects at once, replaced ones once they have
    /// been unreferenced for `grace` seconds.
    public func removable(grace: Double) -> [Entry] {
        unreferenced.filter {
            guard case .unreferenced(let reason) = $0.verdict else { return false }
            return reason.removedAtOnce || $0.unreferencedFor >= grace
        }
    }
}
