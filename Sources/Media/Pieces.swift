import Foundation
import Logging

/// A long video encoded in pieces that can run anywhere, then joined without re-encoding: the
/// cut points (`spans`, from the packets alone), one piece's video (`encodeVideo`), the audio made
/// once for the whole video (`encodeAudio`), and the join (`join`). Every piece keeps the frames'
/// own timestamps on the output's timeline (the video's first frame is zero), so the join copies
/// packets as they are, and each piece uses the same encoder settings, starting with a keyframe
/// (x264's GOPs are closed), so a joined video plays as one encode.
public enum Pieces {
    /// The file one piece's video is written to, in the output folder.
    public static let fileName = "piece.mp4"

    /// One piece of the video: the frames stamped from `start` up to, not including, `end`, in
    /// the video stream's time base counted from its first frame; `end` nil runs to the end.
    /// When `start` is not a keyframe the piece decodes from the keyframe before it and drops
    /// what comes before the cut.
    public struct Span: Codable, Sendable, Equatable {
        public var start: Int64
        public var end: Int64?
        public var onKeyframe: Bool
        /// Where decoding starts: the keyframe before `start` (`start` itself on a keyframe; nil in
        /// spans recorded before it was kept).
        public var decodeFrom: Int64?

        /// The share of a whole pass's decoding this piece does, for a video lasting `duration`
        /// (the same time base): from its keyframe to its end.
        func share(ofDuration duration: Int64) -> Double {
            guard duration > 0 else { return 1 }
            return Double((end ?? duration) - (decodeFrom ?? start)) / Double(duration)
        }
    }

    /// The decoding every piece does before its cut (from the keyframe before it), all pieces
    /// together, as a share of one pass: cuts that would cost more are dropped, the costliest
    /// first, so the fleet's work on a video stays within 25 % of one pass's decode (a video with
    /// one keyframe at its start, cut into 5 s pieces, decoded 2.1 times over).
    static let leadInShare = 0.25

    /// Cuts the video into pieces of about `seconds`: at the first keyframe at or after each
    /// multiple of `seconds`, or at the multiple itself when that keyframe is more than a quarter
    /// of a piece later (sparse keyframes: a decode from the keyframe before the cut); a last
    /// piece shorter than half a piece joins the one before; then cuts are dropped, costliest
    /// decode first, until all pieces together decode at most `leadInShare` more than one pass
    /// (a video whose keyframes are too sparse is one pass). Reads packets only, nothing is
    /// decoded, and keeps only the cuts: times past the declared (and checked) duration count as
    /// its end, so a crafted file cannot ask for more pieces than its duration allows.
    static func spans(_ opened: Probe.Opened, seconds: Double) throws(MediaError) -> [Span] {
        let stream = opened.videoStream
        let start = stream.startTime ?? 0
        let unit = Double(rescale(1_000_000, from: microsecondTimeBase, to: stream.timeBase))
        let length = max(1, Int64(seconds * unit))
        let declared = Int64(Double(opened.info.durationMs ?? 0) / 1000 * unit)
        var cuts: [(time: Int64, onKeyframe: Bool, leadIn: Int64)] = [(0, true, 0)]
        var (target, last, keyframe) = (length, Int64(0), Int64(0))
        var replay = ReplayCheck(fileBytes: opened.info.sizeBytes)
        var continuity = TimestampContinuity(opened.file, video: stream.index)
        do {
            let packet = try Packet()
            opened.file.discardAllStreams(except: [stream.index])
            while try opened.file.read(into: packet) {
                try replay.count(packet.size, stream: packet.streamIndex)
                guard packet.streamIndex == stream.index else { continue }
                continuity.mend(packet, timeBase: stream.timeBase)
                guard let time = packet.presentationTimestamp else { continue }
                let relative = min(time - start, declared)
                defer { last = max(last, relative) }
                if relative - last > length {
                    // A gap with no frames (a timestamp jump): no pieces inside it.
                    while target + length / 4 < last {
                        cuts.append((target, false, target - keyframe))
                        target += length
                    }
                    target = max(target, relative)
                }
                guard packet.isKeyframe else { continue }
                defer { keyframe = max(keyframe, relative) }
                guard relative >= target else { continue }
                // No keyframe came within a quarter piece of these targets: cut there.
                while target + length / 4 < relative {
                    cuts.append((target, false, target - keyframe))
                    target += length
                }
                if relative >= target {
                    cuts.append((relative, true, 0))
                    target = relative + length
                }
            }
        } catch let error as MediaError {
            throw error
        } catch {
            throw .decoding(error)
        }
        while target + length / 2 <= last {
            cuts.append((target, false, target - keyframe))
            target += length
        }
        // Pieces are found again by seeking to their times: timestamps that restart or leap
        // (`TimestampContinuity`) name two places at once, so such a video is one pass.
        if continuity.jumpCount > 0 { return [Span(start: 0, end: nil, onKeyframe: true, decodeFrom: 0)] }
        while cuts.count > 1, let final = cuts.last, last - final.time < length / 2 { cuts.removeLast() }
        while cuts.reduce(0, { $0 + $1.leadIn }) > Int64(Double(last) * leadInShare),
            let costliest = cuts.indices.dropFirst().max(by: { cuts[$0].leadIn < cuts[$1].leadIn })
        {
            cuts.remove(at: costliest)
        }
        return cuts.indices.map { index in
            Span(
                start: cuts[index].time, end: index + 1 < cuts.count ? cuts[index + 1].time : nil,
                onKeyframe: cuts[index].onKeyframe, decodeFrom: cuts[index].time - cuts[index].leadIn)
        }
    }

    /// Encodes the video frames of `span` (no audio) with `encoding` into `path`, an MP4 (it keeps
    /// the encoder's decoding and presentation times exactly, the first piece's negative ones
    /// included). `progress` gets 0…1 of the span.
    /// With a `storyboard` plan, it also takes the storyboard's tiles of the span from the frames
    /// it decodes, and returns them (`StoryboardCollector.piece`) for the join.
    @discardableResult
    static func encodeVideo(
        _ opened: Probe.Opened, span: Span, encoding: VideoEncoding, path: URL, threads: Int, limits: MediaLimits,
        storyboard: StoryboardPlan? = nil, progress: (Double) throws(MediaError) -> Void
    ) throws(MediaError) -> [UInt8]? {
        let stream = opened.videoStream
        let zero = stream.startTime ?? 0
        let seconds = { (time: Int64) in Double(time) * stream.timeBase.doubleValue }
        let tiles = storyboard.map {
            StoryboardCollector(
                plan: $0, video: opened.info.video, timeBase: stream.timeBase, threads: threads,
                start: seconds(span.start))
        }
        do {
            let container = try OutputContainer(path: path.path, format: "mp4")
            let branch = try VideoEncodeBranch(
                encoding: encoding, video: opened.info.video, stream: stream, container: container, threads: threads,
                declaredEnd: span.end.map(seconds) ?? opened.videoEnd)
            // A piece starts late on the output's timeline; MP4 says so in an edit list counted in
            // the movie's time scale, which must be the packets' own for the start to be exact.
            try container.writeHeader(options: ["movie_timescale": "\(branch.timeBase.denominator)"])
            let reader = try VideoFrameReader(opened, threads: threads, limits: limits)
            let frame = try Frame()
            var first = false
            if span.start > 0 { try seek(reader, to: zero + span.start, frame: frame, first: &first) }
            let end = span.end.map(seconds) ?? max(opened.videoEnd ?? 0, seconds(span.start) + 1)
            while try first || reader.next(into: frame), let timestamp = frame.timestamp {
                first = false
                let shifted = timestamp - zero
                if shifted < span.start { continue }
                if let stop = span.end, shifted >= stop { break }
                frame.presentationTimestamp = shifted
                try tiles?.offer(frame, seconds: seconds(shifted))
                try branch.consume(frame)
                try progress(min(1, (seconds(shifted) - seconds(span.start)) / (end - seconds(span.start))))
            }
            try branch.finish()
            try container.finish()
        } catch let error as MediaError {
            throw error
        } catch {
            throw .decoding(error)
        }
        return tiles?.piece
    }

    /// Where a piece file's storyboard tiles are kept: beside it, under its name (`3.mp4`,
    /// `3.tiles`).
    public static func tilesFile(ofPiece path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("tiles").path
    }

    static func tilesFile(of piece: URL) -> URL { URL(fileURLWithPath: tilesFile(ofPiece: piece.path)) }

    /// The most a piece's tiles can weigh: every tile of a storyboard at the largest size, and
    /// their header. A larger file is no piece's and is not read.
    static let largestTilesFile =
        StoryboardPlan.maxTiles * StoryboardPlan.tileMaxSide * StoryboardPlan.tileMaxSide * 3 + (64 << 10)

    /// The storyboard tiles kept beside each of `pieces`, in order; nil when any has none (or
    /// more than a piece's tiles can weigh).
    static func tiles(beside pieces: [URL]) -> [[UInt8]]? {
        let tiles = pieces.map { piece -> [UInt8]? in
            let file = tilesFile(of: piece)
            guard let size = try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int,
                size <= largestTilesFile
            else { return nil }
            return (try? Data(contentsOf: file)).map { [UInt8]($0) }
        }
        return tiles.contains { $0 == nil } ? nil : tiles.compactMap { $0 }
    }

    /// Moves `reader` to a keyframe at or before `timestamp` and decodes its first frame into
    /// `frame` (`first` says it is there). Some containers seek past the keyframe asked for (an
    /// MPEG program stream seeks by bytes): then earlier and earlier, down to the start, until
    /// the first frame comes no later than the cut, so no frame before the cut is lost.
    private static func seek(_ reader: VideoFrameReader, to timestamp: Int64, frame: Frame, first: inout Bool) throws {
        let second = rescale(1_000_000, from: microsecondTimeBase, to: reader.stream.timeBase)
        for back in [0, 2, 10, 60] {
            try reader.seek(toKeyframeBefore: timestamp - Int64(back) * second)
            if try reader.next(into: frame), (frame.timestamp ?? .max) <= timestamp {
                first = true
                return
            }
        }
        try reader.seekToStart()
        first = try reader.next(into: frame)
    }

    /// Makes the audio of the whole video once, as the main video would have it (AAC), into
    /// `path` (an MP4). Returns what became of it, nil when there is no audio (and then no file).
    static func encodeAudio(
        _ opened: Probe.Opened, encoding: VideoEncoding, gainDB: Double, path: URL
    ) throws(MediaError) -> (path: String, why: String, kilobitsPerSecond: Int)? {
        guard let decision = AudioTrack.Decision(opened, encoding: encoding, gainDB: gainDB) else { return nil }
        let (container, track): (OutputContainer, AudioTrack)
        do {
            container = try OutputContainer(path: path.path, format: "mp4")
            track = try AudioTrack(
                decision, opened: opened, container: container, zeroMicroseconds: opened.videoStartMicroseconds)
            try container.writeHeader(options: [:])
        } catch {
            throw .decoding(error)
        }
        try opened.decodeAudioAlone { frame in try track.consume(frame) }
        do {
            try track.finish()
            try container.finish()
        } catch {
            throw .decoding(error)
        }
        return (track.path, track.why, track.kilobitsPerSecond)
    }

    /// Joins the video `pieces` (in order) and the `audio` into one MP4 with its index first,
    /// copying every packet, the audio interleaved with the video by time. The pieces are this
    /// program's own files; one that is not (another format, another time base) is refused.
    static func join(pieces: [URL], audio: URL?, to path: URL) throws(MediaError) {
        do {
            let container = try OutputContainer(path: path.path, format: "mp4")
            // A piece over a stretch with no decodable frame (a damaged middle) holds no video.
            let inputs = try pieces.map { piece throws(MediaError) in try Self.open(piece) }.filter {
                $0.describe().streams.first?.kind == .video
            }
            guard let first = inputs.first else {
                throw MediaError.corruptInput("no video frame could be decoded; the file is damaged, upload it again")
            }
            let timeBase = try videoTimeBase(of: first)
            let videoIndex = try container.addStream(copying: first, stream: 0, filter: nil, clockwiseQuarterTurns: 0)
            let audioInput = try audio.map { file throws(MediaError) in try Self.open(file) }
            let audioIndex = try audioInput.map { input throws(FFmpegError) in
                try container.addStream(copying: input, stream: 0, filter: nil, clockwiseQuarterTurns: 0)
            }
            let audioTimeBase = audioInput?.describe().streams.first?.timeBase ?? microsecondTimeBase
            try container.writeHeader(options: ["movflags": "+faststart"])
            let (video, held, sound) = (try Packet(), try Packet(), try Packet())
            var soundWaiting = try audioInput?.read(into: sound) ?? false
            var lastDecoding: Int64?
            /// Writes a video packet, after the audio that comes before it.
            func write(_ packet: Packet) throws {
                packet.mendTimestamps(after: lastDecoding)
                lastDecoding = packet.decodingTimestamp
                let seconds = Double(packet.timestamp ?? 0) * timeBase.doubleValue
                while soundWaiting, let audioInput, let audioIndex,
                    Double(sound.timestamp ?? 0) * audioTimeBase.doubleValue <= seconds
                {
                    try container.writeCopied(sound, stream: audioIndex, timeBase: audioTimeBase, offset: 0)
                    soundWaiting = try audioInput.read(into: sound)
                }
                try container.writeCopied(packet, stream: videoIndex, timeBase: timeBase, offset: 0)
            }
            // One packet is held back, so the very last can be given the duration MP4 reads back
            // as none: the video then lasts as long as the last piece says it does.
            var holding = false
            for input in inputs {
                guard try videoTimeBase(of: input) == timeBase else {
                    throw MediaError.internalFailure("the pieces were encoded with different time bases")
                }
                while try input.read(into: video) {
                    if holding { try write(held) }
                    held.take(video)
                    holding = true
                }
            }
            if holding {
                let last = inputs.last?.describe().streams.first
                if held.duration == 0, let start = last?.startTime, let length = last?.duration,
                    let presentation = held.presentationTimestamp, start + length > presentation
                {
                    held.duration = start + length - presentation
                }
                try write(held)
            }
            while soundWaiting, let audioInput, let audioIndex {
                try container.writeCopied(sound, stream: audioIndex, timeBase: audioTimeBase, offset: 0)
                soundWaiting = try audioInput.read(into: sound)
            }
            try container.finish()
        } catch let error as MediaError {
            throw error
        } catch {
            throw .internalFailure("could not join the pieces (\(error))")
        }
    }

    /// Whether `opened` is made in pieces of `seconds`: when it lasts at least two pieces and its
    /// video is encoded (a video that can be copied costs no encode to spread).
    static func worthSplitting(_ info: MediaInfo, seconds: Double?, encoding: VideoEncoding, allowCopy: Bool)
        -> Bool
    {
        guard let seconds, seconds > 0, let duration = info.durationMs else { return false }
        return Double(duration) / 1000 >= 2 * seconds
            && !(allowCopy && CopyCheck(info, encoding: encoding).videoFitsPicture)
    }

    private static func open(_ file: URL) throws(MediaError) -> InputFile {
        do {
            return try InputFile(
                path: file.path, acceptedFormats: [UploadFormats.mp4], maxPixels: MediaLimits.default.maxPixels)
        } catch {
            throw .internalFailure("a piece (\(file.lastPathComponent)) cannot be read back (\(error))")
        }
    }

    private static func videoTimeBase(of input: InputFile) throws(MediaError) -> Rational {
        guard let stream = input.describe().streams.first, stream.kind == .video else {
            throw .internalFailure("a piece holds no video")
        }
        return stream.timeBase
    }
}
