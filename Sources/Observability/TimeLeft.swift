/// How long a job has left, from its own measured pace: progress (0…1) recorded against seconds
/// since the work began. The pace is that of the last quarter of the time measured (at least the
/// last second), so a first stretch that goes faster or slower than the rest (the probe, the
/// stills and preview decoded before a copy races on) stops counting once the job is into its
/// main work. Nothing is
/// said before 5 % of the work and 1 s have passed: an early guess would be noise.
public struct TimeLeft: Sendable {
    private var samples: [(seconds: Double, fraction: Double)] = []

    public init() {}

    /// Records that `fraction` of the work was done `seconds` after it began. Progress never
    /// goes back: a lower fraction (a second try of a pass) starts the measurement again.
    public mutating func record(_ fraction: Double, at seconds: Double) {
        let fraction = min(1, max(0, fraction))
        if let last = samples.last, fraction < last.fraction { samples.removeAll() }
        if let last = samples.last, last.fraction == fraction { return }
        samples.append((seconds, fraction))
        // One sample per 1 % is plenty for the window below.
        if samples.count > 200 { samples = stride(from: 0, to: samples.count, by: 2).map { samples[$0] } }
    }

    /// Seconds left at the pace of the recent work, or nil when too little is known yet.
    public func secondsLeft(at now: Double) -> Double? {
        guard let first = samples.first, let last = samples.last, last.fraction >= 0.05,
            now - first.seconds >= 1
        else { return nil }
        if last.fraction >= 1 { return 0 }
        let windowStart = now - max(1, (now - first.seconds) / 4)
        // The window starts at the last progress before it (a stall counts: no progress since).
        let start = samples.last { $0.seconds <= windowStart && $0.fraction < last.fraction } ?? first
        let (done, took) = (last.fraction - start.fraction, now - start.seconds)
        guard done > 0, took > 0 else { return nil }
        return (1 - last.fraction) * took / done
    }

    /// "about 12 s left", "about 3 min left", as a person reads it.
    public static func phrase(_ seconds: Double) -> String {
        seconds < 90
            ? "about \(max(1, Int(seconds.rounded()))) s left" : "about \(Int((seconds / 60).rounded())) min left"
    }
}
