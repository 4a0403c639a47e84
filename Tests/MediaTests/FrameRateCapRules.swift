import Testing

@testable import Media

/// Which frames a frame-rate cap keeps: pure rules.
@Suite("Frame rate cap rules")
struct FrameRateCapRules {
    /// The kept timestamps of `timestamps` (in `timeBase`, frames `frameDuration` apart) under a
    /// cap of `rate`.
    private func kept(_ timestamps: [Int64], rate: Double = 60, timeBase: Rational, frameDuration: Int64 = 1)
        -> [Int64]
    {
        var cap = FrameRateCap(maxRate: rate, timeBase: timeBase, frameDuration: frameDuration)
        return timestamps.filter { cap.keeps($0) }
    }

    /// 240 fps becomes an even 60: every fourth frame, so players read 60 fps from the output.
    @Test func twoHundredFortyBecomesAnEvenSixty() {
        let frames = kept(Array(0..<480), timeBase: Rational(1, 240))
        #expect(frames.count == 120)
        #expect(Set(zip(frames.dropFirst(), frames).map { $0 - $1 }) == [4])
    }

    /// A source at the cap whose timestamps jitter by a millisecond or two loses nothing.
    @Test func jitterAtTheCapKeepsEveryFrame() {
        let jitter: [Int64] = [0, 2, -1, 1, -2, 0, 1]
        let frames = (0..<600).map { Int64($0) * 1000 / 60 + jitter[$0 % jitter.count] }
        #expect(kept(frames, timeBase: Rational(1, 1000), frameDuration: 17).count == 600)
    }

    /// 144 fps averages at most 60; a slow source stamped with a fine clock loses nothing.
    @Test func fasterSourcesAverageTheCapAndSlowOnesKeepAll() {
        let fast = kept(
            (0..<1440).map { Int64($0) * 1_000_000 / 144 }, timeBase: Rational(1, 1_000_000), frameDuration: 6944)
        #expect((599...601).contains(fast.count))
        #expect(kept((0..<10).map { Int64($0) * 1000 }, timeBase: Rational(1, 1000), frameDuration: 1000).count == 10)
    }

    /// After a gap the ticks go on from zero: no burst to catch up, the first frame after it kept.
    @Test func afterAGapTheGridStartsAgain() {
        let frames = (0..<120).map { Int64($0) } + (0..<120).map { 100_000 + Int64($0) }
        let after = kept(frames, timeBase: Rational(1, 120)).filter { $0 >= 100_000 }
        #expect(after.count == 60)
        #expect(after.first == 100_000)
    }

    /// A piece starting mid-tick keeps what one pass keeps: its first frame only when the frame
    /// before it (a frame earlier) was in an earlier tick.
    @Test func aPieceKeepsWhatOnePassKeeps() {
        let whole = kept(Array(0..<480), timeBase: Rational(1, 240))
        for cut in [241, 242, 243, 244, 250] {
            let pieces =
                kept(Array(0..<Int64(cut)), timeBase: Rational(1, 240))
                + kept(Array(Int64(cut)..<480), timeBase: Rational(1, 240))
            #expect(pieces == whole, "cut at \(cut)")
        }
    }

    /// A frame stamped before the last kept one is dropped.
    @Test func framesGoingBackwardsAreDropped() {
        #expect(kept([0, 10, 5, 20], timeBase: Rational(1, 60)) == [0, 10, 20])
    }
}
