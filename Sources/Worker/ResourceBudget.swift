import CLinux
import Foundation
public import Media

/// What a job may cost, from what its input is: a 10-second clip never gets an hour. The CPU
/// budget is enforced by the kernel in the job's child (`RLIMIT_CPU`, set once the input is
/// probed); the wall-clock deadline by the daemon.
public enum ResourceBudget {
    /// CPU seconds for `type` at `profile` on an input like `info`: a minute for the fixed work
    /// (probe, seeks, stills), plus per second of input a multiple of what the benchmark measured
    /// for 1080p30 (MEDIUM: 0.37 CPU s per second; the multiples leave 4× headroom), scaled up
    /// for inputs with more pixels per second. Never more than `ceiling`.
    public static func cpuSeconds(
        for info: MediaInfo, type: ProcessingType, profile: QualityProfile, ceiling: Int
    ) -> Int {
        let seconds = Double(info.durationMs ?? 0) / 1000
        let perSecond: Double
        switch type {
        case .metadata, .thumbnail, .preview: perSecond = 0
        case .compression, .fullProcessing:
            let factor: [QualityProfile: Double] = [.low: 1, .medium: 1.5, .high: 3, .ultra: 8]
            let rate = min(info.video.frameRate ?? 30, 240)
            let pixelRate = Double(info.video.codedWidth * info.video.codedHeight) * rate
            perSecond = factor[profile, default: 1.5] * max(1, pixelRate / (1920 * 1080 * 30))
        }
        return min(ceiling, 60 + Int((seconds * perSecond).rounded(.up)))
    }

    /// The wall-clock deadline for a job of `cpuSeconds` (its CPU budget plus five minutes, for a
    /// host busy with other jobs), never more than `ceiling`.
    public static func wallSeconds(cpuSeconds: Int, ceiling: Double) -> Double {
        min(ceiling, Double(cpuSeconds) + 300)
    }

    /// Limits this process's address space (a decoder that asks for more gets ENOMEM, which is
    /// `limits_exceeded`) and forbids core dumps (they would hold the input).
    public static func limitMemory(bytes: Int64) {
        _ = clinux_limit_malloc_arenas(4)
        lower(RLIMIT_AS, soft: bytes, hard: bytes)
        lower(RLIMIT_CORE, soft: 0, hard: 0)
    }

    /// Limits this process's CPU time: SIGXCPU at `seconds` (the daemon reads it as
    /// `limits_exceeded`), SIGKILL two seconds later if that is ignored.
    public static func limitCPU(seconds: Int) {
        lower(RLIMIT_CPU, soft: Int64(seconds), hard: Int64(seconds) + 2)
    }

    /// Lowers a limit (never raises it: an unprivileged process cannot take it back anyway).
    private static func lower(_ resource: __rlimit_resource, soft: Int64, hard: Int64) {
        var current = rlimit()
        getrlimit(__rlimit_resource_t(resource.rawValue), &current)
        var limits = rlimit(
            rlim_cur: min(current.rlim_cur, rlim_t(max(0, soft))), rlim_max: min(current.rlim_max, rlim_t(max(0, hard)))
        )
        _ = setrlimit(__rlimit_resource_t(resource.rawValue), &limits)
    }
}
