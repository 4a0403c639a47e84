import Foundation
import Testing

@testable import JobChild
@testable import Media

/// The budgets a job's child gets, from what its input is: pure rules, no process, no database.
@Suite("Resource budget rules")
struct ResourceBudgetRules {
    /// What a probe says of a 1080p30 video of `seconds` in `bytes`.
    func info(seconds: Int, bytes: Int64, width: Int = 1920, height: Int = 1080, rate: Double = 30) -> MediaInfo {
        MediaInfo(
            container: "mp4", durationMs: seconds * 1000, sizeBytes: bytes, bitRate: nil,
            video: VideoInfo(
                codec: "h264", profile: nil, codedWidth: width, codedHeight: height, rotation: 0, width: width,
                height: height, pixelAspectRatio: nil, frameRate: rate, variableFrameRate: false,
                pixelFormat: "yuv420p",
                bitDepth: 8, colorPrimaries: nil, colorTransfer: nil, colorSpace: nil, colorRange: nil, hdr: false,
                bitRate: nil),
            audio: nil, creationTime: nil, location: nil)
    }

    /// Memory before the input is parsed comes from its size: an 11 KB file gets about half a
    /// gigabyte (its crafted index asked for 1.6 GB), a 200 MB upload what it may need.
    @Test func parseMemoryFollowsTheUploadsBytes() {
        let ceiling: Int64 = 8 << 30
        let small = ResourceBudget.parseMemory(fileBytes: 11 << 10, threads: 2, ceiling: ceiling)
        #expect(small < 600 << 20 && small > 512 << 20)
        #expect(ResourceBudget.parseMemory(fileBytes: 200 << 20, threads: 16, ceiling: ceiling) > 6 << 30)
        #expect(ResourceBudget.parseMemory(fileBytes: 1 << 40, threads: 16, ceiling: ceiling) == ceiling)
    }

    /// Once probed, from the picture: above what each measured job needed (540 MB for 320x180,
    /// 857 MB for 1080p, 1.9 GB for 4K with the AV1 variant, 1.37 GB for a small picture with it,
    /// 2 threads), within the ceiling.
    @Test func memoryFollowsThePicture() {
        let ceiling: Int64 = 8 << 30
        let small = ResourceBudget.memoryBytes(
            for: info(seconds: 2, bytes: 70 << 10, width: 320, height: 180), threads: 2, encodeWork: 1,
            encodesAV1: false, ceiling: ceiling)
        let hd = ResourceBudget.memoryBytes(
            for: info(seconds: 2, bytes: 480 << 10), threads: 2, encodeWork: 1, encodesAV1: false, ceiling: ceiling)
        let uhd = ResourceBudget.memoryBytes(
            for: info(seconds: 3, bytes: 4 << 20, width: 3840, height: 2160), threads: 2, encodeWork: 2.8,
            encodesAV1: true, ceiling: ceiling)
        let smallAV1 = ResourceBudget.memoryBytes(
            for: info(seconds: 2, bytes: 100 << 10, width: 360, height: 640), threads: 2, encodeWork: 2.8,
            encodesAV1: true, ceiling: ceiling)
        #expect(small > 540 << 20 && small < 1 << 30)
        #expect(hd > 857 << 20 && hd < 2 << 30)
        #expect(uhd > 1900 << 20 && uhd <= ceiling)
        #expect(smallAV1 > 1400 << 20)
        #expect(
            ResourceBudget.memoryBytes(
                for: info(seconds: 3, bytes: 4 << 20, width: 3840, height: 2160), threads: 64, encodeWork: 3,
                encodesAV1: true, ceiling: ceiling) == ceiling)
    }

    /// A real phone clip: a minute of 1080p30 in 30 MB gets the duration's allowance (with its
    /// 4× headroom over the benchmark), its bytes allowing more.
    @Test func realClipGetsItsDurationsAllowance() {
        let budget = ResourceBudget.cpuSeconds(
            for: info(seconds: 60, bytes: 30 << 20), type: .fullProcessing, profile: .medium, ceiling: 7200)
        #expect(budget == 60 + 90)
    }

    /// A header alone cannot raise the budget: 8 KB declaring 30 minutes of 4K60 at ULTRA gets
    /// seconds, not the 7200 CPU s its header asked for.
    @Test func headerAloneCannotRaiseTheBudget() {
        let budget = ResourceBudget.cpuSeconds(
            for: info(seconds: 1800, bytes: 8 << 10, width: 4096, height: 2160, rate: 60), type: .compression,
            profile: .ultra, ceiling: 7200)
        #expect(budget <= 11, "\(budget) CPU s")
    }

    /// Repeated frames are cheap to send and cheap to decode: a 1.4 MB 4K VP9 stream declaring 30
    /// minutes buys what its bytes could hold, not what its header claims (77 CPU s before).
    @Test func aSmallFileOfRepeatedFramesGetsLittle() {
        let budget = ResourceBudget.cpuSeconds(
            for: info(seconds: 1800, bytes: 1_400_000, width: 3840, height: 2160, rate: 30), type: .compression,
            profile: .medium, ceiling: 7200)
        #expect(budget == 47, "\(budget) CPU s")
    }

    /// Stills and metadata need no per-second allowance; the fixed part grows with the upload.
    @Test func quickTypesGetTheFixedPart() {
        #expect(
            ResourceBudget.cpuSeconds(
                for: info(seconds: 600, bytes: 1 << 30), type: .thumbnail, profile: .ultra, ceiling: 7200)
                == 60)
        #expect(
            ResourceBudget.cpuSeconds(
                for: info(seconds: 600, bytes: 0), type: .metadata, profile: .ultra, ceiling: 7200)
                == 10)
    }

    /// The largest file a child may write: a copy's input size, or the profile's peak rate for the
    /// longest the video may last, with 16 MiB for stills and headers.
    @Test func outputBytesFollowTheProfile() {
        let limits = MediaLimits.default
        let medium = ResourceBudget.outputBytes(
            for: info(seconds: 60, bytes: 10 << 20), profile: .medium, limits: limits)
        // (2500 + 128) kbit/s for 60 + 12 s, × 1.5.
        let encoded: Int64 = 2628 * 1000 / 8 * 72 * 3 / 2
        #expect(medium == encoded + 16 << 20)
        let copy = ResourceBudget.outputBytes(for: info(seconds: 1, bytes: 500 << 20), profile: .low, limits: limits)
        let copied: Int64 = 500 << 20 + 50 << 20 + 16 << 20
        #expect(copy == copied)
    }
}
