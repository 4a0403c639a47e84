/// Why a media operation failed, with the job-level code from the schema and a sentence a
/// person can act on.
public enum MediaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input file does not exist.
    case inputMissing(path: String)
    /// The input exists but cannot be read (permissions, I/O error).
    case inputUnreadable(path: String, reason: String)
    /// The input is readable but holds nothing media-worker can work on.
    case unsupported(String)
    /// The input looks like media but is damaged or truncated.
    case corruptInput(String)
    /// The input goes past a configured limit.
    case limitsExceeded(String)
    /// An output file could not be written.
    case outputUnwritable(path: String, reason: String)
    /// A failure that points at media-worker or FFmpeg rather than at the input.
    case internalFailure(String)

    /// The `<code>` of `errorMessage` (see `schema.md`).
    public var code: String {
        switch self {
        case .inputMissing: "input_missing"
        case .inputUnreadable: "input_unreadable"
        case .unsupported: "unsupported"
        case .corruptInput: "corrupt_input"
        case .limitsExceeded: "limits_exceeded"
        case .outputUnwritable: "storage"
        case .internalFailure: "internal"
        }
    }

    /// What happened and what to do about it.
    public var message: String {
        switch self {
        case .inputMissing(let path):
            "no file at \(path); check the path (or the storage key) and upload it again if it is gone"
        case .inputUnreadable(let path, let reason):
            "cannot read \(path) (\(reason)); check its permissions and the disk"
        case .unsupported(let message), .corruptInput(let message), .limitsExceeded(let message),
            .internalFailure(let message):
            message
        case .outputUnwritable(let path, let reason):
            "cannot write \(path) (\(reason)); check free space and permissions of the output folder"
        }
    }

    public var description: String { "\(code): \(message)" }
}
