import Foundation
import Logging
import Media
import TestSupport
import Testing

/// What the fuzzer once found (see `Tests/Regressions/README.md`): each input now either converts
/// or fails with a code that blames the input, never `internal`.
@Suite("Fuzzer finds", .oneAtATime)
struct RegressionTests {
    @Test(arguments: [
        "aac_35_channels.mov", "remux_bad_timestamps.mp4", "hevc_timescale_one.mov", "h264_patchwelcome.mp4",
        "hevc_unseekable.mp4",
    ])
    func handled(_ file: String) throws {
        let input = Fixtures.root.appendingPathComponent("Tests/Regressions").appendingPathComponent(file)
        let output = try Fixtures.temporaryDirectory("regression")
        let request = MediaProcessor.Request(
            inputPath: input.path, outputDirectory: output.path, type: .fullProcessing)
        do {
            let report = try MediaProcessor.run(request, logger: Logger(label: "t"))
            let video = try #require(report.outputs[.video])
            #expect(try Probe.inspect(path: output.appendingPathComponent(video.path).path).video.codec == "h264")
        } catch let error as MediaError {
            #expect([.corruptInput, .unsupported, .limitsExceeded].contains(error.code), "\(error)")
        }
    }
}
