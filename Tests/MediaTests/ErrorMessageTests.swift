import Foundation
import TestSupport
import Testing

@testable import Media

@Suite("Error codes and messages", .oneAtATime)
struct ErrorMessageTests {
    /// A decoder out of memory (under the child's address-space limit) is the input asking for too
    /// much: `limits_exceeded`, saying so, not `input_unreadable … check the disk`.
    @Test func outOfMemoryIsLimitsExceeded() {
        for error in [FFmpegError.allocation("av_frame_alloc"), FFmpegError(call: "avcodec_send_packet", code: -12)] {
            let failure = MediaError.decoding(error)
            #expect(failure.code == .limitsExceeded)
            #expect(failure.message.contains("more memory than allowed"), "\(failure.message)")
        }
    }

    /// Messages go to `errorMessage`, where a job's private temporary folder means nothing and
    /// tells an attacker about the host.
    @Test func messagesNeverShowPaths() throws {
        let folder = try Fixtures.temporaryDirectory("private-job-folder")
        let missing = folder.appendingPathComponent("input.mp4").path
        let error = try #require(throws: MediaError.self) { try Probe.inspect(path: missing) }
        #expect(error.code == .inputMissing)
        #expect(!error.message.contains(folder.path) && !error.message.contains("private-job-folder"))

        let unwritable = MediaProcessor.Request(
            inputPath: Fixtures.path("no_audio.mp4"), outputDirectory: "/proc/private-job-folder/out", type: .thumbnail)
        let writeError = try #require(throws: MediaError.self) {
            try MediaProcessor.run(unwritable, logger: .init(label: "t"))
        }
        #expect(writeError.code == .storage && !writeError.message.contains("private-job-folder"), "\(writeError)")
    }
}
