import Testing

@testable import Media

/// SSIM as x264 and FFmpeg's `ssim` filter measure it: pure rules.
@Suite("Structural similarity rules")
struct StructuralSimilarityRules {
    /// A 64×48 grey gradient with a little texture, and the same with `noise` added at every
    /// `every`-th pixel (a fixed pattern, so the test is the same every run).
    private func picture(noise: Int = 0, every: Int = 1) -> Bitmap {
        let bytes = (0..<(64 * 48)).map { index -> UInt8 in
            let (x, y) = (index % 64, index / 64)
            let base = 40 + x * 2 + y + (x * y % 7) * 3
            let wobble = index % every == 0 ? ((index * 37) % 3 - 1) * noise : 0
            return UInt8(clamping: base + wobble)
        }
        return Bitmap(width: 64, height: 48, channels: 1, bytes: bytes)
    }

    @Test func aPictureIsIdenticalToItself() {
        #expect(StructuralSimilarity.of(picture(), picture()) == 1)
    }

    /// More damage, less similar; the measure is symmetric.
    @Test func moreNoiseIsLessSimilar() {
        let (clean, light, heavy) = (picture(), picture(noise: 4, every: 3), picture(noise: 20))
        let (lightScore, heavyScore) = (StructuralSimilarity.of(clean, light), StructuralSimilarity.of(clean, heavy))
        #expect(lightScore < 1 && heavyScore < lightScore && heavyScore > 0)
        #expect(StructuralSimilarity.of(heavy, clean) == heavyScore)
    }

    /// A flat shift of brightness costs little (structure kept); flattening the texture costs more.
    @Test func structureCountsMoreThanBrightness() {
        let clean = picture()
        let brighter = Bitmap(width: 64, height: 48, channels: 1, bytes: clean.bytes.map { $0 &+ 5 })
        let flat = Bitmap(width: 64, height: 48, channels: 1, bytes: clean.bytes.map { _ in 100 })
        #expect(StructuralSimilarity.of(clean, brighter) > 0.99)
        #expect(StructuralSimilarity.of(clean, flat) < 0.5)
    }
}
