/// How much a frame looks like a real picture rather than a black, white or flat one, measured on
/// a small greyscale copy. Used to pick the thumbnail.
struct FrameScore: Comparable {
    /// Mean luma, 0…255.
    let mean: Double
    /// Standard deviation of luma: contrast.
    let deviation: Double
    /// Mean absolute difference between neighbouring pixels: detail.
    let edges: Double

    init(_ gray: Bitmap) {
        precondition(gray.channels == 1, "scores are measured on greyscale")
        let pixels = gray.bytes
        let count = Double(pixels.count)
        let mean = pixels.reduce(0.0) { $0 + Double($1) } / count
        let variance = pixels.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / count
        var edgeSum = 0
        for y in 0..<gray.height - 1 {
            for x in 0..<gray.width - 1 {
                let here = Int(pixels[y * gray.width + x])
                edgeSum += abs(here - Int(pixels[y * gray.width + x + 1]))
                edgeSum += abs(here - Int(pixels[(y + 1) * gray.width + x]))
            }
        }
        self.mean = mean
        self.deviation = variance.squareRoot()
        self.edges = Double(edgeSum) / Double(max(1, 2 * (gray.width - 1) * (gray.height - 1)))
    }

    /// Near-black, near-white and flat frames are what a thumbnail must avoid.
    var isUnusable: Bool { mean < 24 || mean > 232 || deviation < 10 }

    /// Higher is better; any usable frame beats every unusable one.
    var value: Double { (isUnusable ? 0 : 1000) + deviation + 2 * edges }

    static func < (lhs: FrameScore, rhs: FrameScore) -> Bool { lhs.value < rhs.value }
}
