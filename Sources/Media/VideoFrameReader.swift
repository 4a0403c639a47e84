/// Decodes the frames of one video stream of an open input, from the start or from a seek point.
/// Packets of other streams are discarded by the demuxer and never read. Every frame is charged
/// to the input's `DecodeBudget`.
final class VideoFrameReader {
    private let input: InputFile
    private let decoder: StreamDecoder
    private let packet: Packet
    private var draining = false
    private var skippedPackets = 0
    private var budget: DecodeBudget
    let stream: StreamDescription

    /// Damaged packets tolerated (skipped, as FFmpeg's own tools do) before the input is judged
    /// corrupt.
    static let tolerableDamagedPackets = 32

    init(
        input: InputFile, stream: StreamDescription, threads: Int, maxPixels: Int, budget: DecodeBudget
    ) throws(FFmpegError) {
        self.input = input
        self.stream = stream
        self.budget = budget
        input.discardAllStreams(except: [stream.index])
        decoder = try StreamDecoder(
            input: input, stream: stream.index, timeBase: stream.timeBase, threads: threads, maxPixels: maxPixels)
        packet = try Packet()
    }

    /// Decodes the next frame into `frame`. Returns false at the end of the stream.
    func next(into frame: Frame) throws -> Bool {
        while true {
            switch try decoder.receive(into: frame) {
            case .frame:
                let timestamp = frame.timestamp ?? stream.startTime ?? 0
                let seconds = Double(timestamp - (stream.startTime ?? 0)) * stream.timeBase.doubleValue
                try budget.charge(width: frame.width, height: frame.height, seconds: seconds)
                return true
            case .finished: return false
            case .needsInput:
                guard !draining else { return false }
                if try input.read(into: packet) {
                    guard packet.streamIndex == stream.index else { continue }
                    do throws(FFmpegError) {
                        _ = try decoder.send(packet)
                    } catch {
                        guard error.isInvalidData, skippedPackets < Self.tolerableDamagedPackets else { throw error }
                        skippedPackets += 1
                    }
                } else {
                    draining = true
                    _ = try decoder.send(nil)
                }
            }
        }
    }

    /// Moves to the last keyframe at or before `timestamp` (in the stream's time base); the next
    /// frame decoded is that keyframe.
    func seek(toKeyframeBefore timestamp: Int64) throws(FFmpegError) {
        try input.seek(stream: stream.index, toKeyframeBefore: timestamp)
        decoder.flush()
        draining = false
    }

    /// `seconds` from the stream's start, in its time base.
    func timestamp(atSeconds seconds: Double) -> Int64 {
        (stream.startTime ?? 0) + rescale(Int64(seconds * 1_000_000), from: microsecondTimeBase, to: stream.timeBase)
    }

    /// A frame timestamp as milliseconds from the stream's start.
    func milliseconds(of timestamp: Int64) -> Int {
        Int(rescale(timestamp - (stream.startTime ?? 0), from: stream.timeBase, to: Rational(1, 1000)))
    }
}
