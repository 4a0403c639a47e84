import Queue

/// Where a run takes place on a host: quick work never waits behind a long encode.
public enum Lane: String, Sendable, CaseIterable {
    /// Encode slots (`MEDIA_WORKER_CONCURRENCY`): any work, long passes included.
    case encode
    /// Fast-lane slots (`MEDIA_WORKER_FAST_SLOTS`): quick work only (THUMBNAIL, METADATA, the
    /// first look of a job with a long pass: reuse, probe, stills).
    case fast

    /// Slots of this lane on a host.
    func slots(_ configuration: Configuration) -> Int {
        switch self {
        case .encode: configuration.concurrency
        case .fast: configuration.fastSlots
        }
    }

    /// What a claim into this lane may take and how it chooses.
    func claimRules(_ configuration: Configuration, hasPausedTable: Bool) -> JobStore.ClaimRules {
        JobStore.ClaimRules(
            quickOnly: self == .fast, maxSlotsPerUploader: configuration.maxSlotsPerUploader,
            hasPausedTable: hasPausedTable)
    }

    /// Decoder/encoder threads for a job starting while `running` jobs run (itself included): the
    /// `cores` shared among the running jobs, at least two each, so a lone upload gets them all.
    static func threads(running: Int, cores: Int) -> Int { max(2, cores / max(1, running)) }
}
