/// Timestamps made continuous where a container's may restart or leap (MPEG transport and program
/// streams: recordings cut and joined, a camera's clock reset; Ogg), as the `ffmpeg` program makes
/// them: a video packet whose decoding time falls more than 0.1 s behind what the video already
/// reached, or lands more than 10 s away from where it should go on, moves that and every later
/// packet of every stream by the jump. What follows then plays after what came before, instead of
/// being dropped as out of order (a joined transport stream lost its second half). Only the video
/// moves the clock: damaged audio whose timestamps wander (`movie-hello.ogg` of
/// forensics-samples-files) cannot drag the picture with it, as it does in the `ffmpeg` program
/// (a 102 s output from 8 s). Other containers' timestamps are left as they are.
struct TimestampContinuity {
    private let active: Bool
    private let video: Int
    /// Added to every packet, in microseconds.
    private var offset: Int64 = 0
    /// Per stream: where its next packet should start, and the latest decoding time it reached
    /// (microseconds, on the mended clock).
    private var expected: [Int: Int64] = [:]
    private var reached: [Int: Int64] = [:]
    /// How often the input's timestamps jumped, and where the first few did (seconds from the
    /// first packet): a crafted stream may jump at every packet, and the report names a few.
    private(set) var jumpCount = 0
    private var firstJumps: [Double] = []
    private static let jumpsNamed = 5
    private var start: Int64?

    /// For `file`, whose video is stream `video`.
    init(_ file: InputFile, video: Int) {
        active = file.timestampsMayJump
        self.video = video
    }

    /// Mends `packet` (of a stream in `timeBase`) in place.
    mutating func mend(_ packet: Packet, timeBase: Rational) {
        guard active, let raw = packet.timestamp else { return }
        let stream = packet.streamIndex
        var time = rescale(raw, from: timeBase, to: microsecondTimeBase) + offset
        if start == nil { start = time }
        if stream == video, let next = expected[stream], let latest = reached[stream] {
            let delta = time - next
            if abs(delta) > 10_000_000 || time + 100_000 < latest {
                offset -= delta
                time -= delta
                jumpCount += 1
                if firstJumps.count < Self.jumpsNamed { firstJumps.append(Double(next - (start ?? 0)) / 1_000_000) }
            }
        }
        if offset != 0 { packet.shift(by: rescale(offset, from: microsecondTimeBase, to: timeBase)) }
        expected[stream] = time + max(0, rescale(packet.duration, from: timeBase, to: microsecondTimeBase))
        reached[stream] = max(reached[stream] ?? time, time)
    }

    /// Where the timestamps jumped, for the report ("1.93 s", "1.93 s, 3.87 s and 40 more"); nil
    /// when they never did.
    var jumpsDescription: String? {
        guard jumpCount > 0 else { return nil }
        let named = firstJumps.map { String(format: "%.2f s", $0) }.joined(separator: ", ")
        return jumpCount > firstJumps.count ? "\(named) and \(jumpCount - firstJumps.count) more" : named
    }
}
