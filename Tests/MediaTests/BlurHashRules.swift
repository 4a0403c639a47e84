import Testing

@testable import Media

/// Reads a BlurHash base-83 number back.
func decodeBase83(_ digits: Substring) -> Int {
    let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~")
    return digits.reduce(0) { $0 * 83 + alphabet.firstIndex(of: $1)! }
}

@Suite("BlurHash")
struct BlurHashRules {
    @Test func flatImageEncodesItsColourAndNoDetail() {
        let image = Bitmap(
            width: 32, height: 32, channels: 3, bytes: Array(repeating: [200, 40, 10], count: 32 * 32).flatMap { $0 })
        let hash = BlurHash.encode(image)
        #expect(hash.count == 28)
        #expect(hash.first == "L")  // 4×3 components
        // The DC part (characters 2…5) is the average colour in sRGB: 200, 40, 10.
        #expect(decodeBase83(hash.dropFirst(2).prefix(4)) == (200 << 16) + (40 << 8) + 10)
        // Its detail (the quantised largest AC component, character 1) is far below a striped
        // picture's.
        let stripes = Bitmap(
            width: 32, height: 32, channels: 3,
            bytes: (0..<1024).flatMap { $0 % 32 < 16 ? [255, 255, 255] : [0, 0, 0] as [UInt8] })
        let detail = { (hash: String) in decodeBase83(hash.dropFirst().prefix(1)) }
        #expect(detail(hash) * 4 < detail(BlurHash.encode(stripes)))
    }

    @Test func differentPicturesGiveDifferentHashes() {
        let left = Bitmap(
            width: 16, height: 8, channels: 3,
            bytes: (0..<128).flatMap { $0 % 16 < 8 ? [255, 255, 255] : [0, 0, 0] as [UInt8] })
        let right = Bitmap(
            width: 16, height: 8, channels: 3,
            bytes: (0..<128).flatMap { $0 % 16 < 8 ? [0, 0, 0] : [255, 255, 255] as [UInt8] })
        #expect(BlurHash.encode(left) != BlurHash.encode(right))
    }
}
