/// Decodes the frames of one video stream of an open input, from the start or from a seek point.
/// Packets of other streams are discarded by the demuxer and never read. Every frame is charged
/// to the input's `DecodeBudget`.
final class VideoFrameReader {
    private let input: InputFile
    private let decoder: StreamDecoder
    private let packet: Packet
    private var draining = false
    private var budget: DecodeBudget
    private(set) var damage: DamagedPackets
    let stream: StreamDescription

    /// A reader of the video stream of `opened`, within `limits`.
    init(_ opened: Probe.Opened, threads: Int, limits: MediaLimits) throws(FFmpegError) {
        let (input, stream, maxPixels) = (opened.file, opened.videoStream, limits.maxPixels)
        self.input = input
        self.stream = stream
        budget = DecodeBudget(limits: limits, durationMs: opened.info.durationMs)
        damage = DamagedPackets(video: opened)
        input.discardAllStreams(except: [stream.index])
        decoder = try StreamDecoder(
            input: input, stream: stream.index, timeBase: stream.timeBase, threads: threads, maxPixels: maxPixels,
            frameDuration: stream.nominalFrameDuration)
        packet = try Packet()
    }

    /// Decodes the next frame into `frame`. Returns false at the end of the stream.
    func next(into frame: Frame) throws -> Bool {
        while true {
            let output: Received
            do throws(FFmpegError) {
                output = try decoder.receive(into: frame)
            } catch {
                try damage.skip(error, at: packet.timestamp)
                continue
            }
            switch output {
            case .ready:
                damage.decoded(at: frame.timestamp)
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
                        try damage.skip(error, at: packet.timestamp)
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
    /// A stream with no index and no timestamps to seek by (a raw H.264 or HEVC stream, an MPEG
    /// program stream without a duration) is read from its start instead: the frames come by
    /// decoding forward.
    func seek(toKeyframeBefore timestamp: Int64) throws(FFmpegError) {
        do {
            try input.seek(stream: stream.index, toKeyframeBefore: timestamp)
        } catch {
            try input.seekToStart()
        }
        decoder.flush()
        draining = false
    }

    /// Moves to the start of the file.
    func seekToStart() throws(FFmpegError) {
        try input.seekToStart()
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
