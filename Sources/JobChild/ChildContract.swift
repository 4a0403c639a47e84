import Foundation
public import JobVocabulary
public import Media

/// What the daemon asks a job's child to do: the media work itself (`media`, what `media-worker
/// process` runs too) and how the child is confined and budgeted. Built by the runners
/// (`ChildWork`), passed as the one argument of `media-worker run-job`, decoded there and nowhere
/// else.
public struct JobRequest: Codable, Sendable, Equatable {
    /// The media work: its input (inside the job's private folder), outputs, type, profile and
    /// settings.
    public var media: MediaProcessor.Request
    /// The daemon: the child dies with it, and stops at once if it is already gone.
    public var parentPID: Int32
    /// Address-space limit, in bytes.
    public var memoryBytes: Int64
    /// CPU-time ceiling, in seconds (lowered once the input is probed).
    public var cpuSeconds: Int
    /// `full`: the child stops before reading the input when it cannot confine itself completely.
    public var sandboxPolicy = SandboxPolicy.full
    /// Added to the child's nice value: an encode slot's long pass yields the CPU to the fast
    /// lane's quick work (and to the daemon), so a chat's stills do not wait for an encode.
    public var niceness = 0

    public init(media: MediaProcessor.Request, parentPID: Int32, memoryBytes: Int64, cpuSeconds: Int) {
        self.media = media
        self.parentPID = parentPID
        self.memoryBytes = memoryBytes
        self.cpuSeconds = cpuSeconds
    }

    /// The folder the child may write to, and nothing else.
    public var jobFolder: String { URL(fileURLWithPath: media.inputPath).deletingLastPathComponent().path }
}

/// One line of JSON a job's child writes on its stdout for the daemon. A new kind of message is a
/// new case (and a new key below), not a new optional field.
public enum ChildMessage: Sendable, Equatable {
    /// How the child confined itself, sent before it reads the input.
    case sandbox(SandboxReport)
    /// What METADATA found, sent before the real work starts.
    case probe(MediaInfo)
    /// The stills (poster, thumbnail), already in the output folder, before the long pass.
    case stills([OutputFile])
    /// 0…1 as work advances.
    case progress(Double)
    /// The final report, on success.
    case report(ProcessingReport)
    /// The failure, on failure.
    case failure(JobFailure)
}

extension ChildMessage: Codable {
    /// `{"kind": "<case>", "<case>": payload}`.
    private enum CodingKeys: String, CodingKey {
        case kind, sandbox, probe, stills, progress, report, failure
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch CodingKeys(stringValue: kind) {
        case .sandbox: self = .sandbox(try container.decode(SandboxReport.self, forKey: .sandbox))
        case .probe: self = .probe(try container.decode(MediaInfo.self, forKey: .probe))
        case .stills: self = .stills(try container.decode([OutputFile].self, forKey: .stills))
        case .progress: self = .progress(try container.decode(Double.self, forKey: .progress))
        case .report: self = .report(try container.decode(ProcessingReport.self, forKey: .report))
        case .failure: self = .failure(try container.decode(JobFailure.self, forKey: .failure))
        case .kind, nil:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "no message kind \(kind.debugDescription)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let (key, payload): (CodingKeys, any Encodable) =
            switch self {
            case .sandbox(let report): (.sandbox, report)
            case .probe(let info): (.probe, info)
            case .stills(let files): (.stills, files)
            case .progress(let fraction): (.progress, fraction)
            case .report(let report): (.report, report)
            case .failure(let failure): (.failure, failure)
            }
        try container.encode(key.stringValue, forKey: .kind)
        try container.encode(payload, forKey: key)
    }
}
