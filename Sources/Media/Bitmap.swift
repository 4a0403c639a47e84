/// Packed 8-bit pixels in Swift memory: RGB (3 channels) or grey (1), rows top to bottom.
public struct Bitmap: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public let bytes: [UInt8]

    public init(width: Int, height: Int, channels: Int, bytes: [UInt8]) {
        precondition(bytes.count == width * height * channels, "bitmap size does not match its bytes")
        self.width = width
        self.height = height
        self.channels = channels
        self.bytes = bytes
    }

    /// The channel values of the pixel at (`x`, `y`).
    public func pixel(x: Int, y: Int) -> [UInt8] {
        let start = (y * width + x) * channels
        return Array(bytes[start..<start + channels])
    }

    /// The mean of each channel over the rectangle (whole image by default).
    public func mean(x: Int = 0, y: Int = 0, width w: Int? = nil, height h: Int? = nil) -> [Double] {
        let w = w ?? width - x
        let h = h ?? height - y
        var sums = [Double](repeating: 0, count: channels)
        for row in y..<y + h {
            var offset = (row * width + x) * channels
            for _ in 0..<w {
                for channel in 0..<channels { sums[channel] += Double(bytes[offset + channel]) }
                offset += channels
            }
        }
        return sums.map { $0 / Double(max(1, w * h)) }
    }
}
