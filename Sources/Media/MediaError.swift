import Foundation
public import JobVocabulary

/// Why a media operation failed, with the job-level code from the schema and a sentence a
/// person can act on.
public enum MediaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input file does not exist.
    case inputMissing
    /// The input exists but cannot be read (permissions, I/O error).
    case inputUnreadable(reason: String)
    /// The input is readable but holds nothing media-worker can work on.
    case unsupported(String)
    /// The input looks like media but is damaged or truncated.
    case corruptInput(String)
    /// The input goes past a configured limit.
    case limitsExceeded(String)
    /// An output file could not be written.
    case outputUnwritable(reason: String)
    /// A failure that points at media-worker or FFmpeg rather than at the input.
    case internalFailure(String)

    /// The `<code>` of `errorMessage` (see the Schema article).
    public var code: FailureCode {
        switch self {
        case .inputMissing: .inputMissing
        case .inputUnreadable: .inputUnreadable
        case .unsupported: .unsupported
        case .corruptInput: .corruptInput
        case .limitsExceeded: .limitsExceeded
        case .outputUnwritable: .storage
        case .internalFailure: .internal
        }
    }

    /// The failure as a job row records it.
    public var failure: JobFailure { JobFailure(code, message) }

    /// What happened and what to do about it. Never names a file's path: in the daemon that is a
    /// private temporary folder, meaningless to whoever reads the job's `errorMessage`.
    public var message: String {
        switch self {
        case .inputMissing:
            "the input file is not there; check the path (or the storage key) and upload it again if it is gone"
        case .inputUnreadable(let reason):
            "the input file cannot be read (\(reason)); check its permissions and the disk"
        case .unsupported(let message), .corruptInput(let message), .limitsExceeded(let message),
            .internalFailure(let message):
            message
        case .outputUnwritable(let reason):
            "an output cannot be written (\(reason)); check free space and permissions of the output folder"
        }
    }

    /// An encode of `what` (`the video`, `the audio`) failed: out of memory is the input's
    /// appetite, anything else a fault of media-worker's (it chose every encoder setting).
    static func encoding(_ what: String, _ error: FFmpegError) -> MediaError {
        if error.isFileTooLarge { return .outputTooLarge }
        return error.isOutOfMemory ? .outOfMemory(error) : .internalFailure("encoding \(what) failed (\(error))")
    }

    /// An output grew past the size a video of the input's length may take (`RLIMIT_FSIZE`).
    static let outputTooLarge = MediaError.limitsExceeded(
        "an output grew past the size a video of this length may take at this profile (its header understates "
            + "its length, or it is crafted); re-export it")

    /// FFmpeg ran out of memory: under the process's memory limit, that is the input asking for
    /// more than it is allowed.
    static func outOfMemory(_ error: FFmpegError) -> MediaError {
        .limitsExceeded(
            "the video needs more memory than allowed to decode (\(error.call) ran out); re-export it at a lower "
                + "resolution, or raise the memory limit (MEDIA_WORKER_CHILD_MEMORY_MB)")
    }

    public var description: String { failure.description }
}

/// The system's reason for a failed Foundation file operation (`No space left on device`), without
/// the paths Foundation's own descriptions carry.
public func systemReason(_ error: any Error) -> String {
    let described = error as NSError
    for candidate in [described.userInfo[NSUnderlyingErrorKey] as? NSError, described].compactMap({ $0 })
    where candidate.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(candidate.code)))
    }
    return "\(described.domain) error \(described.code)"
}
