/// Where a run takes place on a host: quick work never waits behind a long encode.
public enum Lane: String, Sendable, CaseIterable {
    /// Encode slots (`MEDIA_WORKER_CONCURRENCY`): any work, long passes included.
    case encode
    /// Fast-lane slots (`MEDIA_WORKER_FAST_SLOTS`): quick work only (THUMBNAIL, METADATA, the
    /// first look of a job with a long pass: reuse, probe, stills).
    case fast
}
