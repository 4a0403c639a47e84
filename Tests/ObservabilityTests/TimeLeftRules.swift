import Observability
import Testing

/// The time left from a job's own pace.
@Suite("Time left rules")
struct TimeLeftRules {
    /// Progress recorded every `step` seconds from `pace(seconds)` (a fraction) until `until`.
    private func recorded(until: Double, step: Double = 0.5, _ pace: (Double) -> Double) -> TimeLeft {
        var timeLeft = TimeLeft()
        for tick in stride(from: 0, through: until, by: step) { timeLeft.record(pace(tick), at: tick) }
        return timeLeft
    }

    @Test func steadyWorkIsExtrapolated() throws {
        // 20 s of work, half done.
        let left = try #require(recorded(until: 10) { $0 / 20 }.secondsLeft(at: 10))
        #expect(abs(left - 10) < 0.01, "\(left)")
    }

    /// A quick first stretch (probe and stills: 10 % in 0.5 s) does not make the rest look quick.
    @Test func aQuickStartStopsCountingOnceTheMainWorkIsUnderWay() throws {
        let pace = { (seconds: Double) in seconds <= 0.5 ? seconds / 5 : 0.1 + (seconds - 0.5) * 0.9 / 40 }
        let left = try #require(recorded(until: 20.5, pace).secondsLeft(at: 20.5))
        #expect(abs(left - 20) < 1, "\(left)")
    }

    @Test func nothingIsSaidTooEarly() {
        #expect(recorded(until: 0.5) { $0 / 2 }.secondsLeft(at: 0.5) == nil)  // under a second measured
        #expect(recorded(until: 3) { $0 / 100 }.secondsLeft(at: 3) == nil)  // under 5 % done
        #expect(recorded(until: 4) { min(1, $0 / 2) }.secondsLeft(at: 4) == 0)
    }

    /// A stall shows: the pace counts the time since the last progress.
    @Test func aStallLengthensTheTimeLeft() throws {
        let timeLeft = recorded(until: 10) { $0 / 20 }
        let steady = try #require(timeLeft.secondsLeft(at: 10))
        let stalled = try #require(timeLeft.secondsLeft(at: 14))
        #expect(stalled > steady * 1.5, "\(steady) → \(stalled)")
    }

    /// Progress that goes back (a second try of a pass) starts the measurement again.
    @Test func progressGoingBackStartsAgain() {
        var timeLeft = recorded(until: 10) { $0 / 20 }
        timeLeft.record(0.01, at: 10.5)
        #expect(timeLeft.secondsLeft(at: 11) == nil)
    }

    @Test func phrases() {
        #expect(TimeLeft.phrase(11.6) == "about 12 s left" && TimeLeft.phrase(0.2) == "about 1 s left")
        #expect(TimeLeft.phrase(185) == "about 3 min left")
    }
}
