import Foundation
import Media
import TestSupport
import Testing

/// What each good fixture must probe as.
struct ProbeExpectation: Sendable, CustomTestStringConvertible {
    var file: String
    var container: String
    var codec: String
    var coded: (Int, Int)
    var displayed: (Int, Int)
    var rotation = 0
    var audio: String? = "aac"
    var hdr = false
    var bitDepth = 8
    var variableFrameRate = false

    var testDescription: String { file }
}

let goodFixtures: [ProbeExpectation] = [
    .init(
        file: "landscape_1080p_h264_aac.mp4", container: "mp4", codec: "h264", coded: (1920, 1080),
        displayed: (1920, 1080)),
    .init(
        file: "portrait_rot90.mp4", container: "mp4", codec: "h264", coded: (640, 360), displayed: (360, 640),
        rotation: 90),
    .init(
        file: "portrait_rot180.mp4", container: "mp4", codec: "h264", coded: (360, 640), displayed: (360, 640),
        rotation: 180),
    .init(
        file: "portrait_rot270.mp4", container: "mp4", codec: "h264", coded: (640, 360), displayed: (360, 640),
        rotation: 270),
    .init(
        file: "hdr_hevc_hlg_10bit.mp4", container: "mp4", codec: "hevc", coded: (640, 360), displayed: (640, 360),
        hdr: true, bitDepth: 10),
    .init(
        file: "hdr_hevc_pq_10bit.mp4", container: "mp4", codec: "hevc", coded: (640, 360), displayed: (640, 360),
        hdr: true, bitDepth: 10),
    .init(
        file: "vp9_opus.webm", container: "webm", codec: "vp9", coded: (640, 360), displayed: (640, 360), audio: "opus"),
    .init(
        file: "pcm_audio.mov", container: "mov", codec: "h264", coded: (640, 360), displayed: (640, 360),
        audio: "pcm_s16le"),
    .init(file: "no_audio.mp4", container: "mp4", codec: "h264", coded: (640, 360), displayed: (640, 360), audio: nil),
    .init(file: "odd_size_854x481.mp4", container: "mp4", codec: "h264", coded: (854, 481), displayed: (854, 481)),
    .init(
        file: "vfr.mp4", container: "mp4", codec: "h264", coded: (640, 360), displayed: (640, 360),
        variableFrameRate: true),
    .init(file: "black_first_second.mp4", container: "mp4", codec: "h264", coded: (640, 360), displayed: (640, 360)),
]

/// Broken or hostile inputs and the error code each must give.
let badFixtures: [(file: String, code: String)] = [
    ("empty.mp4", "corrupt_input"),
    ("not_a_video.mp4", "unsupported"),
    ("truncated.mp4", "corrupt_input"),
    ("truncated_faststart.mp4", "corrupt_input"),
    ("huge_dimensions.mp4", "limits_exceeded"),
    ("audio_only.m4a", "unsupported"),
    ("does_not_exist.mp4", "input_missing"),
]

@Suite("METADATA: probe", .oneAtATime)
struct ProbeTests {
    @Test(arguments: goodFixtures)
    func reportsStreams(_ expected: ProbeExpectation) throws {
        let info = try Probe.inspect(path: Fixtures.path(expected.file))
        #expect(info.container == expected.container)
        #expect(info.video.codec == expected.codec)
        #expect(info.video.codedWidth == expected.coded.0 && info.video.codedHeight == expected.coded.1)
        #expect(info.video.width == expected.displayed.0 && info.video.height == expected.displayed.1)
        #expect(info.video.rotation == expected.rotation)
        #expect(info.audio?.codec == expected.audio)
        #expect(info.video.hdr == expected.hdr)
        #expect(info.video.bitDepth == expected.bitDepth)
        #expect(info.video.variableFrameRate == expected.variableFrameRate)
        let duration = try #require(info.durationMs)
        #expect((1900...3100).contains(duration))
        #expect(
            info.sizeBytes
                == (try FileManager.default.attributesOfItem(atPath: Fixtures.path(expected.file))[.size] as? Int).map(
                    Int64.init))
    }

    @Test func readsPhoneTags() throws {
        let info = try Probe.inspect(path: Fixtures.path("portrait_rot90.mp4"))
        #expect(info.creationTime == "2026-07-14T09:30:00Z")
        #expect(info.location == "+35.6586+139.7454/")
        let plain = try Probe.inspect(path: Fixtures.path("no_audio.mp4"))
        #expect(plain.location == nil && plain.creationTime == nil)
    }

    @Test func reportsHDRColours() throws {
        let hlg = try Probe.inspect(path: Fixtures.path("hdr_hevc_hlg_10bit.mp4")).video
        #expect(
            hlg.colorTransfer == "arib-std-b67" && hlg.colorPrimaries == "bt2020" && hlg.pixelFormat == "yuv420p10le")
        let pq = try Probe.inspect(path: Fixtures.path("hdr_hevc_pq_10bit.mp4")).video
        #expect(pq.colorTransfer == "smpte2084" && pq.profile == "Main 10")
    }

    @Test(arguments: badFixtures.map(\.file))
    func refusesBadInput(_ file: String) throws {
        let expected = try #require(badFixtures.first { $0.file == file }).code
        let error = try #require(throws: MediaError.self) { try Probe.inspect(path: Fixtures.path(file)) }
        #expect(error.code.rawValue == expected)
        #expect(!error.message.isEmpty)
    }

    @Test func enforcesLimits() throws {
        let path = Fixtures.path("landscape_1080p_h264_aac.mp4")
        let tooStrict: [(String, (inout MediaLimits) -> Void)] = [
            ("duration", { $0.maxDurationSeconds = 1 }),
            ("pixels", { $0.maxPixels = 1280 * 720 }),
            ("input size", { $0.maxInputBytes = 1000 }),
        ]
        for (name, tighten) in tooStrict {
            var limits = MediaLimits.default
            tighten(&limits)
            let error = try #require(throws: MediaError.self, "\(name)") {
                try Probe.inspect(path: path, limits: limits)
            }
            #expect(error.code == .limitsExceeded, "\(name)")
        }
        #expect(try Probe.inspect(path: path, limits: .default).video.width == 1920)
    }

    /// ffprobe, as an independent judge, agrees on duration, size, codec and rotation.
    @Test(.enabled(if: FFprobe.executable != nil), arguments: goodFixtures)
    func agreesWithFFprobe(_ expected: ProbeExpectation) throws {
        let path = Fixtures.path(expected.file)
        let info = try Probe.inspect(path: path)
        let judge = try #require(try FFprobe.describe(path))
        let format = try #require(judge["format"] as? [String: Any])
        let duration = try #require(Double(format["duration"] as? String ?? ""))
        #expect(abs(Double(info.durationMs ?? 0) / 1000 - duration) < 0.01)
        let streams = try #require(judge["streams"] as? [[String: Any]])
        let video = try #require(streams.first { $0["codec_type"] as? String == "video" })
        #expect(video["codec_name"] as? String == info.video.codec)
        #expect(video["width"] as? Int == info.video.codedWidth)
        #expect(video["height"] as? Int == info.video.codedHeight)
        let sideData = video["side_data_list"] as? [[String: Any]] ?? []
        let ffprobeRotation = sideData.compactMap { $0["rotation"] as? Int }.first ?? 0
        // ffprobe prints the display matrix's counterclockwise angle; probe reports clockwise.
        #expect(((-ffprobeRotation % 360) + 360) % 360 == info.video.rotation)
        #expect(streams.contains { $0["codec_type"] as? String == "audio" } == (info.audio != nil))
    }
}
