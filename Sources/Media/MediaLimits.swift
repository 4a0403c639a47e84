/// Bounds that stop a hostile or absurd file from eating the host. Exceeding one is
/// `limits_exceeded`; the defaults suit a chat app.
public struct MediaLimits: Sendable, Equatable, Codable {
    /// Longest accepted input, in seconds (default 30 minutes).
    public var maxDurationSeconds: Double
    /// Largest accepted frame, in pixels (default 4096×2160, DCI 4K, either orientation).
    public var maxPixels: Int
    /// Most decoding work one input may cost, in pixels decoded (frames × width × height). The
    /// default is 30 minutes of 4096×2160 at 60 fps, so it also admits 2 minutes of 1080p at 240
    /// fps (slow motion) many times over. A shorter input gets a share of it in proportion to its
    /// duration, at up to four times that rate (see `DecodeBudget`).
    public var maxDecodedPixels: Int64
    /// Largest accepted input file, in bytes (default 4 GiB).
    public var maxInputBytes: Int64

    public static let `default` = MediaLimits(
        maxDurationSeconds: 30 * 60, maxPixels: 4096 * 2160, maxDecodedPixels: 4096 * 2160 * 60 * 30 * 60,
        maxInputBytes: 4 << 30)

    public init(maxDurationSeconds: Double, maxPixels: Int, maxDecodedPixels: Int64, maxInputBytes: Int64) {
        self.maxDurationSeconds = maxDurationSeconds
        self.maxPixels = maxPixels
        self.maxDecodedPixels = maxDecodedPixels
        self.maxInputBytes = maxInputBytes
    }

    /// Throws `limitsExceeded` naming the first limit `info` goes past. The frame rate is not
    /// judged here: containers report tick rates as frame rates (ASF says 1000 fps for a 1 fps
    /// file), so decoding work is counted from the frames themselves (`DecodeBudget`).
    func check(_ info: MediaInfo) throws(MediaError) {
        let video = info.video
        if video.codedWidth * video.codedHeight > maxPixels {
            throw Self.tooManyPixels(width: video.codedWidth, height: video.codedHeight, limit: maxPixels)
        }
        if let duration = info.durationMs, Double(duration) / 1000 > maxDurationSeconds {
            throw .limitsExceeded(
                "the video lasts \(duration / 1000) s, over the \(Int(maxDurationSeconds)) s limit; "
                    + "trim it, or raise --max-duration")
        }
    }
}

extension MediaLimits {
    static func tooManyPixels(width: Int, height: Int, limit: Int) -> MediaError {
        .limitsExceeded(
            "the video is \(width)x\(height), more than the \(limit)-pixel limit; re-export it at 4K or less, or "
                + "raise --max-pixels")
    }
}

/// Counts the work of decoding one input and stops it when the input does more than its own
/// header admits: frames stamped far past the declared duration (a 2-second file whose last frame
/// says 10 hours), or more pixels decoded than its duration justifies (a flood of frames).
/// Every decoded video frame is charged before anything else is done with it.
extension MediaLimits {
    /// The latest a frame of an input declaring `durationMs` may be stamped: its duration and a
    /// margin, or the duration limit when it declares none.
    public func latestSeconds(durationMs: Int?) -> Double {
        DecodeBudget.latestSeconds(declared: DecodeBudget.declaredSeconds(durationMs) ?? maxDurationSeconds)
    }
}

struct DecodeBudget {
    /// Frames may run this far past the declared duration: damaged but honest files overrun a
    /// little, crafted ones by hours.
    static func latestSeconds(declared: Double) -> Double { declared + max(5, declared / 5) }

    /// What a header's duration says: nothing when it is under a tenth of a second (an MPEG program
    /// stream without one says 0 s, or a few milliseconds FFmpeg guessed from its first packets:
    /// `press.mpg` of wx3.2-examples declares 9 ms and plays 5.6 s).
    static func declaredSeconds(_ durationMs: Int?) -> Double? {
        durationMs.flatMap { $0 >= 100 ? Double($0) / 1000 : nil }
    }
    /// A frame is charged at least this many pixels, so floods of tiny frames count.
    static let minimumFramePixels: Int64 = 128 * 128

    let declaredSeconds: Double?
    let latestSeconds: Double
    let pixelBudget: Int64
    private(set) var pixelsDecoded: Int64 = 0

    init(limits: MediaLimits, durationMs: Int?) {
        declaredSeconds = Self.declaredSeconds(durationMs)
        latestSeconds = limits.latestSeconds(durationMs: durationMs)
        let share = 4 * latestSeconds / limits.maxDurationSeconds
        pixelBudget = share >= 1 ? limits.maxDecodedPixels : Int64(Double(limits.maxDecodedPixels) * share)
    }

    /// Charges one decoded frame of `width`×`height` stamped `seconds` from the video's start.
    mutating func charge(width: Int, height: Int, seconds: Double) throws(MediaError) {
        try check(seconds: seconds)
        pixelsDecoded += max(Self.minimumFramePixels, Int64(width) * Int64(height))
        if pixelsDecoded > pixelBudget {
            throw .limitsExceeded(
                "decoding the video takes more than the \(pixelBudget / 1_000_000) megapixels of work allowed for "
                    + "its duration (far more frames than its length explains); re-export it, or raise "
                    + "--max-decoded-pixels")
        }
    }

    /// Checks a frame or a copied packet stamped `seconds` from the video's start: a copy obeys the
    /// same duration as a decode.
    func check(seconds: Double) throws(MediaError) {
        if seconds > latestSeconds {
            let declared = declaredSeconds.map { "the \(Int($0)) s its header declares" } ?? "the duration limit"
            throw .limitsExceeded(
                "the video has frames stamped \(Int(seconds)) s from its start, far past \(declared); the file is "
                    + "damaged or crafted: re-export it")
        }
    }
}
