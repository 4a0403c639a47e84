import Foundation

extension SinglePass {
    /// Which outputs this pass makes.
    struct Plan {
        var main: VideoEncoding?
        var preview: Bool
        var thumbnails: Bool
        var allowRemux: Bool
        /// Why nothing is copied when `allowRemux` is false (for the report).
        var noCopyReason = "copies are off"
        /// Beside the main video: a copy of an upload that already is HEVC or AV1 and fits
        /// (`video_hevc`, `video_av1`), unless `.off`; with `.always`, an encode with
        /// `variantEncoding` when there is no such copy.
        var efficientVariant = MediaProcessor.EfficientVariant.whenFree
        var variantEncoding: VideoEncoding?
        /// Only the variant (background work on a result made earlier), kept when smaller than
        /// `variantSmallerThan` bytes (the `video` made then).
        var variantOnly = false
        var variantSmallerThan: Int?
        /// The main video a variant made alone is compared with (nil: none at hand).
        var variantComparedWith: URL?
        /// The main video was made elsewhere (in pieces): `main` only says what the variant
        /// copy must fit, and the variant must be smaller than `variantSmallerThan`.
        var mainMadeElsewhere = false
        /// The gain that levels every output's audio, in dB (0: none).
        var audioGainDB = 0.0
        /// A storyboard for scrubbing, from the frames this pass decodes (nil: none).
        var storyboard: StoryboardPlan?
        /// The storyboard's tiles the pieces of a long video made, in order (nil: none; then this
        /// pass takes them from keyframes).
        var storyboardPieces: [[UInt8]]?
    }

    /// What the pass wrote, before the caller names the files.
    struct Result {
        var mainPath: URL?
        var mainEncoder: EncoderReport?
        var previewPath: URL?
        var previewEncoder: EncoderReport?
        var variant: (role: OutputRole, path: URL, encoder: EncoderReport)?
        var stills: [OutputFile] = []
        /// Why the variant planned was left out (nil: none was).
        var variantLeftOut: String?
        /// The storyboard's sprite and cues, already in the folder (empty: none).
        var storyboard: [OutputFile] = []
        var damage: DamageReport?
    }
}
