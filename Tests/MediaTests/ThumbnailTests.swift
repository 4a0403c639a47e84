import Foundation
import Logging
import Media
import TestSupport
import Testing

/// Runs THUMBNAIL on a fixture into a fresh folder and hands the report and folder to `body`.
func withThumbnail<R>(
    _ file: String, _ body: (ProcessingReport, URL) throws -> R
) throws -> R {
    let directory = try Fixtures.temporaryDirectory("thumbnail")
    defer { try? FileManager.default.removeItem(at: directory) }
    let request = MediaProcessor.Request(
        inputPath: Fixtures.path(file), outputDirectory: directory.path, type: .thumbnail)
    let report = try MediaProcessor.run(request, logger: Logger(label: "test"))
    return try body(report, directory)
}

/// Checks the four corner markers of an upright picture.
func expectUpright(_ image: Bitmap, _ comment: Comment? = nil) {
    let (w, h) = (image.width, image.height)
    let corners: [(Marker, Int, Int)] = [
        (.red, w / 12, h / 12), (.green, w - 1 - w / 12, h / 12),
        (.blue, w / 12, h - 1 - h / 12), (.white, w - 1 - w / 12, h - 1 - h / 12),
    ]
    for (marker, x, y) in corners {
        let pixel = image.pixel(x: x, y: y)
        #expect(
            marker.matches(pixel), "\(marker) corner at (\(x), \(y)) is \(pixel) \(comment.map { "— \($0)" } ?? "")")
    }
}

@Suite("THUMBNAIL", .oneAtATime)
struct ThumbnailTests {
    @Test(arguments: goodFixtures)
    func writesUprightPosterAndThumbnail(_ fixture: ProbeExpectation) throws {
        try withThumbnail(fixture.file) { report, directory in
            let poster = try #require(report.outputs[.poster])
            let thumbnail = try #require(report.outputs[.thumbnail])
            let (width, height) = fixture.displayed
            let longest = max(width, height)
            // Never upscaled; long sides capped at 1280 and 320; aspect ratio kept to a pixel.
            #expect(max(poster.width, poster.height) == min(longest, 1280))
            #expect(max(thumbnail.width, thumbnail.height) == min(longest, 320))
            for output in [poster, thumbnail] {
                #expect(abs(Double(output.width) / Double(output.height) - Double(width) / Double(height)) < 0.01)
                #expect(output.mimeType == "image/jpeg")
                let path = directory.appendingPathComponent(output.path).path
                #expect(
                    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) == output.bytes)
                let decoded = try Snapshot.firstFrame(of: path)
                #expect(decoded.width == output.width && decoded.height == output.height)
                expectUpright(decoded, "\(fixture.file) \(output.path)")
            }
            #expect(report.stills.map(\.role) == [.poster, .thumbnail])
            #expect(report.stills.allSatisfy { $0.blurhash?.count == 28 })
        }
    }

    @Test func skipsTheBlackOpening() throws {
        try withThumbnail("black_first_second.mp4") { report, directory in
            let poster = try #require(report.outputs[.poster])
            #expect(try #require(poster.timeMs) >= 1000)
            let image = try Snapshot.firstFrame(of: directory.appendingPathComponent(poster.path).path)
            let luma = image.mean().enumerated().map { [0.2126, 0.7152, 0.0722][$0.offset] * $0.element }.reduce(0, +)
            #expect(luma > 60)
        }
    }

    /// Tone-mapped HDR keeps SDR brightness and saturation: a washed-out (untone-mapped) render
    /// has a pinkish red marker and a grey-ish mean.
    @Test(arguments: ["hdr_hevc_hlg_10bit.mp4", "hdr_hevc_pq_10bit.mp4"])
    func toneMapsHDR(_ file: String) throws {
        try withThumbnail(file) { report, directory in
            let poster = try #require(report.outputs[.poster])
            let image = try Snapshot.firstFrame(of: directory.appendingPathComponent(poster.path).path)
            let mean = image.mean()
            let luma = 0.2126 * mean[0] + 0.7152 * mean[1] + 0.0722 * mean[2]
            #expect((85...170).contains(luma), "mean luma \(luma)")
            let red = image.mean(x: 4, y: 4, width: image.width / 12, height: image.height / 12)
            #expect(red[0] > 180 && red[1] < 50 && red[2] < 50, "red marker \(red)")
        }
    }

    @Test(arguments: badFixtures.map(\.file))
    func failsCleanlyOnBadInput(_ file: String) throws {
        let expected = try #require(badFixtures.first { $0.file == file }).code
        let directory = try Fixtures.temporaryDirectory("bad")
        defer { try? FileManager.default.removeItem(at: directory) }
        let request = MediaProcessor.Request(
            inputPath: Fixtures.path(file), outputDirectory: directory.path, type: .thumbnail)
        let error = try #require(throws: MediaError.self) {
            try MediaProcessor.run(request, logger: Logger(label: "test"))
        }
        #expect(error.code.rawValue == expected)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func reportsProgressUpToTheEnd() throws {
        let directory = try Fixtures.temporaryDirectory("progress")
        defer { try? FileManager.default.removeItem(at: directory) }
        var seen: [Double] = []
        let request = MediaProcessor.Request(
            inputPath: Fixtures.path("no_audio.mp4"), outputDirectory: directory.path, type: .thumbnail)
        _ = try MediaProcessor.run(request, logger: Logger(label: "test"), progress: { seen.append($0) })
        #expect(seen.count >= 3)
        #expect(seen == seen.sorted())
        #expect(seen.last == 1)
    }
}
