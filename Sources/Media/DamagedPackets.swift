/// Packets of one stream its decoder refused. A file with a few undecodable packets plays in every
/// player, and FFmpeg's own tools skip them and go on: so does media-worker, up to `limit`
/// (2 % of the stream's packets or 2 seconds of them, whichever is more); past it the input is
/// `corrupt_input`. What was skipped is reported (`ProcessingReport.damage`).
struct DamagedPackets {
    let stream: String
    let limit: Int
    private(set) var skipped = 0

    /// For a stream expected to hold about `expectedPackets` packets at `packetsPerSecond`.
    init(stream: String, expectedPackets: Int?, packetsPerSecond: Double?) {
        self.stream = stream
        limit = max(8, Int(Double(expectedPackets ?? 0) * 0.02), Int(2 * min(packetsPerSecond ?? 30, 240)))
    }

    /// For the video stream of `opened`.
    init(video opened: Probe.Opened) {
        let video = opened.videoStream
        let rate = video.averageFrameRate?.doubleValue
        let expected =
            video.frameCount.map(Int.init) ?? opened.info.durationMs.map { Int(Double($0) / 1000 * (rate ?? 30)) }
        self.init(stream: "video", expectedPackets: expected, packetsPerSecond: rate)
    }

    /// Notes one packet the decoder refused with `error`. Out of memory is no damage (it is
    /// `limits_exceeded`); past the limit the input is judged corrupt.
    mutating func skip(_ error: FFmpegError) throws(MediaError) {
        if error.isOutOfMemory { throw .outOfMemory(error) }
        skipped += 1
        if skipped > limit {
            throw .corruptInput(
                "more than \(limit) \(stream) packets cannot be decoded (the last: \(error.text)); the file is too "
                    + "damaged to play, upload it again")
        }
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
                try damage.skip(error)
                return
            }
            while true {
                let output: Output
                do throws(FFmpegError) {
                    output = try receive(into: frame)
                } catch {
                    try damage.skip(error)
                    break
                }
                guard output == .frame else { break }
                try take()
            }
        }
    }
}
