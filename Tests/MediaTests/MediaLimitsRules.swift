import Media
import Testing

/// How far past its declared duration an input's frames may run: pure rules.
@Suite("Media limits rules")
struct MediaLimitsRules {
    /// A header's duration under a tenth of a second says nothing (`press.mpg` of wx3.2-examples
    /// declares 9 ms and plays 20 s, as the `ffmpeg` program converts it): the duration limit
    /// applies, not the 9 ms and a 5 s margin that refused it.
    @Test func aDurationOfAFewMillisecondsCountsAsNone() {
        let limits = MediaLimits.default
        #expect(limits.latestSeconds(durationMs: 9) == limits.latestSeconds(durationMs: nil))
        #expect(limits.latestSeconds(durationMs: 0) == limits.latestSeconds(durationMs: nil))
        #expect(limits.latestSeconds(durationMs: 300) == 5.3)
        #expect(limits.latestSeconds(durationMs: 60_000) == 72)
    }
}
