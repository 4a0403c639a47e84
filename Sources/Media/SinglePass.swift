import Foundation
import Logging

/// COMPRESSION, PREVIEW and FULL_PROCESSING in ONE read of the input: the demuxer feeds one video
/// decoder whose frames go to every consumer (main encoder, preview encoder, thumbnail scorer),
/// each with its own filter graph and scaler, and one audio decoder feeding the AAC encoder.
/// Stream copies (remux) take the packets as read. Everything runs on the calling thread, one
/// frame at a time, so memory does not grow with the input's length.
final class SinglePass {
    /// Which outputs this pass makes.
    struct Plan {
        var main: VideoEncoding?
        var preview: Bool
        var thumbnails: Bool
        var allowRemux: Bool
    }

    /// What the pass wrote, before the caller names the files.
    struct Result {
        var mainPath: URL?
        var mainEncoder: EncoderReport?
        var previewPath: URL?
        var previewEncoder: EncoderReport?
        var stills: [OutputFile] = []
        var damage: DamageReport?
    }

    private let opened: Probe.Opened
    private let plan: Plan
    private let directory: URL
    private let threads: Int
    private let limits: MediaLimits
    private let settings: ThumbnailSettings
    private let logger: Logger

    // Set up by `prepare()`.
    private var transcode: MainTranscode?
    private var remux: Remux?
    private var preview: PreviewEncode?
    private var scorer: CandidateScorer
    private var videoDecoder: StreamDecoder?
    private var audioDecoder: StreamDecoder?
    private let videoStart: Int64
    private let audioStart: Int64
    private let durationSeconds: Double
    private var budget: DecodeBudget
    private var videoDamage: DamagedPackets
    private var audioDamage: DamagedPackets
    private let frame: Frame
    private let packet: Packet

    init(
        _ opened: Probe.Opened, plan: Plan, directory: URL, threads: Int, limits: MediaLimits,
        settings: ThumbnailSettings, logger: Logger
    ) throws(MediaError) {
        self.opened = opened
        self.plan = plan
        self.directory = directory
        self.threads = threads
        self.limits = limits
        self.settings = settings
        self.logger = logger
        // The output's zero is the video's first timestamp; audio keeps its offset from it.
        let video = opened.videoStream
        let start =
            video.startTime.map { rescale($0, from: video.timeBase, to: microsecondTimeBase) }
            ?? opened.file.startMicroseconds
        videoStart = rescale(start, from: microsecondTimeBase, to: video.timeBase)
        audioStart = opened.audioStream.map { rescale(start, from: microsecondTimeBase, to: $0.timeBase) } ?? 0
        durationSeconds = max(0.001, Double(opened.info.durationMs ?? 0) / 1000)
        budget = DecodeBudget(limits: limits, durationMs: opened.info.durationMs)
        videoDamage = DamagedPackets(video: opened)
        audioDamage = DamagedPackets(
            stream: "audio", expectedPackets: nil,
            packetsPerSecond: opened.audioStream.map { Double($0.sampleRate) / 1024 })
        let times =
            plan.thumbnails || plan.preview ? settings.candidateTimes(durationMs: opened.info.durationMs ?? 0) : []
        scorer = CandidateScorer(times: times, logger: logger)
        do {
            frame = try Frame()
            packet = try Packet()
        } catch {
            throw .internalFailure("could not allocate frames (\(error))")
        }
    }

    /// Makes the plan's outputs. Throws `CopyRefused` when a copy the plan chose cannot be made
    /// (the caller runs the plan again without copies).
    func run(progress: (Double) throws(MediaError) -> Void) throws -> Result {
        do {
            try prepare()
            try readAll(progress: progress)
            return try finish()
        } catch let refused as CopyRefused {
            throw refused
        } catch {
            throw MediaError.decoding(error)
        }
    }

    /// Opens the outputs, encoders and decoders the plan needs.
    private func prepare() throws {
        let input = opened.file
        let video = opened.videoStream
        input.discardAllStreams(except: Set([video.index] + (opened.audioStream.map { [$0.index] } ?? [])))
        if let encoding = plan.main {
            // The main output: a transcode, a remux, or both (then the smaller wins).
            let check = RemuxCheck(opened.info, encoding: encoding)
            let remuxable = plan.allowRemux && check.fitsPicture
            logger.debug(
                "main output", metadata: ["remux": "\(remuxable && check.withinProfile)", "why": "\(check.reason)"])
            if !(remuxable && check.withinProfile) {
                transcode = try MainTranscode(
                    opened, encoding: encoding, path: directory.appendingPathComponent(".video.transcode.partial"),
                    threads: threads)
            }
            if remuxable {
                remux = try Remux(opened, path: directory.appendingPathComponent(".video.remux.partial"))
            }
        }
        if plan.preview {
            preview = try PreviewEncode(
                opened, path: directory.appendingPathComponent(".preview.partial"), threads: threads)
        }
        if decodingVideo {
            videoDecoder = try StreamDecoder(
                input: input, stream: video.index, timeBase: video.timeBase, threads: threads,
                maxPixels: limits.maxPixels, frameDuration: video.nominalFrameDuration)
        }
        if transcode?.audio != nil, let audio = opened.audioStream {
            audioDecoder = try StreamDecoder(
                input: input, stream: audio.index, timeBase: audio.timeBase, threads: 1, maxPixels: 0)
        }
    }

    /// Whether decoded video is still needed: for a transcode always; for stills and the preview
    /// only until their windows have passed (a remux copies the rest without decoding).
    private var decodingVideo: Bool {
        transcode != nil || (plan.thumbnails && !scorer.done) || (preview.map { !$0.finished } ?? false)
    }

    private func readAll(progress: (Double) throws(MediaError) -> Void) throws {
        let video = opened.videoStream
        let input = opened.file
        var replay = ReplayCheck(fileBytes: opened.info.sizeBytes)
        while try input.read(into: packet) {
            try replay.count(packet.size, stream: packet.streamIndex)
            if packet.streamIndex == video.index {
                if decodingVideo, let videoDecoder {
                    try videoDecoder.decode(packet, into: frame, damage: &videoDamage) {
                        try takeVideoFrame(progress: progress)
                    }
                } else if let timestamp = packet.timestamp {
                    let seconds = Double(timestamp - videoStart) * video.timeBase.doubleValue
                    try budget.check(seconds: seconds)
                    try progress(min(0.99, seconds / durationSeconds))
                }
                try copy(packet, stream: video.index)
            } else if let audio = opened.audioStream, packet.streamIndex == audio.index {
                if let audioDecoder {
                    try audioDecoder.decode(packet, into: frame, damage: &audioDamage) { try takeAudioFrame() }
                }
                try copy(packet, stream: audio.index)
            }
            if remux == nil && transcode == nil && !decodingVideo { break }
        }
        if decodingVideo, let videoDecoder {
            try videoDecoder.decode(nil, into: frame, damage: &videoDamage) { try takeVideoFrame(progress: progress) }
        }
        if let audioDecoder {
            try audioDecoder.decode(nil, into: frame, damage: &audioDamage) { try takeAudioFrame() }
        }
    }

    /// Copies a packet into the remux, if there is one. A packet the muxer refuses (a stream whose
    /// picture size or audio format changes mid-way) ends the copy: the encode made alongside
    /// wins, and without one the caller encodes instead (`CopyRefused`).
    private func copy(_ packet: Packet, stream: Int) throws {
        guard let remux else { return }
        do {
            try remux.write(packet, stream: stream)
        } catch .corruptInput(let reason) {
            logger.info("the stream cannot be copied; it is encoded instead", metadata: ["why": "\(reason)"])
            self.remux = nil
            try? FileManager.default.removeItem(at: remux.path)
            if transcode == nil { throw CopyRefused() }
        }
    }

    /// The copy the plan chose failed part-way: encode instead.
    struct CopyRefused: Error {}

    private func takeVideoFrame(progress: (Double) throws(MediaError) -> Void) throws {
        guard let timestamp = frame.timestamp else { return }
        let shifted = timestamp - videoStart
        let seconds = Double(shifted) * opened.videoStream.timeBase.doubleValue
        try budget.charge(width: frame.width, height: frame.height, seconds: seconds)
        if let preview, !preview.started {
            if let candidate = try scorer.offer(frame, seconds: seconds), !candidate.score.isUnusable {
                preview.start(at: shifted)  // the first usable candidate: not a black opening
            } else if scorer.done {
                preview.start(at: shifted)  // no usable candidate at all: start after the last one
            }
        } else {
            _ = try scorer.offer(frame, seconds: seconds)
        }
        if let preview, preview.started, !preview.finished {
            try preview.consume(frame, timestamp: shifted)
        }
        if let transcode {
            frame.presentationTimestamp = shifted
            try transcode.video.consume(frame)
        }
        try progress(min(0.99, seconds / durationSeconds))
    }

    private func takeAudioFrame() throws {
        guard let branch = transcode?.audio, let audio = opened.audioStream else { return }
        let seconds = Double((frame.timestamp ?? audioStart) - audioStart) * audio.timeBase.doubleValue
        try branch.consume(frame, startSeconds: seconds)
    }

    private func finish() throws -> Result {
        var result = Result()
        if videoDamage.skipped + audioDamage.skipped > 0 {
            result.damage = DamageReport(
                videoPacketsSkipped: videoDamage.skipped, audioPacketsSkipped: audioDamage.skipped)
            logger.warning("skipped undecodable packets", metadata: ["damage": "\(result.damage!)"])
        }
        if let preview {
            // The video ended before the preview could start: the preview is its beginning.
            if !preview.started { try encodePreviewFromStart(preview) }
            try preview.finish()
            result.previewPath = preview.path
            result.previewEncoder = preview.report
        }
        try transcode?.finish()
        try remux?.finish()
        result.mainPath = try chooseMain()
        result.mainEncoder = result.mainPath == remux?.path ? remux?.report(opened.info) : transcode?.report
        if plan.thumbnails {
            guard let best = scorer.best else {
                throw MediaError.corruptInput("no video frame could be decoded; the file is damaged, upload it again")
            }
            result.stills = try StillWriter(settings: settings, threads: threads)
                .write(best, video: opened.info.video, timeBase: opened.videoStream.timeBase, to: directory)
        }
        return result
    }

    /// Seeks back to the start and feeds the preview its first seconds.
    private func encodePreviewFromStart(_ preview: PreviewEncode) throws {
        let reader = try VideoFrameReader(opened, threads: threads, limits: limits)
        try reader.seek(toKeyframeBefore: opened.videoStream.startTime ?? 0)
        preview.start(at: 0)
        while !preview.finished, try reader.next(into: frame), let timestamp = frame.timestamp {
            try preview.consume(frame, timestamp: timestamp - videoStart)
        }
    }

    /// The remux when there is no transcode, or when the transcode came out larger.
    private func chooseMain() throws -> URL? {
        guard let remux else { return transcode?.path }
        guard let transcode else { return remux.path }
        let size = { (url: URL) in (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0 }
        if size(transcode.path) > size(remux.path) {
            logger.debug("the transcode came out larger than the source: keeping the remux")
            try? FileManager.default.removeItem(at: transcode.path)
            return remux.path
        }
        try? FileManager.default.removeItem(at: remux.path)
        return transcode.path
    }
}

/// Each byte of a file belongs to one packet at most: a stream whose packets add up to more than
/// the file (an MP4 edit list replaying a clip thousands of times, chunk offsets all pointing at
/// one frame) plays its data again and again. Refused before it costs a decode or a copy of it.
struct ReplayCheck {
    let fileBytes: Int64
    private var read: [Int: Int64] = [:]

    init(fileBytes: Int64) { self.fileBytes = fileBytes }

    /// Some containers share a little between streams (DV's audio lives in its video frames).
    var allowance: Int64 { fileBytes + fileBytes / 20 + (256 << 10) }

    mutating func count(_ bytes: Int, stream: Int) throws(MediaError) {
        let total = read[stream, default: 0] + Int64(bytes)
        read[stream] = total
        if total > allowance {
            throw .limitsExceeded(
                "the file's index plays the same data more than once (over \(total) bytes of packets from a "
                    + "\(fileBytes)-byte file); it is crafted or damaged: re-export it")
        }
    }
}
