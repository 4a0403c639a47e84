import Foundation

/// A storyboard for scrubbing a longer video, as Mux, YouTube, Jellyfin (trickplay) and Video.js
/// players read one: small upright SDR frames at a fixed interval in one image (`storyboard`), and
/// a WebVTT file (`storyboard_vtt`) whose cues point into it with `storyboard.webp#xywh=x,y,w,h`.
/// The image is WebP: at the same SSIM as JPEG it takes half the bytes (measured on the
/// benchmark's 1080p input: 30 tiles at SSIM 0.873, 37 KB against JPEG's 73 KB), and every
/// browser and phone that scrubs (iOS 14 and later) shows it.
public struct StoryboardPlan: Sendable, Equatable {
    /// Seconds between tiles: 2, or more for a video that would otherwise need more than
    /// `maxTiles` (so the sprite stays one image of at most 10×10 tiles).
    public let interval: Double
    static let maxTiles = 100
    static let columns = 10
    /// The longer side of a tile, in pixels (the shorter one keeps the picture's shape).
    static let tileMaxSide = 160
    /// libwebp's quality of the sprite (0 … 100): small frames for a seek bar, not stills.
    static let webpQuality = 85

    /// The plan for a video of `seconds`, when it lasts at least `after` seconds.
    public static func forVideo(seconds: Double, after: Double) -> StoryboardPlan? {
        guard seconds >= after, seconds > 0 else { return nil }
        return StoryboardPlan(interval: max(2, (seconds / Double(maxTiles)).rounded(.up)))
    }
}

/// Where each tile goes and what the cues say: pure, from the tiles' times alone.
struct StoryboardLayout: Equatable {
    let tileWidth: Int
    let tileHeight: Int
    /// Seconds at which each tile's frame is shown in the video, rising.
    let times: [Double]
    let durationSeconds: Double

    var columns: Int { min(StoryboardPlan.columns, times.count) }
    var rows: Int { (times.count + StoryboardPlan.columns - 1) / StoryboardPlan.columns }
    var width: Int { columns * tileWidth }
    var height: Int { rows * tileHeight }

    /// The top-left corner of tile `index` in the sprite.
    func origin(_ index: Int) -> (x: Int, y: Int) {
        ((index % StoryboardPlan.columns) * tileWidth, (index / StoryboardPlan.columns) * tileHeight)
    }

    /// The WebVTT file: one cue per tile, from its frame's time to the next tile's (the last to
    /// the end of the video), pointing at `sprite` (a URL relative to the VTT file's own).
    func webVTT(sprite: String) -> String {
        var text = "WEBVTT\n"
        for (index, start) in times.enumerated() {
            let end = index + 1 < times.count ? times[index + 1] : max(durationSeconds, start + 0.001)
            let (x, y) = origin(index)
            text += "\n\(Self.timestamp(start)) --> \(Self.timestamp(end))\n"
            text += "\(sprite)#xywh=\(x),\(y),\(tileWidth),\(tileHeight)\n"
        }
        return text
    }

    /// `hh:mm:ss.mmm`, as WebVTT spells a time.
    static func timestamp(_ seconds: Double) -> String {
        let milliseconds = Int((max(0, seconds) * 1000).rounded())
        let (hours, rest) = milliseconds.quotientAndRemainder(dividingBy: 3_600_000)
        let (minutes, rest2) = rest.quotientAndRemainder(dividingBy: 60_000)
        let (secs, millis) = rest2.quotientAndRemainder(dividingBy: 1000)
        return String(format: "%02d:%02d:%02d.%03d", hours, minutes, secs, millis)
    }
}

/// Takes the storyboard's tiles from frames as a pass decodes them: the first frame at or after
/// each tile's time (every frame of a transcode, or only keyframes when the pass copies the video
/// and decodes keyframes for this alone). A tile's cue starts at its frame's own time, so every
/// tile shows exactly what the video shows when its cue begins.
final class StoryboardCollector {
    let plan: StoryboardPlan
    private let transform: DisplayTransform
    private let timeBase: Rational
    private let threads: Int
    let tileWidth: Int
    let tileHeight: Int
    private var tiles: [(seconds: Double, bitmap: Bitmap)] = []
    private var next = 0.0
    /// The tiles came whole from the pieces of a long video: no frame is wanted any more.
    private var adopted = false

    /// A collector for frames from `start` seconds on (a piece of a long video takes the tiles
    /// of its own times, as one pass would).
    init(plan: StoryboardPlan, video: VideoInfo, timeBase: Rational, threads: Int, start: Double = 0) {
        self.plan = plan
        next = (start / plan.interval - 0.001).rounded(.up) * plan.interval
        transform = DisplayTransform(video: video)
        self.timeBase = timeBase
        self.threads = threads
        // Tiles of the upright picture, never larger than it; even sides, as 4:2:0 likes.
        let size = fit(width: video.width, height: video.height, maxSide: StoryboardPlan.tileMaxSide)
        (tileWidth, tileHeight) = (max(2, size.width & ~1), max(2, size.height & ~1))
    }

    /// Whether a frame shown at `seconds` would become a tile.
    func wants(_ seconds: Double) -> Bool {
        !adopted && tiles.count < StoryboardPlan.maxTiles && seconds >= next - 0.001
    }

    /// The tiles taken so far, for the join of a long video's pieces: a line of JSON (tile size,
    /// times) and the tiles' RGB bytes.
    var piece: [UInt8] {
        let header = PieceHeader(width: tileWidth, height: tileHeight, times: tiles.map(\.seconds))
        let line = (try? JSONEncoder().encode(header)).map { Array($0) } ?? []
        return line + [0x0A] + tiles.flatMap(\.bitmap.bytes)
    }

    private struct PieceHeader: Codable {
        var width: Int
        var height: Int
        var times: [Double]
    }

    /// Takes the tiles each piece of a long video made (`piece`, in order) instead of decoding:
    /// false (and nothing taken) when any is not what this collector would have made. They come
    /// from another child that read the same upload, so they are checked like any input.
    func adopt(pieces: [[UInt8]]) -> Bool {
        var taken: [(seconds: Double, bitmap: Bitmap)] = []
        let tileBytes = tileWidth * tileHeight * 3
        for piece in pieces {
            guard let newline = piece.firstIndex(of: 0x0A),
                let header = try? JSONDecoder().decode(PieceHeader.self, from: Data(piece[..<newline])),
                header.width == tileWidth, header.height == tileHeight,
                taken.count + header.times.count <= StoryboardPlan.maxTiles,
                piece.count - newline - 1 == header.times.count * tileBytes
            else { return false }
            for (index, seconds) in header.times.enumerated() {
                guard seconds.isFinite, seconds > taken.last?.seconds ?? -1 else { return false }
                let start = newline + 1 + index * tileBytes
                taken.append(
                    (
                        seconds,
                        Bitmap(
                            width: tileWidth, height: tileHeight, channels: 3,
                            bytes: Array(piece[start..<start + tileBytes]))
                    ))
            }
        }
        tiles = taken
        adopted = true
        return true
    }

    /// Makes a tile of `frame` (shown at `seconds`) if the storyboard wants one then.
    func offer(_ frame: Frame, seconds: Double) throws(MediaError) {
        guard wants(seconds) else { return }
        do {
            let upright = try transform.apply(to: frame, timeBase: timeBase, threads: threads)
            let bitmap = try Scaler(source: upright, width: tileWidth, height: tileHeight, layout: .rgb)
                .scale(upright).packedBitmap()
            tiles.append((seconds, bitmap))
        } catch {
            throw .internalFailure("could not make a storyboard tile (\(error))")
        }
        // The next tile's time: the next multiple of the interval after this frame (a keyframe
        // far from the last may skip a few).
        next = ((seconds / plan.interval).rounded(.down) + 1) * plan.interval
    }

    /// Writes `storyboard.webp` and `storyboard.vtt` into `directory`; none with fewer than two
    /// tiles (nothing to scrub).
    func write(to directory: URL, durationSeconds: Double) throws(MediaError) -> [OutputFile] {
        guard tiles.count >= 2 else { return [] }
        let layout = StoryboardLayout(
            tileWidth: tileWidth, tileHeight: tileHeight, times: tiles.map(\.seconds), durationSeconds: durationSeconds)
        var pixels = [UInt8](repeating: 0, count: layout.width * layout.height * 3)
        for (index, tile) in tiles.enumerated() {
            let (x, y) = layout.origin(index)
            for row in 0..<tileHeight {
                let source = row * tileWidth * 3
                let target = ((y + row) * layout.width + x) * 3
                pixels.replaceSubrange(
                    target..<target + tileWidth * 3, with: tile.bitmap.bytes[source..<source + tileWidth * 3])
            }
        }
        let image: [UInt8]
        do {
            let rgb = try Frame(bitmap: Bitmap(width: layout.width, height: layout.height, channels: 3, bytes: pixels))
            let yuv = try Scaler(source: rgb, width: layout.width, height: layout.height, layout: .webpYUV).scale(rgb)
            image = try ImageEncoder.webp(yuv, quality: StoryboardPlan.webpQuality)
        } catch {
            throw .internalFailure("could not encode the storyboard (\(error))")
        }
        let vtt = Array(layout.webVTT(sprite: OutputRole.storyboard.fileName).utf8)
        for (role, bytes) in [(OutputRole.storyboard, image), (.storyboardVtt, vtt)] {
            do {
                try Data(bytes).write(to: directory.appendingPathComponent(role.fileName), options: .atomic)
            } catch {
                throw .outputUnwritable(reason: "\(role.fileName): \(systemReason(error))")
            }
        }
        let durationMs = Int(durationSeconds * 1000)
        return [
            OutputFile(
                role: .storyboard, width: layout.width, height: layout.height, bytes: image.count,
                mimeType: OutputRole.storyboard.mimeType, durationMs: durationMs),
            OutputFile(
                role: .storyboardVtt, width: tileWidth, height: tileHeight, bytes: vtt.count,
                mimeType: OutputRole.storyboardVtt.mimeType, durationMs: durationMs),
        ]
    }
}
