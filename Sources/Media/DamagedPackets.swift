/// Packets of one stream its decoder refused. A file with undecodable packets plays in every
/// player as long as pictures and sound keep coming, and FFmpeg's own tools skip them and go on:
/// so does media-worker. What counts is time, not packets: the input is `corrupt_input` when the
/// refused packets span more than `longestGap` seconds with nothing decoded in between (2 seconds,
/// or 2 % of the duration when that is more). A Theora file whose inter frames mostly fail but
/// whose keyframes come twice a second plays (choppy), and converts; a stream that shows nothing
/// for seconds does not. Packets without timestamps count instead: `longestRun` in a row (2 seconds
/// of them at the stream's rate), and ten times that even with timestamps, so timestamps that never
/// advance cannot buy an endless run of refusals. What was skipped is reported
/// (`ProcessingReport.damage`).
struct DamagedPackets {
    let stream: String
    let longestGap: Double
    let longestRun: Int
    private let secondsPerTick: Double
    private(set) var skipped = 0
    /// Refused packets since the last decoded frame, and where the stretch without one began.
    private var run = 0
    private var lastDecoded: Int64?
    private var firstRefused: Int64?

    /// For a stream in `timeBase` lasting about `durationSeconds`, at about `packetsPerSecond`.
    init(stream: String, timeBase: Rational, durationSeconds: Double?, packetsPerSecond: Double?) {
        self.stream = stream
        secondsPerTick = timeBase.doubleValue
        longestGap = max(2, 0.02 * (durationSeconds ?? 0))
        longestRun = max(8, Int(2 * min(packetsPerSecond ?? 30, 240)))
    }

    /// For the video stream of `opened`.
    init(video opened: Probe.Opened) {
        self.init(
            stream: "video", timeBase: opened.videoStream.timeBase,
            durationSeconds: opened.info.durationMs.map { Double($0) / 1000 },
            packetsPerSecond: opened.videoStream.averageFrameRate?.doubleValue)
    }

    /// For the audio stream of `opened` (AAC's 1024 samples a packet as the rate).
    init(audio opened: Probe.Opened) {
        self.init(
            stream: "audio", timeBase: opened.audioStream?.timeBase ?? microsecondTimeBase,
            durationSeconds: opened.info.durationMs.map { Double($0) / 1000 },
            packetsPerSecond: opened.audioStream.map { Double($0.sampleRate) / 1024 })
    }

    /// Notes a frame decoded at `timestamp` (in the stream's time base): the stretch ends.
    mutating func decoded(at timestamp: Int64?) {
        run = 0
        firstRefused = nil
        if let timestamp { lastDecoded = max(lastDecoded ?? timestamp, timestamp) }
    }

    /// Notes one packet (at `timestamp`, when it has one) the decoder refused with `error`. Out of
    /// memory is no damage (it is `limits_exceeded`); past the limits the input is judged corrupt.
    mutating func skip(_ error: FFmpegError, at timestamp: Int64?) throws(MediaError) {
        if error.isOutOfMemory { throw .outOfMemory(error) }
        skipped += 1
        run += 1
        if firstRefused == nil { firstRefused = timestamp }
        let from = lastDecoded ?? firstRefused
        let gap = timestamp.flatMap { to in from.map { Double(to - $0) * secondsPerTick } }
        guard (gap ?? 0) > longestGap || run > (gap == nil ? longestRun : 10 * longestRun) else { return }
        let stretch =
            gap.map { String(format: "for %.1f s", $0) } ?? "in \(run) packets in a row"
        throw .corruptInput(
            "no \(stream) could be decoded \(stretch) (\(skipped) packets refused, the last: \(error.text)); "
                + "the file is too damaged to play, upload it again")
    }
}

/// How damaged the input was: packets skipped because their decoder refused them.
public struct DamageReport: Codable, Sendable, Equatable {
    public var videoPacketsSkipped: Int
    public var audioPacketsSkipped: Int
}

extension StreamDecoder {
    /// Sends `packet` (nil: the end) and hands every frame that comes out to `take`. A packet or
    /// frame the decoder refuses is counted in `damage` and skipped, as FFmpeg's tools do.
    func decode(
        _ packet: Packet?, into frame: Frame, damage: inout DamagedPackets, _ take: () throws -> Void
    ) throws {
        var sent = false
        while !sent {
            do throws(FFmpegError) {
                sent = try send(packet)
            } catch {
                try damage.skip(error, at: packet?.timestamp)
                return
            }
            while true {
                let output: Received
                do throws(FFmpegError) {
                    output = try receive(into: frame)
                } catch {
                    try damage.skip(error, at: packet?.timestamp)
                    break
                }
                guard output == .ready else { break }
                if frame.width == 0 {
                    // Audio: an empty frame holds nothing to hear; sound a damaged packet decoded
                    // into (no rate, no channels, noise far past full scale) is refused. Every
                    // consumer of decoded audio gets frames from here alone.
                    guard frame.sampleCount > 0 else {
                        damage.decoded(at: frame.timestamp)
                        continue
                    }
                    guard frame.isPlausibleAudio else {
                        try damage.skip(.invalidData("the audio decoder"), at: packet?.timestamp)
                        continue
                    }
                }
                damage.decoded(at: frame.timestamp)
                try take()
            }
        }
    }
}

extension Frame {
    /// Audio a damaged packet did not decode into nonsense: a known rate, 1 to 64 channels, and
    /// float samples within 12 dB of full scale (a damaged AAC frame can decode into samples
    /// thousands of times full scale: a burst of noise, not sound).
    fileprivate var isPlausibleAudio: Bool {
        sampleDuration > 0 && (1...64).contains(channelCount)
            && withFloatPlanes { planes in planes.allSatisfy { plane in plane.allSatisfy { abs($0) <= 4 } } }
    }
}
