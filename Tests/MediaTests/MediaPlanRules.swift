import Testing

@testable import Media

/// What a request does with an input, decided before any decoding: pure rules.
@Suite("Media plan rules")
struct MediaPlanRules {
    /// A phone's 1080p H.264 with sound, `seconds` long at 8 Mbit/s.
    private func phoneClip(seconds: Int, audio: Bool = true) -> MediaInfo {
        let video = VideoInfo(
            codec: "h264", profile: "High", codedWidth: 1920, codedHeight: 1080, rotation: 0, width: 1920,
            height: 1080, pixelAspectRatio: nil, frameRate: 30, variableFrameRate: false, pixelFormat: "yuv420p",
            bitDepth: 8, colorPrimaries: nil, colorTransfer: nil, colorSpace: nil, colorRange: nil, hdr: false,
            bitRate: 8_000_000)
        return MediaInfo(
            container: "mov", durationMs: seconds * 1000, sizeBytes: Int64(seconds) * 1_016_000,
            bitRate: 8_128_000, video: video,
            audio: audio ? AudioInfo(codec: "aac", channels: 2, sampleRate: 48_000, bitRate: 128_000) : nil,
            creationTime: nil, location: nil)
    }

    private func request(
        _ type: ProcessingType, _ configure: (inout MediaProcessor.Request) -> Void = { _ in }
    ) -> MediaProcessor.Request {
        var request = MediaProcessor.Request(inputPath: "/in", outputDirectory: "/out", type: type)
        configure(&request)
        return request
    }

    /// FULL_PROCESSING of a whole job: stills first (so not from the pass), preview, video, sound
    /// levelled, a storyboard from 30 s on; the profile's own rate for a rich upload.
    @Test func fullProcessingMakesEverything() {
        let plan = MediaPlan(request(.fullProcessing), info: phoneClip(seconds: 60))
        #expect(plan.stillsFirst && !plan.pass.thumbnails && plan.pass.preview && plan.pass.main != nil)
        #expect(plan.loudnessTarget == LoudnessLevel.target)
        #expect(plan.storyboard?.interval == 2 && plan.pass.storyboard == plan.storyboard)
        #expect(plan.encoding == QualityProfile.medium.encoding)
        let short = MediaPlan(request(.fullProcessing), info: phoneClip(seconds: 20))
        #expect(short.storyboard == nil)
        let longPass = MediaPlan(request(.fullProcessing) { $0.part = .longPass }, info: phoneClip(seconds: 60))
        #expect(!longPass.stillsFirst && !longPass.pass.thumbnails)
    }

    /// A preview is muted and small: no main video, no budget, no levelling, no pieces.
    @Test func aPreviewIsMutedAndWhole() {
        let plan = MediaPlan(
            request(.preview) {
                $0.maxBytes = 1000
                $0.pieceWork = .split(seconds: 30, after: 120)
            }, info: phoneClip(seconds: 600))
        #expect(plan.pass.main == nil && plan.pass.preview && plan.maxBytes == nil)
        #expect(plan.loudnessTarget == nil && plan.splitSeconds == nil && plan.storyboard == nil)
    }

    /// A long encoded video is cut for the fleet; not a short one, not one under a byte budget
    /// (its second pass needs the whole video), not background variant work.
    @Test func onlyLongEncodedVideosAreCut() {
        let split = MediaProcessor.PieceWork.split(seconds: 30, after: 120)
        #expect(
            MediaPlan(request(.compression) { $0.pieceWork = split }, info: phoneClip(seconds: 600)).splitSeconds == 30)
        #expect(
            MediaPlan(request(.compression) { $0.pieceWork = split }, info: phoneClip(seconds: 100)).splitSeconds == nil
        )
        let budgeted = MediaPlan(
            request(.compression) {
                $0.pieceWork = split
                $0.maxBytes = 50_000_000
            }, info: phoneClip(seconds: 600))
        #expect(budgeted.splitSeconds == nil && budgeted.maxBytes == 50_000_000)
        let variant = MediaPlan(
            request(.compression) {
                $0.pieceWork = split
                $0.part = .efficientVariant
            }, info: phoneClip(seconds: 600))
        #expect(variant.splitSeconds == nil && variant.pass.variantOnly && !variant.pass.allowRemux)
        let here = MediaPlan(request(.compression) { $0.pieceSeconds = 10 }, info: phoneClip(seconds: 60))
        #expect(here.localPieceSeconds == 10 && here.splitSeconds == nil)
    }

    /// No sound, nothing to level; a low-rate upload gets its own rate, not the profile's.
    @Test func soundAndRateFollowTheUpload() {
        #expect(MediaPlan(request(.compression), info: phoneClip(seconds: 60, audio: false)).loudnessTarget == nil)
        var lowRate = phoneClip(seconds: 60)
        lowRate.video.bitRate = 400_000
        lowRate.sizeBytes = 60 * 66_000
        let plan = MediaPlan(request(.compression), info: lowRate)
        #expect(plan.encoding.maxrateKbps < QualityProfile.medium.encoding.maxrateKbps)
        #expect(plan.av1Encoding.maxrateKbps < plan.encoding.maxrateKbps)
    }
}
