import Foundation
import Logging
import Media
import TestSupport
import Testing

/// What an uploader's camera, drone or app wrote beside the picture and sound must not reach an
/// output, least of all through a copy, which passes the upload's own bytes. Every place a copy
/// could carry it, each holding a marker in a fixture (`make-fixtures.sh`):
///
/// - H.264: SEI user data (NAL 6), filler data (12), an unspecified unit (24);
/// - HEVC: user-data SEI (39), an unspecified unit (48), the encoder's SEI in `hvcC`'s arrays
///   (every x265-made upload: "x265 (build …) options …");
/// - AV1: a metadata OBU (ITU-T T.35);
/// - AAC: a data stream element in every frame (and its configuration: audio is never copied);
/// - the container: tags, GPS, make and model (`portrait_rot90.mp4`; see `ProbeTests`).
///
/// Every output of every type, profile and variant policy is scanned for them: 0 hits, while the
/// copy was made (the test goes through the copy, not around it) and still decodes whole.
@Suite("Copies carry nothing but picture and sound", .oneAtATime)
struct PrivacyTests {
    static let markers = ["PRIVATE-MARKER-7Q", "DASHCAM-GPS", "x265 (build"].map { Data($0.utf8) }

    @Test(arguments: [
        ("privacy_h264_units.mp4", OutputRole.video), ("sei_user_data.mp4", .video),
        ("privacy_hevc_units.mp4", .videoHevc), ("portrait_hevc_rot90.mov", .videoHevc),
        ("privacy_av1_metadata.mp4", .videoAv1),
    ])
    func nothingButPictureAndSoundPasses(_ file: String, copied: OutputRole) throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(file)))
        #expect(Self.markers.contains { source.range(of: $0) != nil }, "the fixture carries no marker")
        for type in [ProcessingType.compression, .fullProcessing] {
            // HIGH: its H.264 is finer than the uploads' own, so every copy is the smaller and kept.
            for (profile, variant) in [
                (QualityProfile.high, MediaProcessor.EfficientVariant.whenFree), (.low, .always),
            ] {
                let directory = try Fixtures.temporaryDirectory("privacy")
                defer { try? FileManager.default.removeItem(at: directory) }
                var request = MediaProcessor.Request(
                    inputPath: Fixtures.path(file), outputDirectory: directory.path, type: type, profile: profile)
                request.efficientVariant = variant
                let report = try MediaProcessor.run(request, logger: Logger(label: "test"))
                if profile == .high {
                    #expect(report.outputs[copied]?.encoder?.path == "remux", "\(file) \(type): no copy was made")
                }
                for output in report.outputs.values {
                    let path = directory.appendingPathComponent(output.path)
                    let bytes = try Data(contentsOf: path)
                    for marker in Self.markers where bytes.range(of: marker) != nil {
                        Issue.record(
                            "\(file) \(type) \(profile): \(output.role.rawValue) carries \(String(decoding: marker, as: UTF8.self))"
                        )
                    }
                    if output.role.isStill { continue }
                    let decoded = try #require(try FFprobe.decodedVideoFrames(path.path))
                    #expect(decoded.frames > 0 && decoded.errors.isEmpty, "\(file) \(output.role.rawValue): \(decoded)")
                }
            }
        }
    }
}
