public import Media

/// One line of JSON a job's child writes on its stdout for the daemon.
public struct ChildMessage: Codable, Sendable {
    /// 0…1 as work advances.
    public var progress: Double?
    /// What METADATA found, sent before the real work starts.
    public var probe: MediaInfo?
    /// The final report, on success.
    public var report: ProcessingReport?
    /// The failure, with its schema code.
    public var error: ErrorBody?
    /// How the child confined itself, sent before it reads the input.
    public var sandbox: SandboxReport?

    public struct ErrorBody: Codable, Sendable {
        public var code: String
        public var message: String
    }

    public init(
        progress: Double? = nil, probe: MediaInfo? = nil, report: ProcessingReport? = nil, error: ErrorBody? = nil,
        sandbox: SandboxReport? = nil
    ) {
        self.progress = progress
        self.probe = probe
        self.report = report
        self.error = error
        self.sandbox = sandbox
    }
}
