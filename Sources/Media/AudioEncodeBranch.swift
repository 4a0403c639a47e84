/// The audio of an output: decoded frames resampled (libswresample) to planar float at 44.1 or
/// 48 kHz, mono or stereo, encoded as AAC into a stream of an `OutputContainer`.
final class AudioEncodeBranch {
    let sampleRate: Int
    let channels: Int
    let bitsPerSecond: Int
    private let encoder: StreamEncoder
    private let container: OutputContainer
    private let streamIndex: Int
    private let packet: Packet
    private let resampler: AudioResampler
    /// The next output sample's timestamp, in 1/sampleRate.
    private var nextTimestamp: Int64?
    /// Where on the output's timeline the next input frame should start, in seconds: frames that
    /// start well before it (concatenated clips overlap) are dropped, and a gap before one is
    /// filled with silence, so audio stays with the video however the source's timestamps jump.
    private var expectedStart: Double?
    /// Drift tolerated before a frame is dropped or silence inserted (a video frame or so).
    static let driftTolerance = 0.04
    /// The longest gap filled with silence; a longer one (a crafted timestamp) is closed instead.
    static let longestGap = 30.0

    /// Applied to every sample before the encoder (1: none): the output's loudness level.
    private let gain: Float

    /// The rate and channels an output's audio has: the source's at 44.1 or 48 kHz (else 48 kHz),
    /// mono or stereo (more is mixed down).
    static func outputFormat(_ audio: AudioInfo) -> (sampleRate: Int, channels: Int) {
        ([44_100, 48_000].contains(audio.sampleRate) ? audio.sampleRate : 48_000, min(2, max(1, audio.channels)))
    }

    init(audio: AudioInfo, kilobitsPerSecond: Int, gain: Float = 1, container: OutputContainer) throws(FFmpegError) {
        (sampleRate, channels) = Self.outputFormat(audio)
        bitsPerSecond = kilobitsPerSecond * 1000
        self.gain = gain
        self.container = container
        encoder = try StreamEncoder(
            audio: StreamEncoder.Audio(
                codec: "aac", sampleRate: sampleRate, channels: channels, bitsPerSecond: bitsPerSecond),
            globalHeader: container.needsGlobalHeader)
        streamIndex = try container.addStream(encoder: encoder)
        resampler = try AudioResampler(sampleRate: sampleRate, channels: channels, frameSize: encoder.frameSize)
        packet = try Packet()
    }

    /// Resamples and encodes one decoded frame. `startSeconds` is where the frame belongs on the
    /// output's timeline: the first frame's sets where the audio starts; the rest follow on without
    /// gaps, as AAC needs, unless the source's timestamps drift from the samples it holds.
    func consume(_ frame: Frame, startSeconds: Double) throws(MediaError) {
        // Sound from before the first picture is left out: the output starts with the picture,
        // and what is heard stays with what is seen (a frame reaching past zero is kept whole).
        if nextTimestamp == nil && startSeconds + frame.sampleDuration <= 0 { return }
        do {
            if nextTimestamp == nil { nextTimestamp = max(0, Int64((startSeconds * Double(sampleRate)).rounded())) }
            let frameSeconds = frame.sampleDuration
            let expected = expectedStart ?? startSeconds
            let drift = startSeconds - expected
            if drift < -Self.driftTolerance && drift + frameSeconds <= Self.driftTolerance {
                return  // wholly before where the audio already is: an overlap
            }
            var next = expected
            if drift > Self.driftTolerance && drift <= Self.longestGap {
                try resampler.pushSilence(seconds: drift)
                next += drift
            }
            if try resampler.push(frame) { next += frameSeconds }
            expectedStart = next
            try encodeQueued(flushing: false)
        } catch {
            throw .encoding("the audio", error)
        }
    }

    /// Drains the resampler and the encoder.
    func finish() throws(MediaError) {
        do {
            try resampler.push(nil)
            try encodeQueued(flushing: true)
            try encoder.send(nil)
            try drainEncoder()
        } catch {
            throw .encoding("the audio", error)
        }
    }

    private func encodeQueued(flushing: Bool) throws(FFmpegError) {
        while let frame = try resampler.pop(flushing: flushing) {
            if gain != 1 {
                frame.withFloatPlanes { planes in
                    for plane in planes { for index in plane.indices { plane[index] *= gain } }
                }
            }
            frame.presentationTimestamp = nextTimestamp
            nextTimestamp = (nextTimestamp ?? 0) + Int64(frame.sampleCount)
            try encoder.send(frame)
            try drainEncoder()
        }
    }

    private func drainEncoder() throws(FFmpegError) {
        while try encoder.receive(into: packet) == .ready {
            try container.write(packet, stream: streamIndex, timeBase: encoder.timeBase)
        }
    }
}
