import Foundation
import JobVocabulary
import Logging

/// The efficient variant beside the main video, and which main video is kept.
extension SinglePass {
    /// The efficient variant: a copy of an HEVC or AV1 upload that fits the profile as the main
    /// copy would (tagged `hvc1` for Apple's players), else, when asked for always, an AV1 encode
    /// in this same decode.
    func prepareVariant(_ encoding: VideoEncoding) throws {
        let info = opened.info
        let copyRole: OutputRole? = ["hevc": .videoHevc, "av1": .videoAv1][info.video.codec]
        if plan.allowRemux, let copyRole {
            let check = CopyCheck(info, encoding: encoding, videoCodec: info.video.codec)
            if check.videoWithinProfile {
                variantRole = copyRole
                variantRemux = try Remux(
                    opened, why: "the upload's \(info.video.codec) fits",
                    audio: AudioTrack.Decision(opened, encoding: encoding, gainDB: plan.audioGainDB),
                    path: directory.appendingPathComponent(".\(copyRole.rawValue).partial"))
                return
            }
            logger.debug("the upload's own codec is not copied", metadata: ["why": "\(check.videoReason)"])
        }
        guard plan.efficientVariant == .always, let variantEncoding = plan.variantEncoding else { return }
        variantRole = .videoAv1
        // Optional work never costs the job: sizes SVT-AV1 refuses are not tried, and an encoder
        // that cannot start leaves the variant out, with why.
        let size = variantEncoding.outputSize(width: info.video.width, height: info.video.height)
        guard (64...16384).contains(size.width), (64...16384).contains(size.height) else {
            dropVariant("SVT-AV1 takes pictures of 64 to 16384 pixels a side, not \(size.width)x\(size.height)")
            return
        }
        do {
            variantEncode = try MainTranscode(
                opened, encoding: variantEncoding, why: "asked for",
                audio: AudioTrack.Decision(opened, encoding: variantEncoding, gainDB: plan.audioGainDB),
                path: directory.appendingPathComponent(".\(variantRole.rawValue).partial"), threads: threads,
                sampled: true)
        } catch {
            dropVariant("the AV1 encoder could not start (\(error))")
        }
    }

    /// The variant, when there is one and it came out smaller than the main video (a larger one
    /// would cost its clients more than `video` does).
    func finishVariant(mainPath: URL?) throws -> (role: OutputRole, path: URL, encoder: EncoderReport)? {
        try variantRemux?.finish()
        try variantEncode?.finish()
        guard let path = variantRemux?.path ?? variantEncode?.path,
            let encoder = variantRemux?.report(opened.info) ?? variantEncode?.report
        else { return nil }
        let (size, main) = (fileSize(path), mainPath.map(fileSize) ?? plan.variantSmallerThan ?? Int.max)
        guard size < main else {
            dropVariant("it came out at \(size) bytes, not smaller than the main video's \(main)")
            return nil
        }
        var report = encoder
        if let samples = variantEncode?.video.samples, let mainVideo = mainPath ?? plan.variantComparedWith {
            // Clients that take the variant see a picture as good as `video`'s, or none.
            let started = ProcessCPU.seconds()
            let (variantScore, mainScore) = (
                try samples.similarity(of: path, limits: limits), try samples.similarity(of: mainVideo, limits: limits)
            )
            if let variantScore, let mainScore {
                let comparison = String(
                    format: "SSIM %.4f against the video's %.4f (%.2f CPU s to measure)", variantScore, mainScore,
                    ProcessCPU.seconds() - started)
                guard variantScore >= mainScore - SinglePass.variantSimilarityMargin else {
                    dropVariant("its picture came out worse: \(comparison)")
                    return nil
                }
                report.why.append(comparison)
            }
        }
        return (variantRole, path, report)
    }

    private func fileSize(_ url: URL) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    }

    /// The remux when there is no transcode, or when the transcode came out larger: an output
    /// is never bigger than a copy that plays as well.
    func chooseMain() -> (URL?, EncoderReport?) {
        guard let remux else { return (transcode?.path, transcode?.report) }
        guard let transcode else { return (remux.path, remux.report(opened.info)) }
        let (encoded, copied) = (fileSize(transcode.path), fileSize(remux.path))
        let comparison = "the encode is \(encoded) bytes, the copy \(copied)"
        if encoded > copied {
            logger.debug("the encode came out larger than the copy: keeping the copy")
            try? FileManager.default.removeItem(at: transcode.path)
            var report = remux.report(opened.info)
            report.why.append("kept the copy: \(comparison)")
            return (remux.path, report)
        }
        try? FileManager.default.removeItem(at: remux.path)
        var report = transcode.report
        report.why.append("kept the encode: \(comparison)")
        return (transcode.path, report)
    }
}
