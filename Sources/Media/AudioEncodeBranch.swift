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

    init(audio: AudioInfo, kilobitsPerSecond: Int, container: OutputContainer) throws(FFmpegError) {
        sampleRate = [44_100, 48_000].contains(audio.sampleRate) ? audio.sampleRate : 48_000
        channels = min(2, max(1, audio.channels))
        bitsPerSecond = kilobitsPerSecond * 1000
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
    /// output's timeline (the first frame's sets where the audio starts; the rest follow on
    /// without gaps, as AAC needs).
    func consume(_ frame: Frame, startSeconds: Double) throws(MediaError) {
        do {
            if nextTimestamp == nil { nextTimestamp = max(0, Int64((startSeconds * Double(sampleRate)).rounded())) }
            try resampler.push(frame)
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
            frame.presentationTimestamp = nextTimestamp
            nextTimestamp = (nextTimestamp ?? 0) + Int64(frame.sampleCount)
            try encoder.send(frame)
            try drainEncoder()
        }
    }

    private func drainEncoder() throws(FFmpegError) {
        while try encoder.receive(into: packet) == .packet {
            try container.write(packet, stream: streamIndex, timeBase: encoder.timeBase)
        }
    }
}
