import Foundation

/// BlurHash (https://blurha.sh): a short string a chat client turns into a blurred placeholder
/// while the real image loads.
enum BlurHash {
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
