/// One encoded video output stream: a filter graph (upright, tone-mapped, scaled, frame rate
/// capped) feeding libx264, whose packets go to a stream of an `OutputContainer`.
final class VideoEncodeBranch {
    let encoding: VideoEncoding
    let size: (width: Int, height: Int)
    let frameRate: Double?
    private let graph: FilterGraph
    private let encoder: StreamEncoder
    private let container: OutputContainer
    private let streamIndex: Int
    private let input: FrameShape
    private let packet: Packet
    private let filtered: Frame
    /// One frame at the output rate, in the encoder's time base: the last frame's duration, which
    /// libx264 leaves unset and MP4 needs for the track to last as long as its source.
    private let nominalFrameDuration: Int64
    private(set) var framesEncoded = 0

    /// Sets up the branch for frames of `stream` (stamped in its time base) and adds its stream
    /// to `container`.
    init(
        encoding: VideoEncoding, video: VideoInfo, stream: StreamDescription, container: OutputContainer, threads: Int
    ) throws(FFmpegError) {
        self.encoding = encoding
        self.container = container
        size = encoding.outputSize(width: video.width, height: video.height)
        let sourceRate = video.frameRate ?? 30
        let cappedRate = sourceRate > encoding.fpsMax + 0.01 ? encoding.fpsMax : nil
        frameRate = cappedRate ?? video.frameRate
        input = FrameShape(
            width: stream.width, height: stream.height, pixelFormat: stream.rawFormat,
            sampleAspectRatio: stream.sampleAspectRatio)
        let description = DisplayTransform(video: video).encodingFilter(
            width: size.width, height: size.height, sourceHeight: stream.height,
            sourceMatrix: stream.colorSpace, frameRate: cappedRate)
        graph = try FilterGraph(description: description, input: input, timeBase: stream.timeBase, threads: threads)
        encoder = try StreamEncoder(
            video: StreamEncoder.Video(
                codec: "libx264", width: size.width, height: size.height, timeBase: graph.outputTimeBase,
                frameRate: graph.outputFrameRate ?? stream.averageFrameRate,
                maxRateBitsPerSecond: encoding.maxrateKbps * 1000, bufferBits: encoding.bufsizeKbps * 1000,
                options: ["preset": encoding.preset, "crf": "\(encoding.crf)"], threads: threads),
            globalHeader: container.needsGlobalHeader)
        streamIndex = try container.addStream(encoder: encoder)
        let rate = graph.outputFrameRate ?? stream.averageFrameRate ?? Rational(30, 1)
        nominalFrameDuration = max(
            1, rescale(1, from: Rational(rate.denominator, rate.numerator), to: encoder.timeBase))
        packet = try Packet()
        filtered = try Frame()
    }

    /// Filters and encodes one decoded frame whose timestamp was already moved to start at zero.
    func consume(_ frame: Frame) throws(MediaError) {
        guard frame.shape.width == input.width, frame.shape.height == input.height,
            frame.shape.pixelFormat == input.pixelFormat
        else {
            throw .unsupported(
                "the video changes size or format mid-stream (\(input.width)x\(input.height) to "
                    + "\(frame.width)x\(frame.height)); re-export it with one size throughout")
        }
        do {
            try graph.push(frame)
            try drainGraph()
        } catch {
            throw .internalFailure("encoding the video failed (\(error))")
        }
    }

    /// Flushes the graph and the encoder's delay.
    func finish() throws(MediaError) {
        do {
            try graph.push(nil)
            try drainGraph()
            try encoder.send(nil)
            try drainEncoder()
        } catch {
            throw .internalFailure("finishing the video encode failed (\(error))")
        }
    }

    private func drainGraph() throws(FFmpegError) {
        while try graph.pull(into: filtered) == .frame {
            filtered.clearPictureType()
            try encoder.send(filtered)
            framesEncoded += 1
            try drainEncoder()
        }
    }

    private func drainEncoder() throws(FFmpegError) {
        while try encoder.receive(into: packet) == .packet {
            if packet.duration == 0 { packet.duration = nominalFrameDuration }
            try container.write(packet, stream: streamIndex, timeBase: encoder.timeBase)
        }
    }
}
