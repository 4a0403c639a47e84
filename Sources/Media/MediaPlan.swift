import Foundation

/// What a COMPRESSION, PREVIEW or FULL_PROCESSING request does with an input, decided from the
/// request and the probe alone, before any decoding: the encodings (fitted to the upload's own
/// rate), whether the stills come first, the byte budget, whether the video is cut for the fleet
/// or made in pieces here, the storyboard, the loudness the sound is levelled to, and the single
/// pass's plan. Pure, so its rules are tested without FFmpeg (`MediaPlanRules`);
/// `MediaProcessor.run` carries it out.
struct MediaPlan {
    var encoding: VideoEncoding
    var av1Encoding: VideoEncoding
    /// FULL_PROCESSING of a long enough video scrubs: the storyboard's plan for the whole video
    /// (its pieces included).
    var storyboard: StoryboardPlan?
    /// The stills by seeking, handed over before the pass (FULL_PROCESSING, whole, `stillsFirst`).
    var stillsFirst: Bool
    /// The most `video` may weigh (nil: no budget; a preview has none).
    var maxBytes: Int64?
    /// Cut for the fleet in pieces of about this many seconds (nil: not).
    var splitSeconds: Double?
    /// Made on this machine in pieces of about this many seconds (`process --pieces`; nil: not).
    var localPieceSeconds: Double?
    /// The integrated loudness the sound is levelled to (nil: as the source has it, or no sound).
    var loudnessTarget: Double?
    /// What the single pass makes.
    var pass: SinglePass.Plan

    init(_ request: MediaProcessor.Request, info: MediaInfo) {
        encoding = request.profile.encoding.fitted(to: info)
        av1Encoding = request.profile.av1Encoding.fitted(to: info)
        storyboard =
            request.type == .fullProcessing && request.part != .efficientVariant
            ? request.storyboardAfter.flatMap {
                StoryboardPlan.forVideo(seconds: Double(info.durationMs ?? 0) / 1000, after: $0)
            } : nil
        stillsFirst = request.type == .fullProcessing && request.stillsFirst && request.part == .whole
        maxBytes = request.type == .preview ? nil : request.maxBytes
        if request.part == .efficientVariant {
            pass = SinglePass.Plan(
                main: encoding, preview: false, thumbnails: false, allowRemux: false, efficientVariant: .always,
                variantEncoding: av1Encoding, variantOnly: true, variantSmallerThan: request.variantSmallerThan,
                variantComparedWith: request.variantComparedWith.map { URL(fileURLWithPath: $0) })
        } else {
            pass = SinglePass.Plan(
                main: request.type == .preview ? nil : encoding, preview: request.type != .compression,
                thumbnails: request.type == .fullProcessing && request.part == .whole && !stillsFirst,
                allowRemux: request.allowRemux, efficientVariant: request.efficientVariant,
                variantEncoding: av1Encoding)
        }
        pass.storyboard = storyboard
        // Pieces need the whole video's statistics for nothing: a byte budget's second pass does.
        let piecesPossible = maxBytes == nil && request.part != .efficientVariant && pass.main != nil
        if piecesPossible, case .split(let seconds, let after) = request.pieceWork,
            Double(info.durationMs ?? 0) / 1000 >= after,
            Pieces.worthSplitting(info, seconds: seconds, encoding: encoding, allowCopy: request.allowRemux)
        {
            splitSeconds = seconds
        }
        if piecesPossible, request.pieceWork == nil,
            Pieces.worthSplitting(
                info, seconds: request.pieceSeconds, encoding: encoding, allowCopy: request.allowRemux)
        {
            localPieceSeconds = request.pieceSeconds
        }
        loudnessTarget = pass.main != nil && info.audio != nil ? request.loudnessTarget : nil
    }
}
