import Foundation

/// The structural similarity (SSIM) of two greyscale pictures of one size: the mean over 8×8
/// windows a step of 4 apart, as x264 and FFmpeg's `ssim` filter measure it. 1 is identical.
enum StructuralSimilarity {
    static func of(_ first: Bitmap, _ second: Bitmap) -> Double {
        precondition(first.channels == 1 && second.channels == 1, "SSIM is measured on greyscale")
        precondition(first.width == second.width && first.height == second.height, "SSIM needs one size")
        let (width, height) = (first.width, first.height)
        let (c1, c2) = (6.5025, 58.5225)  // (0.01 × 255)², (0.03 × 255)²
        var (total, windows) = (0.0, 0)
        first.bytes.withUnsafeBufferPointer { a in
            second.bytes.withUnsafeBufferPointer { b in
                for top in stride(from: 0, through: height - 8, by: 4) {
                    for left in stride(from: 0, through: width - 8, by: 4) {
                        var (sumA, sumB, sumAA, sumBB, sumAB) = (0, 0, 0, 0, 0)
                        for row in top..<top + 8 {
                            for index in row * width + left..<row * width + left + 8 {
                                let (p, q) = (Int(a[index]), Int(b[index]))
                                (sumA, sumB) = (sumA + p, sumB + q)
                                (sumAA, sumBB, sumAB) = (sumAA + p * p, sumBB + q * q, sumAB + p * q)
                            }
                        }
                        let (meanA, meanB) = (Double(sumA) / 64, Double(sumB) / 64)
                        let varianceA = Double(sumAA) / 64 - meanA * meanA
                        let varianceB = Double(sumBB) / 64 - meanB * meanB
                        let covariance = Double(sumAB) / 64 - meanA * meanB
                        total +=
                            (2 * meanA * meanB + c1) * (2 * covariance + c2)
                            / ((meanA * meanA + meanB * meanB + c1) * (varianceA + varianceB + c2))
                        windows += 1
                    }
                }
            }
        }
        return windows == 0 ? 1 : total / Double(windows)
    }
}

/// A few of the pictures an encoder was given, kept in grey with their times, spread over the
/// video, so what it made (or another output of the same frames, a copy included) can be scored
/// against them afterwards: each output is sought to the keyframe before a sample and decoded to
/// the frame shown at its time, so a long video costs a few GOPs of decoding, not all of it.
/// At most 8 pictures and 32 MB.
final class PictureSamples {
    private let every: Int
    private let most: Int
    private var index = 0
    /// Seconds on the output's clock, and the picture shown then.
    private var references: [(seconds: Double, picture: Bitmap)] = []

    /// For an encode of about `expectedFrames` frames of `width`×`height`.
    init(expectedFrames: Int, width: Int, height: Int) {
        most = max(2, min(8, (32 << 20) / max(1, width * height)))
        every = max(1, expectedFrames / most)
    }

    /// Keeps `frame` (the next the encoder gets, shown at `seconds`) when it is one of the samples.
    func offer(_ frame: Frame, seconds: Double) throws(FFmpegError) {
        defer { index += 1 }
        guard index % every == 0, references.count < most else { return }
        references.append((seconds, try Self.grey(frame)))
    }

    private static func grey(_ frame: Frame) throws(FFmpegError) -> Bitmap {
        try Scaler(source: frame, width: frame.width, height: frame.height, layout: .gray).scale(frame).packedBitmap()
    }

    /// The mean SSIM of the video at `path` against the samples; nil when a sample's frame is not
    /// in it, or is a picture of another size (no verdict).
    func similarity(of path: URL, limits: MediaLimits) throws -> Double? {
        guard !references.isEmpty else { return nil }
        let reader = try VideoFrameReader(try Probe.open(path: path.path, limits: limits), threads: 1, limits: limits)
        let frame = try Frame()
        var scores: [Double] = []
        var reached: Double?
        for (seconds, reference) in references {
            // Decoding on is cheaper than a seek when the sample is near (a short video).
            if reached.map({ seconds - $0 > 5 || seconds < $0 }) ?? (seconds > 5) {
                try reader.seek(toKeyframeBefore: reader.timestamp(atSeconds: seconds))
            }
            while try reader.next(into: frame), let timestamp = frame.timestamp {
                let shown = Double(timestamp - (reader.stream.startTime ?? 0)) * reader.stream.timeBase.doubleValue
                reached = shown
                if shown < seconds - 0.002 { continue }
                guard shown <= seconds + 0.002 else { return nil }
                let picture = try Self.grey(frame)
                guard picture.width == reference.width && picture.height == reference.height else { return nil }
                scores.append(StructuralSimilarity.of(reference, picture))
                break
            }
        }
        return scores.count == references.count ? scores.reduce(0, +) / Double(scores.count) : nil
    }
}
