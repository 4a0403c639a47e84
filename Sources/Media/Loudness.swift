import Foundation

/// EBU R128 / ITU-R BS.1770-4 loudness of planar float audio, measured as it streams by: the
/// integrated loudness (K-weighted, 400 ms blocks every 100 ms, gated at −70 LUFS and 10 LU under
/// the ungated mean) and the true peak (4× oversampled). Memory: one number per 100 ms block.
struct LoudnessMeter {
    private let channels: Int
    private let samplesPerStep: Int
    /// Per channel: the two K-weighting biquads' state (x1, x2, y1, y2 each).
    private var state: [[Double]]
    private let pre: Biquad
    private let highPass: Biquad
    /// Per channel, the K-weighted energy of the current 100 ms step so far.
    private var stepEnergy: [Double]
    private var stepFill = 0
    /// The last four steps' summed energies (over channels), for the 400 ms block.
    private var recentSteps: [Double] = []
    /// Each 400 ms block's mean power.
    private var blocks: [Double] = []
    private var peak: TruePeak

    init(sampleRate: Int, channels: Int) {
        self.channels = channels
        samplesPerStep = max(1, sampleRate / 10)
        (pre, highPass) = Biquad.kWeighting(sampleRate: Double(sampleRate))
        state = Array(repeating: Array(repeating: 0, count: 8), count: channels)
        stepEnergy = Array(repeating: 0, count: channels)
        peak = TruePeak(channels: channels)
    }

    /// Adds samples: one buffer per channel, all the same length.
    mutating func add(_ planes: [UnsafeBufferPointer<Float>]) {
        guard planes.count == channels, let count = planes.first?.count else { return }
        var start = 0
        while start < count {
            let length = min(count - start, samplesPerStep - stepFill)
            for channel in 0..<channels {
                let slice = UnsafeBufferPointer(rebasing: planes[channel][start..<(start + length)])
                stepEnergy[channel] += weightedEnergy(slice, channel: channel)
                peak.add(slice, channel: channel)
            }
            stepFill += length
            start += length
            if stepFill == samplesPerStep { endStep() }
        }
    }

    /// The integrated loudness in LUFS; nil when every block is under the absolute gate (silence).
    var integrated: Double? {
        let loud = blocks.filter { Self.loudness($0) > -70 }
        guard !loud.isEmpty else { return nil }
        let relativeGate = Self.loudness(loud.reduce(0, +) / Double(loud.count)) - 10
        let kept = loud.filter { Self.loudness($0) > relativeGate }
        guard !kept.isEmpty else { return nil }
        return Self.loudness(kept.reduce(0, +) / Double(kept.count))
    }

    /// The true peak in dBTP (−∞ for digital silence).
    var truePeak: Double { 20 * log10(peak.maximum) }

    private static func loudness(_ power: Double) -> Double { -0.691 + 10 * log10(power) }

    private mutating func weightedEnergy(_ samples: UnsafeBufferPointer<Float>, channel: Int) -> Double {
        let (p, h) = (pre, highPass)
        var (x1, x2, y1, y2) = (state[channel][0], state[channel][1], state[channel][2], state[channel][3])
        var (u1, u2, z1, z2) = (state[channel][4], state[channel][5], state[channel][6], state[channel][7])
        var energy = 0.0
        for sample in samples {
            let x = Double(sample)
            let y = p.b0 * x + p.b1 * x1 + p.b2 * x2 - p.a1 * y1 - p.a2 * y2
            (x2, x1, y2, y1) = (x1, x, y1, y)
            let z = h.b0 * y + h.b1 * u1 + h.b2 * u2 - h.a1 * z1 - h.a2 * z2
            (u2, u1, z2, z1) = (u1, y, z1, z)
            energy += z * z
        }
        state[channel] = [x1, x2, y1, y2, u1, u2, z1, z2]
        return energy
    }

    private mutating func endStep() {
        // Every channel weighs 1 (left, right, centre, or the one of a mono file).
        recentSteps.append(stepEnergy.reduce(0, +) / Double(samplesPerStep))
        if recentSteps.count > 4 { recentSteps.removeFirst() }
        if recentSteps.count == 4 { blocks.append(recentSteps.reduce(0, +) / 4) }
        stepEnergy = Array(repeating: 0, count: channels)
        stepFill = 0
    }
}

/// One second-order section, `a0` normalised to 1.
private struct Biquad {
    let b0, b1, b2, a1, a2: Double

    /// BS.1770's two K-weighting stages (a high shelf, then a high pass) for any sample rate, from
    /// their analog prototypes as libebur128 derives them.
    static func kWeighting(sampleRate: Double) -> (Biquad, Biquad) {
        var k = tan(Double.pi * 1681.974450955533 / sampleRate)
        var q = 0.7071752369554196
        let vh = pow(10, 3.999843853973347 / 20)
        let vb = pow(vh, 0.4996667741545416)
        var a0 = 1 + k / q + k * k
        let shelf = Biquad(
            b0: (vh + vb * k / q + k * k) / a0, b1: 2 * (k * k - vh) / a0, b2: (vh - vb * k / q + k * k) / a0,
            a1: 2 * (k * k - 1) / a0, a2: (1 - k / q + k * k) / a0)
        k = tan(Double.pi * 38.13547087602444 / sampleRate)
        q = 0.5003270373238773
        a0 = 1 + k / q + k * k
        let highPass = Biquad(b0: 1, b1: -2, b2: 1, a1: 2 * (k * k - 1) / a0, a2: (1 - k / q + k * k) / a0)
        return (shelf, highPass)
    }
}

/// The highest absolute value of the signal between samples too: each channel is interpolated at
/// ¼, ½ and ¾ of every sample step (windowed sinc over 12 samples, as BS.1770's 4× oversampling)
/// wherever the samples around come within 6 dB of the peak so far; elsewhere an over is
/// impossible in practice, so the cost stays near that of reading the samples.
private struct TruePeak {
    static let taps = 12
    /// For each fraction ¼, ½, ¾ in turn: the weights of the 12 samples around, from 5 before to
    /// 6 after.
    private static let weights: [Float] = [0.25, 0.5, 0.75].flatMap { fraction in
        (0..<taps).map { index in
            let t = fraction - Double(index - taps / 2 + 1)
            let sinc = t == 0 ? 1 : sin(Double.pi * t) / (Double.pi * t)
            let window = 0.5 + 0.5 * cos(Double.pi * t / Double(taps / 2))  // Hann over ±6 samples
            return Float(sinc * window)
        }
    }
    /// Per channel, the last samples of the previous buffer (the filter's history).
    private var history: [[Float]]
    var maximum: Double = 0

    init(channels: Int) { history = Array(repeating: Array(repeating: 0, count: Self.taps), count: channels) }

    mutating func add(_ samples: UnsafeBufferPointer<Float>, channel: Int) {
        // The history and the new samples in one run, so the window can span the join.
        let run = history[channel] + Array(samples)
        let threshold = Float(maximum) * 0.5
        var top = Float(maximum)
        let taps = Self.taps
        run.withUnsafeBufferPointer { run in
            Self.weights.withUnsafeBufferPointer { weights in
                // Sample `center` is followed by the points between it and the next; the window
                // reaches 5 samples back and 6 on, so the last 6 wait for the next buffer.
                for center in (taps / 2 - 1)..<(run.count - taps / 2) {
                    let (here, next) = (abs(run[center]), abs(run[center + 1]))
                    top = max(top, here)
                    guard max(here, next) >= threshold else { continue }
                    let first = center - taps / 2 + 1
                    for phase in 0..<3 {
                        var value: Float = 0
                        for tap in 0..<taps { value += weights[phase * taps + tap] * run[first + tap] }
                        top = max(top, abs(value))
                    }
                }
            }
        }
        maximum = Double(top)
        history[channel] = Array(run.suffix(taps))
    }
}

/// What levelling does to one output's audio: one linear gain, from what the meter found, to bring
/// it to `target` LUFS without its true peak passing `ceiling` dBTP. A clip under `floor` LUFS
/// (silence, room tone) is left as it is: raising it would only raise its noise.
public struct LoudnessLevel: Equatable, Sendable {
    enum Outcome: String, Codable, Sendable {
        /// Gain applied, the target reached.
        case levelled
        /// Gain applied, less than the target asked: the true peak would have passed the ceiling.
        case peakLimited = "peak_limited"
        /// Already within half a LU of the target: left as it is.
        case alreadyLevel = "already_level"
        /// Under the floor: left silent.
        case silent
    }

    public static let target = -16.0
    static let ceiling = -1.5
    /// What AAC's encode may add to the true peak: the gain aims this far under the ceiling.
    static let codecMargin = 1.0
    static let floor = -50.0

    let gainDB: Double
    let outcome: Outcome

    init(gainDB: Double, outcome: Outcome) {
        (self.gainDB, self.outcome) = (gainDB, outcome)
    }

    init(integrated: Double?, truePeak: Double, target: Double = Self.target) {
        guard let integrated, integrated > Self.floor else {
            (gainDB, outcome) = (0, .silent)
            return
        }
        let wanted = target - integrated
        let allowed = Self.ceiling - Self.codecMargin - truePeak
        if abs(wanted) <= 0.5 && truePeak <= Self.ceiling - Self.codecMargin {
            (gainDB, outcome) = (0, .alreadyLevel)
        } else if wanted > allowed {
            (gainDB, outcome) = (allowed, .peakLimited)
        } else {
            (gainDB, outcome) = (wanted, .levelled)
        }
    }

    /// A gain in decibels as the factor the samples are multiplied by.
    static func factor(decibels: Double) -> Float { Float(pow(10, decibels / 20)) }
}

/// A loudness target as settings spell it: `off`, or LUFS from −70 to −5 (e.g. `-16`).
public enum LoudnessTarget: Equatable, Sendable {
    case off
    case lufs(Double)

    public init?(_ text: String) {
        if text.lowercased() == "off" {
            self = .off
        } else if let value = Double(text), (-70 ... -5).contains(value) {
            self = .lufs(value)
        } else {
            return nil
        }
    }

    /// The target in LUFS; nil when off.
    public var lufs: Double? { if case .lufs(let value) = self { value } else { nil } }

    /// What a setting expects, for error messages.
    public static let expected = "off, or a loudness in LUFS from -70 to -5 (e.g. -16)"
}
