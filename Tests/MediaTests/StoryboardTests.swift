import Foundation
import Logging
import TestSupport
import Testing

@testable import Media

@Suite("Storyboard rules")
struct StoryboardRules {
    @Test func intervalsAndLengths() {
        #expect(StoryboardPlan.forVideo(seconds: 29, after: 30) == nil)
        #expect(StoryboardPlan.forVideo(seconds: 30, after: 30)?.interval == 2)
        #expect(StoryboardPlan.forVideo(seconds: 200, after: 30)?.interval == 2)
        // Ten minutes: no more than 100 tiles.
        #expect(StoryboardPlan.forVideo(seconds: 600, after: 30)?.interval == 6)
    }

    @Test func cuesPointIntoTheSprite() {
        let layout = StoryboardLayout(
            tileWidth: 160, tileHeight: 90, times: (0..<12).map { Double($0) * 2 }, durationSeconds: 23.5)
        #expect(layout.width == 1600 && layout.height == 180)
        let vtt = layout.webVTT(sprite: "storyboard.webp")
        #expect(vtt.hasPrefix("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.webp#xywh=0,0,160,90\n"))
        #expect(vtt.contains("00:00:20.000 --> 00:00:22.000\nstoryboard.webp#xywh=0,90,160,90\n"))
        #expect(vtt.hasSuffix("00:00:22.000 --> 00:00:23.500\nstoryboard.webp#xywh=160,90,160,90\n"))
        #expect(StoryboardLayout.timestamp(3723.25) == "01:02:03.250")
    }
}

/// The storyboard of FULL_PROCESSING: each tile is the frame the independent judge decodes at its
/// cue's time (closer to it than to the frames an interval away), the cues parse, and the sprite
/// stays small.
@Suite("Storyboards", .oneAtATime)
struct StoryboardTests {
    /// Runs FULL_PROCESSING on `file` with storyboards from `after` seconds, in pieces or not.
    private func processed(
        _ file: String, after: Double?, pieceSeconds: Double? = nil, _ body: (ProcessingReport, URL) throws -> Void
    ) throws {
        try withProcessed(
            file, type: .fullProcessing,
            configure: {
                $0.storyboardAfter = after
                $0.pieceSeconds = pieceSeconds
            }, body)
    }

    /// The cues of a WebVTT file: start seconds and the `#xywh` rectangle.
    private func cues(_ text: String) throws -> [(start: Double, rect: [Int])] {
        try text.components(separatedBy: "\n\n").dropFirst().map { block in
            let lines = block.split(separator: "\n")
            let times = try #require(lines.first?.split(separator: " ").first)
            let parts = times.split(separator: ":").compactMap { Double($0) }
            let rect = try #require(lines.last?.split(separator: "=").last).split(separator: ",").compactMap { Int($0) }
            return (parts[0] * 3600 + parts[1] * 60 + parts[2], rect)
        }
    }

    /// Raw RGB frames of the lavfi graph `graph`, by ffprobe (its packets are the frames).
    private func frames(_ graph: String, bytesPerFrame: Int) throws -> [[UInt8]] {
        let output = try runProgram(
            try #require(FFprobe.executable),
            ["-v", "error", "-f", "lavfi", "-i", graph, "-show_packets", "-show_data", "-of", "json"])
        let json = try #require(try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any])
        let packets = json["packets"] as? [[String: Any]] ?? []
        return packets.compactMap { $0["data"] as? String }.map { data in
            // Lines of `00000000: 0102 0304 …  ................`: the hex between the colon and the text.
            data.split(separator: "\n").flatMap { line -> [UInt8] in
                guard line.count > 10 else { return [] }
                let hex = line.dropFirst(10).prefix(40).split(separator: " ").joined()
                return stride(from: 0, to: hex.count - 1, by: 2).compactMap { offset in
                    let start = hex.index(hex.startIndex, offsetBy: offset)
                    return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)
                }
            }
        }.filter { $0.count == bytesPerFrame }
    }

    private func difference(_ a: [UInt8], _ b: [UInt8]) -> Double {
        Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(max(1, a.count))
    }

    @Test func tilesAreTheFramesAtTheirCues() throws {
        try processed("long_hevc_720p_20s.mp4", after: 10) { report, directory in
            let sprite = try #require(report.outputs[.storyboard])
            let vttFile = try #require(report.outputs[.storyboardVtt])
            let vtt = try String(contentsOf: directory.appendingPathComponent(vttFile.path), encoding: .utf8)
            let cues = try cues(vtt)
            #expect(cues.count == 10 && cues.map(\.start) == stride(from: 0, to: 20, by: 2).map { Double($0) })
            #expect(sprite.width == 1600 && sprite.height == 90 && vttFile.width == 160 && vttFile.height == 90)
            // At most 150 KB of sprite per minute of video.
            #expect(Double(sprite.bytes) / (20.0 / 60) <= 150_000, "\(sprite.bytes) bytes for 20 s")
            let size = 160 * 90 * 3
            // The judge's frames at the cues' times (the fixture is 30 fps from 0), decoded by ffprobe.
            let numbers = cues.map { Int(($0.start * 30).rounded()) }
            let pick = numbers.map { "eq(n\\,\($0))" }.joined(separator: "+")
            let judged = try frames(
                "movie=\(Fixtures.path("long_hevc_720p_20s.mp4")),select='\(pick)',scale=160:90,format=rgb24",
                bytesPerFrame: size)
            try #require(judged.count == cues.count)
            let spritePath = directory.appendingPathComponent(sprite.path).path
            for (index, cue) in cues.enumerated() {
                let (x, y) = (cue.rect[0], cue.rect[1])
                let tile = try #require(
                    try frames("movie=\(spritePath),crop=160:90:\(x):\(y),format=rgb24", bytesPerFrame: size).first)
                // The frame at its own cue is the closest (JPEG and scaling aside; testsrc2 repeats
                // every 12 s, so a frame 12 s away may tie), and those an interval away are not.
                let differences = judged.map { difference(tile, $0) }
                #expect(differences[index] <= differences.min()! + 0.01, "cue \(cue.start): \(differences)")
                for other in [index - 1, index + 1] where judged.indices.contains(other) {
                    #expect(differences[index] < differences[other], "cue \(cue.start) against \(cues[other].start)")
                }
            }
        }
    }

    /// A long video's pieces each make the storyboard tiles of their own times from the frames
    /// they decode, and the join puts them together: the same storyboard as one pass, byte for
    /// byte, in pieces made here one after another and in pieces made apart (split, each piece by
    /// itself, join, as a fleet does). Without the pieces' tiles (pieces stored before they made
    /// them) the join, which decodes the video only for the preview's seconds, decodes keyframes
    /// alone for it, each cue starting at its keyframe.
    @Test func piecesMakeTheirPartOfTheStoryboard() throws {
        let file = "long_hevc_720p_20s.mp4"
        func storyboard(_ report: ProcessingReport, in directory: URL) throws -> (vtt: String, sprite: Data) {
            let vtt = directory.appendingPathComponent(try #require(report.outputs[.storyboardVtt]).path)
            let sprite = directory.appendingPathComponent(try #require(report.outputs[.storyboard]).path)
            return (try String(contentsOf: vtt, encoding: .utf8), try Data(contentsOf: sprite))
        }
        let whole = try withProcessed(file, type: .fullProcessing, configure: { $0.storyboardAfter = 10 }) {
            try storyboard($0, in: $1)
        }
        #expect(try cues(whole.vtt).map(\.start) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18])
        let here = try withProcessed(
            file, type: .fullProcessing,
            configure: {
                $0.storyboardAfter = 10
                $0.pieceSeconds = 5
            }
        ) { report, directory in
            #expect(report.outputs[.video]?.encoder?.why.first?.contains("pieces") == true)
            return try storyboard(report, in: directory)
        }
        #expect(here.vtt == whole.vtt && here.sprite == whole.sprite)

        let folder = try Fixtures.temporaryDirectory("storyboard-pieces")
        defer { try? FileManager.default.removeItem(at: folder) }
        func run(_ work: MediaProcessor.PieceWork, into name: String) throws -> (ProcessingReport, URL) {
            let directory = folder.appendingPathComponent(name)
            var request = MediaProcessor.Request(
                inputPath: Fixtures.path(file), outputDirectory: directory.path, type: .fullProcessing)
            request.storyboardAfter = 10
            request.pieceWork = work
            return (try MediaProcessor.run(request, logger: Logger(label: "test")), directory)
        }
        let spans = try #require(try run(.split(seconds: 5, after: 10), into: "split").0.pieces)
        #expect(spans.count > 1)
        let pieces = try spans.enumerated().map { index, span in
            try run(.encode(span), into: "piece-\(index)").1.appendingPathComponent(Pieces.fileName)
        }
        let (joined, directory) = try run(.join(pieces.map(\.path)), into: "join")
        let apart = try storyboard(joined, in: directory)
        #expect(apart.vtt == whole.vtt && apart.sprite == whole.sprite)

        for piece in pieces {
            try FileManager.default.removeItem(atPath: Pieces.tilesFile(ofPiece: piece.path))
        }
        let (fromKeyframes, keyframeDirectory) = try run(.join(pieces.map(\.path)), into: "join-keyframes")
        let starts = try cues(try storyboard(fromKeyframes, in: keyframeDirectory).vtt).map(\.start)
        // The first seconds come from the preview's decode (every 2 s), the rest from keyframes.
        #expect(starts.count == 4 && starts[0...1] == [0, 2], "\(starts)")
        #expect(abs(starts[2] - 8.333) < 0.01 && abs(starts[3] - 16.667) < 0.01, "\(starts)")
    }

    @Test func shortVideosAndOtherTypesGetNone() throws {
        try processed("long_hevc_720p_20s.mp4", after: 30) { report, _ in
            #expect(report.outputs[.storyboard] == nil && report.outputs[.storyboardVtt] == nil)
        }
        try processed("long_hevc_720p_20s.mp4", after: nil) { report, _ in
            #expect(report.outputs[.storyboard] == nil)
        }
    }
}
