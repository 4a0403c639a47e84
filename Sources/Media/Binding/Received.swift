import CFFmpeg

/// What a call that hands out frames or packets (`avcodec_receive_frame`,
/// `avcodec_receive_packet`, `av_buffersink_get_frame`) answered: one is ready, the call wants more
/// input first, or everything was handed out.
enum Received {
    case ready, needsInput, finished

    /// Reads `call`'s return code; any other negative code is its failure.
    init(_ call: String, returned result: Int32) throws(FFmpegError) {
        if result == cffmpeg_averror_eagain() {
            self = .needsInput
        } else if result == cffmpeg_averror_eof() {
            self = .finished
        } else if result < 0 {
            throw FFmpegError(call: call, code: result)
        } else {
            self = .ready
        }
    }
}
