import Foundation
import Logging

/// The most the main video may weigh (`MediaProcessor.Request.maxBytes`). The pass encodes as
/// usual (CRF, so a video that fits anyway costs nothing more and stays as small as its content
/// allows) with x264 writing its first-pass statistics; when the result is over the budget, x264's
/// second pass encodes it again to a bit rate that lands it between 90 and 100 % of the budget (one
/// re-encode, the statistics making the rate control exact where a one-pass ABR misses by 15 %).
/// A budget below the lowest acceptable quality is `limits_exceeded` before the second pass.
struct ByteBudget {
    let maxBytes: Int64
    /// Where x264 keeps its statistics between the passes (it adds `.mbtree`).
    let statistics: URL

    /// The share of the budget the second pass aims at: the container and x264's rate control
    /// take the rest (measured within 1.5 % of the aim with `ratetol=0.05`).
    static let aim = 0.95
    /// The lowest acceptable quality: 0.01 bits per pixel, and 64 kbit/s whatever the size.
    static let leastBitsPerPixel = 0.01
    static let leastKilobitsPerSecond = 64

    init(maxBytes: Int64, statistics: URL) {
        self.maxBytes = maxBytes
        self.statistics = statistics
    }

    /// Refuses at once, before any work, a budget the video could not fit even at the lowest
    /// acceptable quality.
    func check(_ info: MediaInfo, encoding: VideoEncoding) throws(MediaError) {
        let size = encoding.outputSize(width: info.video.width, height: info.video.height)
        let audio = info.audio.map { min(encoding.audioKbps ?? 0, Int(($0.bitRate ?? Int64.max) / 1000)) } ?? 0
        _ = try videoKilobitsPerSecond(
            seconds: Self.seconds(info.durationMs), audioKilobitsPerSecond: audio,
            pixelsPerSecond: Double(size.width * size.height) * min(info.video.frameRate ?? 30, encoding.fpsMax))
    }

    /// Makes the plan's main encode a first pass, and allows a copy only when the upload itself
    /// fits the budget.
    func prepare(_ plan: inout SinglePass.Plan, uploadBytes: Int64) {
        plan.main?.pass = .first(stats: statistics.path)
        if uploadBytes > maxBytes { plan.allowRemux = false }
    }

    /// When the pass's main video is over the budget, makes it again with x264's second pass (via
    /// `encode`, a fresh pass of the plan) and puts it in `result`.
    func fit(
        _ result: inout SinglePass.Result, plan: SinglePass.Plan, info: MediaInfo, logger: Logger,
        encode: (SinglePass.Plan) throws -> SinglePass.Result
    ) throws {
        guard let path = result.mainPath, let encoding = plan.main else { return }
        let first = fileSize(path)
        guard first > maxBytes else { return }
        guard let report = result.mainEncoder, report.path == "transcode" else {
            // A copy over the budget (its audio converted to more than it had): encode instead.
            var encoded = plan
            encoded.allowRemux = false
            result.mainPath = nil
            try? FileManager.default.removeItem(at: path)
            let again = try encode(encoded)
            (result.mainPath, result.mainEncoder) = (again.mainPath, again.mainEncoder)
            return try fit(&result, plan: encoded, info: info, logger: logger, encode: encode)
        }
        // The audio and the container stay as the first pass made them: measured, not estimated
        // (a copied audio's declared rate can be well under what it weighs in a short clip), over
        // the duration the first pass wrote (a raw stream declares none).
        let written = try? Probe.inspect(path: path.path)
        let seconds = Self.seconds(written?.durationMs ?? info.durationMs)
        let others = max(0, first - (Self.videoPacketBytes(path) ?? first))
        let kilobitsPerSecond = try videoKilobitsPerSecond(
            seconds: seconds,
            audioKilobitsPerSecond: Int((Double(others) * 8 / seconds / 1000 / Self.aim).rounded(.up)),
            pixelsPerSecond: Double(report.width * report.height) * (report.fps ?? 30))
        var second = SinglePass.Plan(
            main: encoding, preview: false, thumbnails: false, allowRemux: false, efficientVariant: .off)
        second.main?.pass = .second(stats: statistics.path, kilobitsPerSecond: kilobitsPerSecond)
        logger.info(
            "the video is over its byte budget; x264's second pass makes it again",
            metadata: ["bytes": "\(first)", "budget": "\(maxBytes)", "kbps": "\(kilobitsPerSecond)"])
        try? FileManager.default.removeItem(at: path)
        let fitted = try encode(second)
        guard let fittedPath = fitted.mainPath, var fittedReport = fitted.mainEncoder else {
            throw MediaError.internalFailure("the second pass wrote no video")
        }
        let bytes = fileSize(fittedPath)
        guard bytes <= maxBytes else {
            try? FileManager.default.removeItem(at: fittedPath)
            throw MediaError.limitsExceeded(
                "x264's second pass made \(bytes) bytes, over the \(maxBytes)-byte budget; raise the budget")
        }
        fittedReport.why =
            report.why + [
                "fitted to the byte budget: the first pass made \(first) bytes, over \(maxBytes); the second pass, "
                    + "at \(kilobitsPerSecond) kbit/s, made \(bytes)"
            ]
        (result.mainPath, result.mainEncoder) = (fittedPath, fittedReport)
    }

    /// The second pass's video rate: what is left of `aim` of the budget, spread over the video's
    /// duration, once the audio is paid for. Below the lowest acceptable quality, `limits_exceeded`.
    func videoKilobitsPerSecond(seconds: Double, audioKilobitsPerSecond: Int, pixelsPerSecond: Double)
        throws(MediaError) -> Int
    {
        let total = Double(maxBytes) * 8 * Self.aim / seconds / 1000
        let video = Int(total) - audioKilobitsPerSecond
        let least = max(Self.leastKilobitsPerSecond, Int(pixelsPerSecond * Self.leastBitsPerPixel / 1000))
        guard video >= least else {
            let needed = Int64(Double(least + audioKilobitsPerSecond) * 1000 / 8 * seconds / Self.aim)
            throw .limitsExceeded(
                "a \(Int(seconds.rounded())) s video cannot fit in \(maxBytes) bytes at an acceptable quality "
                    + "(it needs at least \(needed) bytes); raise the budget or choose a lower profile")
        }
        return video
    }

    /// The bytes of the video packets of an MP4 this program wrote (nil: unreadable).
    private static func videoPacketBytes(_ url: URL) -> Int64? {
        guard
            let input = try? InputFile(
                path: url.path, acceptedFormats: [UploadFormats.mp4], maxPixels: MediaLimits.default.maxPixels),
            let video = input.bestVideoStream(), let packet = try? Packet()
        else { return nil }
        var bytes: Int64 = 0
        while (try? input.read(into: packet)) == true {
            if packet.streamIndex == video { bytes += Int64(packet.size) }
        }
        return bytes
    }

    /// A duration in seconds, at least a tenth (an unknown one counts as that).
    private static func seconds(_ milliseconds: Int?) -> Double { max(0.1, Double(milliseconds ?? 0) / 1000) }

    private func fileSize(_ url: URL) -> Int64 {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int64) ?? 0
    }
}
