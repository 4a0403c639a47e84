import Foundation
import Media
import TestSupport
import Testing

/// What a finished `process` wrote into `directory`, every file's bytes.
private func outputs(in directory: URL) throws -> [String: Data] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).reduce(into: [:]) {
        $0[$1] = try Data(contentsOf: directory.appendingPathComponent($1))
    }
}

/// Round two of hostile uploads: the copy path obeys the same rules as the encode path, budgets
/// come from what the upload holds rather than what its header says, and every limit has a real
/// file beside its bomb.
@Suite("Hostile uploads, round two: copies, indexes, budgets from facts", .oneAtATime)
struct HostileCopyTests {
    /// An edit list replaying a 1 s clip 1000 times: every packet counts against the file's own
    /// size, so neither a copy nor an encode gets past the first few replays, and nothing is left.
    @Test(arguments: [ProcessingType.compression, .fullProcessing])
    func editListReplayIsRefused(_ type: ProcessingType) throws {
        let output = try Fixtures.temporaryDirectory("hostile")
        let request = MediaProcessor.Request(
            inputPath: Fixtures.path("edit_list_replay.mp4"), outputDirectory: output.path, type: type)
        let error = try #require(throws: MediaError.self) { try MediaProcessor.run(request, logger: .init(label: "t")) }
        #expect(error.code == .limitsExceeded && error.message.contains("plays the same data"), "\(error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.path).isEmpty)
    }

    /// The real file beside that bomb: a short clip with an ordinary edit list is copied.
    @Test func ordinaryFileIsStillCopied() throws {
        try withProcessed("portrait_rot90.mp4", type: .compression) { report, _ in
            #expect(report.outputs[.video]?.encoder?.path == "remux")
        }
    }

    /// SEI user data (a dashcam's position, the source encoder's settings) is filtered out of a
    /// copy; the copy is still a copy, upright, and nothing of the input's own strings is in any output.
    @Test func nothingOfTheUploaderRidesAlongInACopy() throws {
        let input = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("sei_user_data.mp4")))
        let settings = try #require(
            String(decoding: input, as: UTF8.self).firstMatch(of: /x264 - core [^\x00]{40,}/).map { String($0.0) })
        let marker = "DASHCAM-GPS+35.6586+139.7454-SERIAL-X7Q"
        #expect(input.range(of: Data(marker.utf8)) != nil, "the fixture lacks its SEI")
        try withProcessed("sei_user_data.mp4", type: .fullProcessing) { report, directory in
            #expect(report.outputs[.video]?.encoder?.path == "remux")
            for (name, bytes) in try outputs(in: directory) {
                #expect(bytes.range(of: Data(marker.utf8)) == nil, "\(name) carries the SEI user data")
                #expect(bytes.range(of: Data(settings.utf8)) == nil, "\(name) carries the source's x264 settings")
            }
            let video = directory.appendingPathComponent(try #require(report.outputs[.video]).path).path
            expectUpright(try Snapshot.firstFrame(of: video), "copied video")
            #expect(try FFprobe.videoPacketCount(video) == 30)
        }
    }

    /// A mirror matrix is a mirror in every output; a 45° turn, a skew and a singular matrix are
    /// never copied: the encode shows the nearest upright picture and carries no matrix.
    @Test(arguments: ["mirror_matrix.mp4", "matrix_45.mp4", "matrix_skew.mp4", "matrix_zero.mp4"])
    func displayMatricesAreEncodedNotCopied(_ file: String) throws {
        try withProcessed(file, type: .fullProcessing) { report, directory in
            #expect(report.outputs[.video]?.encoder?.path == "transcode", "\(file)")
            let video = directory.appendingPathComponent(try #require(report.outputs[.video]).path).path
            let written = try Probe.inspect(path: video)
            #expect(written.video.rotation == 0 && !written.video.mirrored && written.video.orientationExact)
            switch file {
            case "mirror_matrix.mp4":
                #expect(report.input.video.mirrored)
                expectUpright(try Snapshot.firstFrame(of: video), "mirrored video")
                let poster = directory.appendingPathComponent(try #require(report.outputs[.poster]).path)
                expectUpright(try Snapshot.firstFrame(of: poster.path), "mirrored poster")
                let preview = directory.appendingPathComponent(try #require(report.outputs[.preview]).path)
                expectUpright(try Snapshot.firstFrame(of: preview.path), "mirrored preview")
            case "matrix_45.mp4":
                #expect(!report.input.video.orientationExact && report.input.video.rotation == 90)
            default:
                #expect(!report.input.video.orientationExact && report.input.video.rotation == 0)
                expectUpright(try Snapshot.firstFrame(of: video), "\(file) video")
            }
        }
    }

    /// 88 million samples claimed in 11 KB: refused from the index before FFmpeg allocates for it
    /// (it would take 2 GB; the message is media-worker's, not an out-of-memory).
    @Test func sampleTableClaimingMillionsIsRefusedBeforeAllocating() throws {
        let result = try runProgram(
            Fixtures.executable, ["probe", "--max-memory", "768M", Fixtures.path("sample_table_bomb.mp4")],
            environment: ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 },
            timeout: 60)
        #expect(result.status == 1)
        #expect(
            result.stderr.hasPrefix("limits_exceeded: the file's index claims 88000000 samples"), "\(result.stderr)")
    }

    /// The same bomb behind an unknown first box (FFmpeg steps over it; the check used to stop
    /// there) and inside a compressed index (FFmpeg inflates it; no phone writes one): refused
    /// before FFmpeg allocates, within 512 MB of address space and 2 CPU-s (`ffprobe` takes
    /// 777 MB of memory for each). The limit is the process's own (`--max-memory`): a spawned
    /// child's `ru_maxrss` starts at its parent's, the test runner's.
    @Test(arguments: [
        ("sample_table_bomb_unknown_first.mp4", "the file's index claims 88000000 samples"),
        ("sample_table_bomb_cmov.mp4", "the file's index is compressed (a cmov box)"),
    ])
    func indexBombsNoCheckCouldSeeAreRefused(_ file: String, message: String) throws {
        for type in ["METADATA", "COMPRESSION"] {
            let output = try Fixtures.temporaryDirectory("hostile")
            defer { try? FileManager.default.removeItem(at: output) }
            let result = try runProgram(
                Fixtures.executable,
                ["process", Fixtures.path(file), "--type", type, "--out", output.path, "--max-memory", "512M"],
                environment: ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 },
                timeout: 60)
            #expect(result.status == 1)
            #expect(result.stderr.contains("limits_exceeded: \(message)"), "\(result.stderr)")
            #expect(result.cpuSeconds < 2, "\(result.cpuSeconds) CPU s")
        }
    }

    /// 600 one-byte "show the previous frame" packets after one keyframe: 10 s of 720p60 in 8 KB.
    /// A repeat is shown longer instead of encoded again, so ULTRA costs a fraction of a second and
    /// the video still lasts 10 s.
    @Test func repeatedFramesCostAComparisonNotAnEncode() throws {
        let output = try Fixtures.temporaryDirectory("hostile")
        let result = try runProgram(
            Fixtures.executable,
            [
                "process", Fixtures.path("repeat_frames.ivf"), "--type", "COMPRESSION", "--profile", "ULTRA",
                "--out", output.path, "--threads", "1",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.cpuSeconds < 3, "\(result.cpuSeconds) CPU s")
        let video = output.appendingPathComponent("video.mp4").path
        let frames = try #require(try FFprobe.videoPacketCount(video))
        #expect(frames >= 10 && frames <= 20, "\(frames) frames")
        let written = try Probe.inspect(path: video)
        #expect(abs((written.durationMs ?? 0) - 10_000) < 100, "\(written.durationMs ?? 0) ms")
    }

    /// A raw H.264 stream has no timestamps and no index: frames are stamped one after another
    /// and stills come by decoding forward.
    @Test(arguments: [ProcessingType.thumbnail, .compression])
    func rawStreamIsProcessed(_ type: ProcessingType) throws {
        try withProcessed("raw_stream.h264", type: type) { report, directory in
            if type == .compression {
                let video = try #require(report.outputs[.video])
                #expect(video.encoder?.path == "transcode")
                let written = try Probe.inspect(path: directory.appendingPathComponent(video.path).path)
                #expect(abs((written.durationMs ?? 0) - 2000) <= 100, "\(written.durationMs ?? 0) ms")
            } else {
                let poster = directory.appendingPathComponent(try #require(report.outputs[.poster]).path)
                expectUpright(try Snapshot.firstFrame(of: poster.path), "raw stream poster")
            }
        }
    }

    /// LOW allows 480 lines: a 720p H.264 clip is encoded down, however small the encode.
    @Test func lowNeverCopies720p() throws {
        try withProcessed("short_720p.mp4", type: .compression, profile: .low) { report, _ in
            let video = try #require(report.outputs[.video])
            #expect(video.encoder?.path == "transcode" && min(video.width, video.height) <= 480)
        }
    }

    /// H.264 whose SPS turns 4:4:4 half way, under a 4:2:0 configuration: a copy would be
    /// published as 8-bit 4:2:0 and fail on phones at frame 31, so the in-band parameter set ends
    /// the copy and the stream is encoded, every frame 8-bit 4:2:0.
    @Test func aParameterSetThatChangesMidStreamIsEncoded() throws {
        try withProcessed("sps_change_444.mp4", type: .compression) { report, directory in
            let video = try #require(report.outputs[.video])
            #expect(
                video.encoder?.path == "transcode"
                    && video.encoder?.why.first?.contains("the video's parameter sets change mid-stream") == true,
                "\(video.encoder?.why ?? [])")
            let path = directory.appendingPathComponent(video.path).path
            let stream = (try FFprobe.describe(path)?["streams"] as? [[String: Any]])?.first
            #expect(
                stream?["pix_fmt"] as? String == "yuv420p" && stream?["profile"] as? String != "High 4:4:4 Predictive")
            // The decoder loses frames at the switch: the `ffmpeg` program's encode has 58 of the
            // 60, this one 56 (the encode after a refused copy starts from a fresh read).
            #expect((try FFprobe.decodedVideoFrames(path)?.frames ?? 0) >= 56)
        }
    }

    /// Interlaced H.264 (fields) is never copied: not every phone shows fields.
    @Test func interlacedVideoIsEncoded() throws {
        try withProcessed("interlaced_h264.mp4", type: .compression) { report, _ in
            let encoder = try #require(report.outputs[.video]?.encoder)
            #expect(encoder.path == "transcode" && encoder.why.contains { $0.contains("interlaced") }, "\(encoder.why)")
        }
    }

    /// A stream chosen for a copy whose picture and audio change mid-way: the copy fails there,
    /// and the job becomes an encode instead of failing.
    @Test func copyThatBreaksMidWayBecomesAnEncode() throws {
        try withProcessed("copy_breaks.ts", type: .compression) { report, directory in
            let video = try #require(report.outputs[.video])
            #expect(video.encoder?.path == "transcode")
            let written = try Probe.inspect(path: directory.appendingPathComponent(video.path).path)
            #expect(abs((written.durationMs ?? 0) - 2000) <= 100, "\(written.durationMs ?? 0) ms")
        }
    }

    @Test func tinyVP8GetsItsStills() throws {
        try withProcessed("tiny_84x33.webm", type: .thumbnail) { report, _ in
            #expect(report.outputs[.poster]?.width == 84)
        }
    }

    /// A header saying 0 s says nothing: frames are allowed up to the duration limit, as with no
    /// header at all (an MPEG-1 program stream without a duration was refused at 5 s).
    @Test func zeroDeclaredDurationIsNoDeclaration() {
        #expect(MediaLimits.default.latestSeconds(durationMs: 0) == MediaLimits.default.latestSeconds(durationMs: nil))
        #expect(MediaLimits.default.latestSeconds(durationMs: 2000) == 7)
    }
}
