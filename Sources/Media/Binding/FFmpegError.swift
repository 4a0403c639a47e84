import CFFmpeg

/// A failed FFmpeg call: which function, its return code and FFmpeg's own text for it.
struct FFmpegError: Error, CustomStringConvertible {
    /// The C function that failed, e.g. `avcodec_send_packet`.
    let call: String
    /// The negative `AVERROR` code it returned (0 for a NULL allocation).
    let code: Int32
    /// `av_strerror`'s text for `code`.
    let text: String

    init(call: String, code: Int32) {
        self.call = call
        self.code = code
        self.text = code == 0 ? "out of memory" : FFmpegError.text(for: code)
    }

    /// Data `call` could not read (`AVERROR_INVALIDDATA`): the input's fault.
    static func invalidData(_ call: String) -> FFmpegError {
        FFmpegError(call: call, code: cffmpeg_averror_invaliddata())
    }

    /// An allocation that returned NULL.
    static func allocation(_ call: String) -> FFmpegError {
        FFmpegError(call: call, code: 0)
    }

    var isEndOfFile: Bool { code == cffmpeg_averror_eof() }
    var isInvalidData: Bool { code == cffmpeg_averror_invaliddata() }
    /// A nested open was refused (`AVERROR(EPERM)` from `InputFile`'s `io_open`).
    var isRefusedOpen: Bool { code == cffmpeg_averror(EPERM) }
    /// FFmpeg does not implement what the data asks for (`AVERROR_PATCHWELCOME`, `ENOSYS`).
    var isNotImplemented: Bool { code == cffmpeg_averror_patchwelcome() || code == cffmpeg_averror(ENOSYS) }
    /// An allocation failed (a NULL allocation, or `AVERROR(ENOMEM)`).
    var isOutOfMemory: Bool { code == 0 || code == cffmpeg_averror(ENOMEM) }
    /// A write went past the process's file size limit (`RLIMIT_FSIZE`).
    var isFileTooLarge: Bool { code == cffmpeg_averror(EFBIG) }

    var description: String { "\(call): \(text)" }

    static func text(for code: Int32) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            cffmpeg_strerror(code, buffer.baseAddress, buffer.count)
            return String(cString: buffer.baseAddress!)
        }
    }
}

/// Runs one FFmpeg call and throws `FFmpegError` naming it when it returns a negative code.
@discardableResult
func check(_ call: String, _ body: () -> Int32) throws(FFmpegError) -> Int32 {
    let result = body()
    if result < 0 { throw FFmpegError(call: call, code: result) }
    return result
}

/// Unwraps an FFmpeg allocation, throwing `FFmpegError.allocation` naming the call on NULL.
func allocated<T>(_ call: String, _ pointer: T?) throws(FFmpegError) -> T {
    guard let pointer else { throw FFmpegError.allocation(call) }
    return pointer
}

/// FFmpeg's "no timestamp" value.
let noTimestamp: Int64 = cffmpeg_nopts_value()

/// `AVERROR_EOF`, for errors raised on FFmpeg's behalf.
let cffmpegEndOfFile: Int32 = cffmpeg_averror_eof()
