/// One encoded video output stream: a filter graph (upright, tone-mapped, scaled) feeding
/// libx264, whose packets go to a stream of an `OutputContainer`. Frames keep their own
/// timestamps (variable frame rates stay as they were); a source faster than the encoding's cap
/// loses frames, and none is ever duplicated, so a gap of hours between two frames costs nothing;
/// a frame that repeats the last one is shown longer instead of encoded again (one a second is).
final class VideoEncodeBranch {
    let encoding: VideoEncoding
    let size: (width: Int, height: Int)
    /// The output's nominal rate: the source's, or the cap when the source is faster.
    let frameRate: Double?
    private let video: VideoInfo
    private let stream: StreamDescription
    private let threads: Int
    private var graph: FilterGraph
    /// The shape the graph was built for; a decoded frame of another shape (a mid-stream change
    /// of size or pixel format) gets a new graph scaling to the same output size.
    private var input: FrameShape
    private let encoder: StreamEncoder
    private let container: OutputContainer
    private let streamIndex: Int
    private let packet: Packet
    private let filtered: Frame
    private var frameCap: FrameRateCap
    private let encoderTimeBase: Rational
    /// The time base of the packets it writes.
    var timeBase: Rational { encoderTimeBase }
    /// One frame at the output rate, in the encoder's time base: what a packet lasts when libx264
    /// leaves it unset.
    private let nominalFrameDuration: Int64
    /// Where the source's picture ends, in the stream's time base: the latest frame's time plus
    /// its own duration, or the video stream's declared end when that is later (a slow last frame,
    /// whose duration only the index knows), at most `longestLastFrame` after the last frame. The
    /// last packet lasts until then, so the output lasts as long as its source.
    private var sourceEnd: Int64 = 0
    private var lastTimestamp: Int64 = 0
    private let declaredEnd: Int64?
    private let longestLastFrame: Int64
    /// The packet last received, written when the next arrives (or, lengthened, at the end).
    private let held: Packet
    private var holding = false
    /// The last frame sent to the encoder (a reference, no copy) and its time: a repeat of it is
    /// not encoded again, but for one a second, so a flood of "show the previous frame" packets
    /// costs a comparison each, not an encode.
    private let lastSent: Frame
    private var lastSentTimestamp: Int64?
    private let repeatInterval: Int64
    /// A few of the pictures given to the encoder, to score outputs against (nil: not kept).
    let samples: PictureSamples?

    /// Sets up the branch for frames of `stream` (stamped in its time base) and adds its stream
    /// to `container`. `declaredEnd` (seconds from the video's start) is where the source says its
    /// video ends.
    init(
        encoding: VideoEncoding, video: VideoInfo, stream: StreamDescription, container: OutputContainer, threads: Int,
        declaredEnd: Double?, sampled: Bool = false
    ) throws(FFmpegError) {
        self.encoding = encoding
        self.video = video
        self.stream = stream
        self.threads = threads
        self.container = container
        size = encoding.outputSize(width: video.width, height: video.height)
        frameCap = FrameRateCap(
            maxRate: encoding.fpsMax, timeBase: stream.timeBase, frameDuration: stream.nominalFrameDuration)
        // A rate from a damaged header (one frame in 68 years) is no rate at all.
        let sourceRate = stream.averageFrameRate.flatMap { (0.1...1000).contains($0.doubleValue) ? $0 : nil }
        let rate =
            sourceRate.map { $0.doubleValue > encoding.fpsMax + 0.01 ? Rational(Int32(encoding.fpsMax), 1) : $0 }
            ?? Rational(30, 1)
        frameRate = sourceRate == nil ? nil : rate.doubleValue
        samples =
            sampled
            ? PictureSamples(
                expectedFrames: Int((declaredEnd ?? 10) * rate.doubleValue), width: size.width, height: size.height)
            : nil
        input = FrameShape(
            width: stream.width, height: stream.height, pixelFormat: stream.rawFormat,
            sampleAspectRatio: stream.sampleAspectRatio)
        graph = try Self.makeGraph(for: input, video: video, stream: stream, size: size, threads: threads)
        // A damaged header can give a time base of a whole second (MOV's mdhd timescale): the
        // encoder and muxer then get a fine one, and frames are rescaled into it.
        let graphTimeBase = graph.outputTimeBase
        encoderTimeBase = graphTimeBase.denominator >= 1000 ? graphTimeBase : Rational(1, 90_000)
        encoder = try StreamEncoder(
            video: StreamEncoder.Video(
                codec: encoding.codec.encoderName, pass: encoding.pass, width: size.width, height: size.height,
                timeBase: encoderTimeBase,
                frameRate: rate, maxRateBitsPerSecond: encoding.maxrateKbps * 1000,
                bufferBits: encoding.bufsizeKbps * 1000,
                options: Self.options(encoding), threads: threads),
            globalHeader: container.needsGlobalHeader)
        streamIndex = try container.addStream(encoder: encoder)
        nominalFrameDuration = max(
            1, rescale(1, from: Rational(rate.denominator, rate.numerator), to: encoder.timeBase))
        let streamTime = { (seconds: Double) in
            rescale(Int64(seconds * 1_000_000), from: microsecondTimeBase, to: stream.timeBase)
        }
        self.declaredEnd = declaredEnd.map(streamTime)
        longestLastFrame = streamTime(10)
        repeatInterval = streamTime(1)
        lastSent = try Frame()
        packet = try Packet()
        held = try Packet()
        filtered = try Frame()
    }

    /// The encoder's options: preset and CRF, or, for a second pass, the statistics file instead
    /// of the CRF (the bit rate is the context's) and a tight rate tolerance (x264's default lets a
    /// low rate overshoot by 7 %; 0.05 keeps it within about 1 %).
    private static func options(_ encoding: VideoEncoding) -> [String: String] {
        switch encoding.pass {
        case nil: ["preset": encoding.preset, "crf": "\(encoding.crf)"]
        case .first(let stats): ["preset": encoding.preset, "crf": "\(encoding.crf)", "stats": stats]
        case .second(let stats, _): ["preset": encoding.preset, "stats": stats, "x264-params": "ratetol=0.05"]
        }
    }

    private static func makeGraph(
        for shape: FrameShape, video: VideoInfo, stream: StreamDescription, size: (width: Int, height: Int),
        threads: Int
    ) throws(FFmpegError) -> FilterGraph {
        let description = DisplayTransform(video: video).encodingFilter(
            width: size.width, height: size.height, sourceHeight: shape.height, sourceMatrix: stream.colorSpace)
        return try FilterGraph(description: description, input: shape, timeBase: stream.timeBase, threads: threads)
    }

    /// Filters and encodes one decoded frame whose timestamp was already moved to start at zero.
    func consume(_ frame: Frame) throws(MediaError) {
        guard let timestamp = frame.presentationTimestamp else { return }
        lastTimestamp = max(lastTimestamp, timestamp)
        sourceEnd = max(sourceEnd, timestamp + min(frame.duration ?? 0, longestLastFrame))
        guard frameCap.keeps(timestamp) else { return }
        if let lastSentTimestamp, timestamp - lastSentTimestamp < repeatInterval, frame.hasSamePicture(as: lastSent) {
            return
        }
        do {
            try lastSent.reference(frame)
            lastSentTimestamp = timestamp
            if frame.shape != input {
                // Drain what the old graph holds, then go on with one for the new shape.
                try graph.push(nil)
                try drainGraph()
                input = frame.shape
                graph = try Self.makeGraph(for: input, video: video, stream: stream, size: size, threads: threads)
            }
            try graph.push(frame)
            try drainGraph()
        } catch {
            throw .encoding("the video", error)
        }
    }

    /// Flushes the graph and the encoder's delay.
    func finish() throws(MediaError) {
        do {
            try graph.push(nil)
            try drainGraph()
            try encoder.send(nil)
            try drainEncoder()
            if holding {
                // MP4 ends a track at the latest presentation time plus duration of its packets.
                let declared = declaredEnd.map { min($0, lastTimestamp + longestLastFrame) } ?? 0
                let end = rescale(max(sourceEnd, declared), from: stream.timeBase, to: encoderTimeBase)
                if let presentation = held.presentationTimestamp, end - presentation > 0 {
                    held.duration = end - presentation
                }
                try container.write(held, stream: streamIndex, timeBase: encoderTimeBase)
            }
        } catch {
            throw .encoding("the video", error)
        }
    }

    private func drainGraph() throws(FFmpegError) {
        while try graph.pull(into: filtered) == .ready {
            filtered.clearDecoderHints()
            if let timestamp = filtered.presentationTimestamp, graph.outputTimeBase != encoderTimeBase {
                filtered.presentationTimestamp = rescale(timestamp, from: graph.outputTimeBase, to: encoderTimeBase)
            }
            try samples?.offer(
                filtered, seconds: Double(filtered.presentationTimestamp ?? 0) * encoderTimeBase.doubleValue)
            try encoder.send(filtered)
            try drainEncoder()
        }
    }

    private func drainEncoder() throws(FFmpegError) {
        while try encoder.receive(into: packet) == .ready {
            if packet.duration == 0 { packet.duration = nominalFrameDuration }
            if holding { try container.write(held, stream: streamIndex, timeBase: encoderTimeBase) }
            held.take(packet)
            holding = true
        }
    }
}

/// Keeps at most `maxRate` frames per second by dropping, never duplicating: the output's clock is
/// cut into ticks of 1/maxRate seconds from zero, and a frame is kept when it is the first in a
/// tick it reaches (a fifth of a tick early counts: the jitter of a source at the cap itself). So
/// 240 fps becomes an even 60 with every kept frame at its own time (players read 60 from it, not
/// 240), 144 fps averages 60, a 1 fps file stamped with a 1000 fps clock loses nothing, and output
/// frames can never outnumber decoded ones. The first frame seen counts as following one a frame
/// earlier, so the pieces of a long video, each starting at its own cut, keep exactly the frames
/// one pass keeps.
struct FrameRateCap {
    let maxRate: Double
    let timeBase: Rational
    /// One frame of the source, in `timeBase`.
    let frameDuration: Int64
    private var lastTick: Int64?

    init(maxRate: Double, timeBase: Rational, frameDuration: Int64) {
        self.maxRate = maxRate
        self.timeBase = timeBase
        self.frameDuration = frameDuration
    }

    private func tick(_ timestamp: Int64) -> Int64 {
        Int64((Double(timestamp) * timeBase.doubleValue * maxRate + 0.2).rounded(.down))
    }

    /// Whether the frame stamped `timestamp` (in `timeBase`) is kept.
    mutating func keeps(_ timestamp: Int64) -> Bool {
        let tick = tick(timestamp)
        if tick <= lastTick ?? self.tick(timestamp - frameDuration) { return false }
        lastTick = tick
        return true
    }
}
