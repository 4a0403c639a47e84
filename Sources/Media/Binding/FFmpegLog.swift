import CFFmpeg

/// How much FFmpeg's libraries print on stderr themselves. Process-wide (FFmpeg keeps one level),
/// so only a command's start-up sets it. media-worker reports failures through its own errors,
/// which already carry FFmpeg's text, so the default is silence.
public enum FFmpegLog {
    public enum Level: Sendable { case quiet, errors, warnings }

    public static func setLevel(_ level: Level) {
        switch level {
        case .quiet: av_log_set_level(AV_LOG_QUIET)
        case .errors: av_log_set_level(AV_LOG_ERROR)
        case .warnings: av_log_set_level(AV_LOG_WARNING)
        }
    }
}
