import Foundation

/// METADATA: reads a file's container headers and reports what a chat app needs to know.
public enum Probe {
    /// Inspects `path` without decoding it, and checks it against `limits`.
    public static func inspect(path: String, limits: MediaLimits = .default) throws(MediaError) -> MediaInfo {
        try open(path: path, limits: limits).info
    }

    /// An open input with its probe result, for the stages that go on to decode it.
    struct Opened {
        let file: InputFile
        let info: MediaInfo
        let videoStream: StreamDescription
        let audioStream: StreamDescription?

        /// Where the video stream says it ends, in seconds from its start (never past the file's
        /// duration, which the limits checked): nil when it does not say.
        var videoEnd: Double? {
            guard let duration = videoStream.duration else { return nil }
            let seconds = Double(duration) * videoStream.timeBase.doubleValue
            return info.durationMs.map { min(seconds, Double($0) / 1000) } ?? nil
        }

        /// Where the video starts on the file's clock, in microseconds: a transcode's zero.
        var videoStartMicroseconds: Int64 {
            videoStream.startTime.map { rescale($0, from: videoStream.timeBase, to: microsecondTimeBase) }
                ?? file.startMicroseconds
        }
    }

    /// Opens `path` if its bytes are one of `formats` (demuxer names) and it is within `limits`.
    static func open(
        path: String, limits: MediaLimits, formats: Set<String> = UploadFormats.accepted
    ) throws(MediaError) -> Opened {
        let size = try fileSize(path)
        if size == 0 {
            throw .corruptInput("the file is empty (0 bytes): the upload did not complete; upload it again")
        }
        if size > limits.maxInputBytes {
            throw .limitsExceeded(
                "the file is \(size) bytes, over the \(limits.maxInputBytes)-byte limit; "
                    + "upload a shorter or smaller video, or raise --max-input-size")
        }
        // An MP4's sample tables are checked against its size before FFmpeg allocates for them.
        let tables = try MP4Tables.read(path: path, size: size)
        let file: InputFile
        do {
            file = try InputFile(path: path, acceptedFormats: formats, maxPixels: limits.maxPixels)
        } catch {
            throw classifyOpenFailure(error, limits: limits)
        }
        let container = file.describe()
        guard let videoIndex = file.bestVideoStream(),
            let video = container.streams.first(where: { $0.index == videoIndex }), !video.isAttachedPicture
        else {
            throw .unsupported(
                "the file holds no video stream (a \(container.formatName) file with "
                    + "\(container.streams.map(\.codecName).joined(separator: ", ")) streams); send a video file")
        }
        guard video.hasDecoder, video.width > 0, video.height > 0 else {
            throw .unsupported(
                "the video codec \(video.codecName) cannot be decoded here; re-export it as H.264 or HEVC")
        }
        guard video.pixelFormatName != nil else {
            // Probing decodes the first frames; none came out (a MOV's data reference to another
            // file, never opened, gives exactly this too).
            throw .corruptInput(
                "no frame of the video could be read from the start of the file: it is damaged, or its video data "
                    + "is kept in another file (which is never opened); upload the video itself, as one file")
        }
        if let end = video.indexEndOffset, end > size {
            throw .corruptInput(
                "the file is truncated: its index points at byte \(end) but it has only \(size); "
                    + "the upload was cut short, upload it again")
        }
        let audio = container.streams.first { $0.kind == .audio && $0.hasDecoder && $0.channels > 0 }
        var info = MediaInfo(container: container, video: video, audio: audio, size: size)
        info.video.edited = tables?.edited ?? false
        try limits.check(info)
        return Opened(file: file, info: info, videoStream: video, audioStream: audio)
    }

    private static func fileSize(_ path: String) throws(MediaError) -> Int64 {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw .inputMissing }
            throw .inputUnreadable(reason: String(cString: strerror(errno)))
        }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .inputUnreadable(reason: "not a regular file") }
        guard access(path, R_OK) == 0 else { throw .inputUnreadable(reason: String(cString: strerror(errno))) }
        return Int64(status.st_size)
    }

    /// Tells "not a video" and "a format uploads may not be" from "a video FFmpeg recognises but
    /// cannot read" (damaged, truncated), and a hostile file's appetite from a broken disk.
    private static func classifyOpenFailure(_ error: InputFile.OpenError, limits: MediaLimits) -> MediaError {
        let send = "send an MP4, MOV, WebM or MKV video"
        switch error {
        case .unrecognised:
            return .unsupported("the file is not a video container FFmpeg recognises; \(send)")
        case .refused(let format):
            return .unsupported(
                "the file is \(UploadFormats.describe(format)), not a video media-worker accepts; \(send)")
        case .io(let code):
            return .inputUnreadable(reason: String(cString: strerror(code)))
        case .oversized(let width, let height):
            return MediaLimits.tooManyPixels(width: width, height: height, limit: limits.maxPixels)
        case .unreadable(let format, let error):
            if error.isOutOfMemory { return .outOfMemory(error) }
            let name = format.split(separator: ",").first.map { $0.uppercased() } ?? format
            if error.isRefusedOpen {
                return .unsupported("the \(name) file refers to other files or URLs, which are never opened; \(send)")
            }
            if error.isNotImplemented {
                return .unsupported(
                    "the \(name) file uses a feature FFmpeg does not implement (\(error.text)); \(send)")
            }
            // Its bytes were read: whatever the demuxer refuses in them is the file's damage.
            return .corruptInput(
                "the file starts like a \(name) file but cannot be read (\(error.text)); it is probably "
                    + "truncated or damaged: upload it again")
        }
    }
}

extension MediaInfo {
    init(container: ContainerDescription, video: StreamDescription, audio: StreamDescription?, size: Int64) {
        let durationMicroseconds =
            container.durationMicroseconds
            ?? video.duration.map { rescale($0, from: video.timeBase, to: microsecondTimeBase) }
        self.init(
            container: Self.shortName(container, video: video, audio: audio),
            durationMs: durationMicroseconds.map { Int($0 / 1000) },
            sizeBytes: size,
            bitRate: container.bitRate,
            video: VideoInfo(video),
            audio: audio.map {
                AudioInfo(codec: $0.codecName, channels: $0.channels, sampleRate: $0.sampleRate, bitRate: $0.bitRate)
            },
            creationTime: container.metadata["creation_time"],
            location: container.metadata["location"] ?? container.metadata["com.apple.quicktime.location.ISO6709"]
        )
    }

    /// `mov,mp4,m4a,…` and `matroska,webm` are families; name the member this file is.
    private static func shortName(
        _ container: ContainerDescription, video: StreamDescription, audio: StreamDescription?
    ) -> String {
        let names = container.formatName.split(separator: ",").map(String.init)
        if names.contains("mov") {
            return container.metadata["major_brand"]?.hasPrefix("qt") == true ? "mov" : "mp4"
        }
        if names.contains("webm") {
            let webmVideo = ["vp8", "vp9", "av1"].contains(video.codecName)
            let webmAudio = audio.map { ["opus", "vorbis"].contains($0.codecName) } ?? true
            return webmVideo && webmAudio ? "webm" : "matroska"
        }
        return names.first ?? container.formatName
    }
}

extension VideoInfo {
    init(_ stream: StreamDescription) {
        let rotation = (stream.displayOrientation?.quarterTurns ?? 0) * 90
        var displayWidth = stream.width
        if let sar = stream.sampleAspectRatio, sar.numerator != sar.denominator {
            displayWidth = max(1, Int((Double(stream.width) * sar.doubleValue).rounded()))
        }
        let sideways = rotation == 90 || rotation == 270
        self.init(
            codec: stream.codecName,
            profile: stream.profileName,
            codedWidth: stream.width,
            codedHeight: stream.height,
            rotation: rotation,
            width: sideways ? stream.height : displayWidth,
            height: sideways ? displayWidth : stream.height,
            pixelAspectRatio: stream.declaredNonSquarePixels,
            frameRate: (stream.averageFrameRate ?? stream.realFrameRate).map {
                ($0.doubleValue * 1000).rounded() / 1000
            },
            variableFrameRate: Self.isVariable(stream),
            pixelFormat: stream.pixelFormatName,
            bitDepth: stream.bitDepth,
            colorPrimaries: stream.colorPrimaries,
            colorTransfer: stream.colorTransfer,
            colorSpace: stream.colorSpace,
            colorRange: stream.colorRange,
            hdr: stream.colorTransfer == "smpte2084" || stream.colorTransfer == "arib-std-b67",
            bitRate: stream.bitRate,
            mirrored: stream.displayOrientation?.mirrored ?? false,
            orientationExact: stream.displayOrientation?.exact ?? true,
            interlaced: stream.interlaced
        )
    }

    /// Whether frames come at uneven intervals. MP4/MOV index every sample, so their timestamps
    /// tell exactly; elsewhere, the average rate differing from the base rate gives it away.
    static func isVariable(_ stream: StreamDescription) -> Bool {
        let timestamps = stream.indexTimestamps
        if timestamps.count >= 8, timestamps.count * 10 >= Int(stream.frameCount ?? Int64(timestamps.count)) * 9 {
            let deltas = zip(timestamps.dropFirst(), timestamps).map { $0 - $1 }.filter { $0 > 0 }.sorted()
            guard !deltas.isEmpty else { return false }
            let median = deltas[deltas.count / 2]
            let tolerance = max(1, median / 50)
            let uneven = deltas.filter { abs($0 - median) > tolerance }.count
            return uneven > max(2, deltas.count / 100)
        }
        guard let average = stream.averageFrameRate?.doubleValue, let base = stream.realFrameRate?.doubleValue,
            average > 0
        else { return false }
        return abs(base - average) / average > 0.02
    }
}
