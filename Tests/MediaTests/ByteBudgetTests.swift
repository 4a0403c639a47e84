import Foundation
import Media
import TestSupport
import Testing

/// A byte budget for the main video: what fits stays as it is; what does not is made again by
/// x264's second pass to between 90 and 100 % of the budget; what cannot fit at an acceptable
/// quality is refused.
@Suite("Byte budgets", .oneAtATime)
struct ByteBudgetTests {
    func processed(_ file: String, type: ProcessingType = .compression, maxBytes: Int64) throws -> (
        ProcessingReport, URL
    ) {
        let directory = try Fixtures.temporaryDirectory("budget")
        var request = MediaProcessor.Request(
            inputPath: Fixtures.path(file), outputDirectory: directory.path, type: type)
        request.maxBytes = maxBytes
        return (try MediaProcessor.run(request, logger: .init(label: "test")), directory)
    }

    /// A 2 s clip whose encode is 250 KB, and a 20 s one whose encode is 2.5 MB, each given
    /// about 40 % of that: both land in the top tenth of the budget, whole and in sync.
    @Test(arguments: [
        ("landscape_1080p_h264_aac.mp4", Int64(150 << 10), 2000), ("long_hevc_720p_20s.mp4", 1 << 20, 20000),
    ])
    func overBudgetIsMadeAgainToFit(_ file: String, _ maxBytes: Int64, _ durationMs: Int) throws {
        let (report, directory) = try processed(file, type: .fullProcessing, maxBytes: maxBytes)
        defer { try? FileManager.default.removeItem(at: directory) }
        let video = try #require(report.outputs[.video])
        #expect(Double(video.bytes) >= 0.9 * Double(maxBytes) && Int64(video.bytes) <= maxBytes, "\(video.bytes)")
        #expect(video.encoder?.why.last?.hasPrefix("fitted to the byte budget") == true, "\(video.encoder?.why ?? [])")
        let written = try Probe.inspect(path: directory.appendingPathComponent(video.path).path)
        #expect(abs((written.durationMs ?? 0) - durationMs) <= 34 && written.audio?.codec == "aac")
        expectUpright(try Snapshot.firstFrame(of: directory.appendingPathComponent(video.path).path))
        // The rest of FULL_PROCESSING is as without a budget.
        #expect(report.outputs[.poster] != nil && report.outputs[.preview] != nil)
    }

    /// Short clips whose audio and container weigh a large share (a 2 s portrait clip with its AAC
    /// copied), and a raw H.264 stream that declares no duration: measured from what the first
    /// pass wrote, both land in 90–100 %.
    @Test(arguments: [("portrait_rot90.mp4", Int64(66_000)), ("raw_stream.h264", 25_000)])
    func shortAndUndeclaredVideosFit(_ file: String, _ maxBytes: Int64) throws {
        let (report, directory) = try processed(file, maxBytes: maxBytes)
        defer { try? FileManager.default.removeItem(at: directory) }
        let video = try #require(report.outputs[.video])
        #expect(Double(video.bytes) >= 0.9 * Double(maxBytes) && Int64(video.bytes) <= maxBytes, "\(video.bytes)")
    }

    /// An encode that fits is kept as it is: no second pass.
    @Test func withinBudgetIsLeftAlone() throws {
        let (report, directory) = try processed("landscape_1080p_h264_aac.mp4", maxBytes: 1 << 20)
        defer { try? FileManager.default.removeItem(at: directory) }
        let video = try #require(report.outputs[.video])
        #expect(video.bytes > 200 << 10 && video.bytes < 1 << 20)
        #expect(video.encoder?.why.contains { $0.hasPrefix("fitted") } == false)
    }

    /// 64 KB for 20 s of 720p is below the lowest acceptable quality: refused, nothing left.
    @Test func belowAcceptableQualityIsRefused() throws {
        let directory = try Fixtures.temporaryDirectory("budget")
        defer { try? FileManager.default.removeItem(at: directory) }
        var request = MediaProcessor.Request(
            inputPath: Fixtures.path("long_hevc_720p_20s.mp4"), outputDirectory: directory.path, type: .compression)
        request.maxBytes = 64 << 10
        let error = try #require(throws: MediaError.self) { try MediaProcessor.run(request, logger: .init(label: "t")) }
        #expect(error.code == .limitsExceeded && error.message.contains("cannot fit in 65536 bytes"), "\(error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
