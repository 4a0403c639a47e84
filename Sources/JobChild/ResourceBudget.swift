import CLinux
import Foundation
public import Media

/// What a job may cost, from what its input is: a 10-second clip never gets an hour, and a header
/// alone cannot raise the budget. The CPU and output-size budgets are enforced by the kernel in the
/// job's child (`RLIMIT_CPU`, `RLIMIT_FSIZE`, set once the input is probed); the wall-clock
/// deadline by the daemon.
public enum ResourceBudget {
    /// CPU seconds for `type` at `profile` on an input like `info`, never more than `ceiling`:
    /// - fixed work (probe, seeks, stills): 10 s, plus up to 50 s more at 15 s per MB of upload
    ///   (decoding a megabyte of any codec takes well under a second; 50 s per MB gave a 1.4 MB 4K
    ///   VP9 stream of repeated frames declaring 30 minutes 77 CPU s at MEDIUM, now 47);
    /// - for an encode, per second of declared duration a multiple of what the benchmark measured
    ///   for 1080p30 (LOW 1, MEDIUM 1.5, HIGH 3, ULTRA 8 CPU s: 4× headroom over MEDIUM's 0.37),
    ///   scaled up for more pixels per second, but never more than what the upload's bytes can
    ///   hold: 8 CPU s per MB times the same multiple (ULTRA 64 CPU s per MB, far above what real
    ///   video costs even at low bit rates; a crafted file declaring hours in a few KB gets seconds);
    ///   times `encodeWork`, the request's encodes counted in H.264 encodes
    ///   (`MediaProcessor.Request.encodeWork`: an AV1 variant, a byte budget's second pass).
    public static func cpuSeconds(
        for info: MediaInfo, type: ProcessingType, profile: QualityProfile, ceiling: Int,
        encodeWork: Double = 1
    ) -> Int {
        let megabytes = Double(info.sizeBytes) / 1_048_576
        let fixed = 10 + min(50, 15 * megabytes)
        guard type == .compression || type == .fullProcessing else { return min(ceiling, Int(fixed.rounded(.up))) }
        let multiple = profile.cost * encodeWork
        let rate = min(info.video.frameRate ?? 30, 240)
        let pixelRate = Double(info.video.codedWidth * info.video.codedHeight) * rate
        let byDuration = Double(info.durationMs ?? 0) / 1000 * multiple * max(1, pixelRate / (1920 * 1080 * 30))
        let byBytes = megabytes * 8 * multiple
        return min(ceiling, Int((fixed + min(byDuration, byBytes)).rounded(.up)))
    }

    /// How much later than the budget the kernel's CPU limit strikes.
    static let backstopSeconds = 10

    /// The largest file a job's child may write for an input like `info` at `profile`: a copy is no
    /// bigger than its input, an encode no bigger than the profile's peak bit rate for the longest
    /// the video may last; with a margin, and 16 MiB for stills and headers.
    public static func outputBytes(for info: MediaInfo, profile: QualityProfile, limits: MediaLimits) -> Int64 {
        let encoding = profile.encoding
        let bitsPerSecond = Double((encoding.maxrateKbps + (encoding.audioKbps ?? 0)) * 1000)
        let encoded = Int64(bitsPerSecond / 8 * limits.latestSeconds(durationMs: info.durationMs) * 1.5)
        return max(info.sizeBytes + info.sizeBytes / 10, encoded) + (16 << 20)
    }

    /// The wall-clock deadline for a job of `cpuSeconds` (its CPU budget plus five minutes, for a
    /// host busy with other jobs), never more than `ceiling`.
    public static func wallSeconds(cpuSeconds: Int, ceiling: Double) -> Double {
        min(ceiling, Double(cpuSeconds) + 300)
    }

    /// Limits this process's address space to `bytes` for good, and for now (until the input is
    /// probed) to `initially` (a decoder that asks for more gets ENOMEM, which is
    /// `limits_exceeded`), any single FFmpeg allocation to 256 MiB (no real input needs more at
    /// once; a 9 KB MP4 whose sample table claims 88 million samples asks for 2 GB in one piece),
    /// and forbids core dumps (they would hold the input).
    public static func limitMemory(bytes: Int64, initially: Int64? = nil) {
        _ = clinux_limit_malloc_arenas(4)
        lower(RLIMIT_AS, soft: bytes, hard: bytes)
        if let initially { setSoft(RLIMIT_AS, initially) }
        lower(RLIMIT_CORE, soft: 0, hard: 0)
        FFmpegAllocations.limit(bytes: min(bytes, 256 << 20))
    }

    /// The address space a job's child gets before its input is parsed, from what is known then:
    /// the program and its libraries (370 MB mapped here, whatever the input: 512 MiB), 32 MiB per
    /// thread, and 32 bytes per byte of the upload. A parser that believes a crafted index (FFmpeg
    /// allocates what tables claim) is bounded by what the upload's bytes could really need: an
    /// 11 KB file gets 0.5 GB, not the 1.6 GB eight tracks of ten million samples ask for.
    public static func parseMemory(fileBytes: Int64, threads: Int, ceiling: Int64) -> Int64 {
        min(ceiling, (512 << 20) + Int64(max(1, threads)) * (32 << 20) + 32 * max(0, fileBytes))
    }

    /// The address space once the input is probed: 768 MiB, plus 256 bytes per coded pixel for
    /// every two threads, times the request's encodes (`encodeWork`: an AV1 variant, a second
    /// pass), plus SVT-AV1's own 1 GiB and 128 MiB per thread when AV1 is encoded, never more than
    /// `ceiling`. Measured here (2 threads), the least each job ran in: 540 MB for a 320x180
    /// FULL_PROCESSING, 857 MB for 1080p, 944 MB for 4K HEVC to MEDIUM; with the AV1 variant
    /// 1.3 GB for 360x640, 1.8 GB for 1080p, 1.9 GB for 4K (below that SVT-AV1 hangs rather than
    /// fail: the budget must not come near). This gives 0.79, 1.3 and 2.9 GB, and 2.1, 3.5 and
    /// 7.9 GB with AV1.
    public static func memoryBytes(
        for info: MediaInfo, threads: Int, encodeWork: Double, encodesAV1: Bool, ceiling: Int64
    ) -> Int64 {
        let pixels = Double(info.video.codedWidth) * Double(info.video.codedHeight)
        let perPixel = 256 * max(1, Double(threads) / 2) * max(1, encodeWork)
        let av1: Int64 = encodesAV1 ? (1 << 30) + Int64(max(1, threads)) * (128 << 20) : 0
        return min(ceiling, (768 << 20) + av1 + Int64(min(pixels * perPixel, Double(ceiling))))
    }

    /// Moves the address-space limit to `bytes` (within the hard limit `limitMemory` set).
    public static func allowMemory(bytes: Int64) { setSoft(RLIMIT_AS, bytes) }

    /// Once the input is probed: lowers the CPU limit to what it deserves and limits the size of
    /// any file written (`RLIMIT_FSIZE`; a write past it fails with EFBIG, reported as
    /// `limits_exceeded`, instead of killing the process with its output half written). A job's
    /// child lowers the hard limits too, for good; `forNextInputOnly` (`process` with several
    /// files) sets soft limits over what this process already used, so the next input starts anew.
    public static func limit(
        for info: MediaInfo, type: ProcessingType, profile: QualityProfile, cpuCeiling: Int, limits: MediaLimits,
        encodeWork: Double = 1, forNextInputOnly: Bool = false
    ) {
        signal(SIGXFSZ, SIG_IGN)
        // The media engine stops itself at the budget (`MediaProcessor.run`'s `cpuBudget`); the
        // kernel's limit, a little later, is for a decoder stuck where that check is not reached.
        let cpu =
            cpuSeconds(
                for: info, type: type, profile: profile, ceiling: cpuCeiling, encodeWork: encodeWork)
            + backstopSeconds
        let bytes = outputBytes(for: info, profile: profile, limits: limits)
        guard forNextInputOnly else {
            limitCPU(seconds: cpu)
            lower(RLIMIT_FSIZE, soft: bytes, hard: bytes)
            return
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let used = Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + 1
        setSoft(RLIMIT_CPU, used + Int64(cpu))
        setSoft(RLIMIT_FSIZE, bytes)
    }

    /// Sets a soft limit anywhere below the hard one.
    private static func setSoft(_ resource: __rlimit_resource, _ value: Int64) {
        var current = rlimit()
        getrlimit(__rlimit_resource_t(resource.rawValue), &current)
        var limits = rlimit(rlim_cur: min(current.rlim_max, rlim_t(max(0, value))), rlim_max: current.rlim_max)
        _ = setrlimit(__rlimit_resource_t(resource.rawValue), &limits)
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
