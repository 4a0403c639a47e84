import Foundation

/// BlurHash (https://blurha.sh): a short string a chat client turns into a blurred placeholder
/// while the real image loads.
public enum BlurHash {
    /// Encodes `image` (RGB) with `xComponents`×`yComponents` cosine components (1…9 each).
    static func encode(_ image: Bitmap, xComponents: Int = 4, yComponents: Int = 3) -> String {
        precondition(image.channels == 3 && (1...9).contains(xComponents) && (1...9).contains(yComponents))
        let linear = image.bytes.map { sRGBToLinear($0) }
        var factors: [(Double, Double, Double)] = []
        for j in 0..<yComponents {
            for i in 0..<xComponents {
                let normalisation = (i == 0 && j == 0) ? 1.0 : 2.0
                var r = 0.0
                var g = 0.0
                var b = 0.0
                for y in 0..<image.height {
                    let yBasis = cos(Double.pi * Double(j) * Double(y) / Double(image.height))
                    for x in 0..<image.width {
                        let basis = cos(Double.pi * Double(i) * Double(x) / Double(image.width)) * yBasis
                        let offset = (y * image.width + x) * 3
                        r += basis * linear[offset]
                        g += basis * linear[offset + 1]
                        b += basis * linear[offset + 2]
                    }
                }
                let scale = normalisation / Double(image.width * image.height)
                factors.append((r * scale, g * scale, b * scale))
            }
        }

        var hash = base83((xComponents - 1) + (yComponents - 1) * 9, length: 1)
        let ac = factors.dropFirst()
        let maximum: Double
        if let largest = ac.map({ max(abs($0.0), abs($0.1), abs($0.2)) }).max() {
            let quantised = Int(max(0, min(82, (largest * 166 - 0.5).rounded(.down))))
            maximum = Double(quantised + 1) / 166
            hash += base83(quantised, length: 1)
        } else {
            maximum = 1
            hash += base83(0, length: 1)
        }
        let dc = factors[0]
        hash += base83((linearToSRGB(dc.0) << 16) + (linearToSRGB(dc.1) << 8) + linearToSRGB(dc.2), length: 4)
        for factor in ac {
            let quantise = { (value: Double) -> Int in
                Int(max(0, min(18, (signedSquareRoot(value / maximum) * 9 + 9.5).rounded(.down))))
            }
            hash += base83(quantise(factor.0) * 19 * 19 + quantise(factor.1) * 19 + quantise(factor.2), length: 2)
        }
        return hash
    }

    /// The picture `hash` stands for, `width`×`height` RGB, as a chat client draws it before the
    /// image loads; nil when `hash` is not a BlurHash.
    public static func decode(_ hash: String, width: Int, height: Int) -> Bitmap? {
        let characters = Array(hash)
        guard characters.count >= 6, width > 0, height > 0, let size = decode83(characters[0..<1]) else { return nil }
        let (xComponents, yComponents) = (size % 9 + 1, size / 9 + 1)
        guard characters.count == 4 + 2 * xComponents * yComponents,
            let quantisedMaximum = decode83(characters[1..<2]), let dcValue = decode83(characters[2..<6]),
            dcValue < 1 << 24  // an RGB colour: four base-83 digits can say more
        else { return nil }
        let maximum = Double(quantisedMaximum + 1) / 166
        var colours = [
            (
                sRGBToLinear(UInt8(dcValue >> 16)), sRGBToLinear(UInt8((dcValue >> 8) & 255)),
                sRGBToLinear(UInt8(dcValue & 255))
            )
        ]
        for component in 1..<(xComponents * yComponents) {
            let start = 4 + component * 2
            guard let value = decode83(characters[start..<start + 2]) else { return nil }
            let unquantise = { (quantised: Int) -> Double in
                let centred = Double(quantised - 9) / 9
                return (centred < 0 ? -1 : 1) * centred * centred * maximum
            }
            colours.append((unquantise(value / (19 * 19)), unquantise((value / 19) % 19), unquantise(value % 19)))
        }
        var bytes = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                var (r, g, b) = (0.0, 0.0, 0.0)
                for j in 0..<yComponents {
                    for i in 0..<xComponents {
                        let basis =
                            cos(Double.pi * Double(x * i) / Double(width))
                            * cos(Double.pi * Double(y * j) / Double(height))
                        let colour = colours[i + j * xComponents]
                        r += colour.0 * basis
                        g += colour.1 * basis
                        b += colour.2 * basis
                    }
                }
                let offset = (y * width + x) * 3
                bytes[offset] = UInt8(linearToSRGB(r))
                bytes[offset + 1] = UInt8(linearToSRGB(g))
                bytes[offset + 2] = UInt8(linearToSRGB(b))
            }
        }
        return Bitmap(width: width, height: height, channels: 3, bytes: bytes)
    }

    /// `hash` drawn at `width`×`height` as PNG bytes (for a `data:` URL), or nil.
    public static func png(_ hash: String, width: Int, height: Int) -> [UInt8]? {
        guard let bitmap = decode(hash, width: width, height: height) else { return nil }
        return try? ImageEncoder.png(Frame(bitmap: bitmap))
    }

    private static func decode83(_ characters: ArraySlice<Character>) -> Int? {
        var value = 0
        for character in characters {
            guard let digit = alphabet.firstIndex(of: character) else { return nil }
            value = value * 83 + digit
        }
        return value
    }

    private static let alphabet = Array(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~")

    private static func base83(_ value: Int, length: Int) -> String {
        var result = ""
        var divisor = 1
        for _ in 1..<max(1, length) { divisor *= 83 }
        for _ in 0..<length {
            result.append(alphabet[(value / divisor) % 83])
            divisor /= 83
        }
        return result
    }

    private static func sRGBToLinear(_ value: UInt8) -> Double {
        let v = Double(value) / 255
        return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4)
    }

    private static func linearToSRGB(_ value: Double) -> Int {
        let v = max(0, min(1, value))
        return v <= 0.003_130_8 ? Int(v * 12.92 * 255 + 0.5) : Int((1.055 * pow(v, 1 / 2.4) - 0.055) * 255 + 0.5)
    }

    private static func signedSquareRoot(_ value: Double) -> Double {
        value < 0 ? -(-value).squareRoot() : value.squareRoot()
    }
}
