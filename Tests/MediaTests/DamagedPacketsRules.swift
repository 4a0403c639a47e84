import Testing

@testable import Media

/// When refused packets make an input too damaged to play: pure rules, in stream time.
@Suite("Damaged packets rules")
struct DamagedPacketsRules {
    private let refused = FFmpegError.invalidData("avcodec_send_packet")

    /// A 24 fps stream in a 1/24 time base lasting a minute.
    private func video() -> DamagedPackets {
        DamagedPackets(stream: "video", timeBase: Rational(1, 24), durationSeconds: 60, packetsPerSecond: 24)
    }

    /// `demo.ogv` of iscc-samples: three of four Theora packets refused, but a keyframe decodes
    /// every half second, so pictures keep coming. It plays, choppy, and converts.
    @Test func mostPacketsRefusedButPicturesKeepComingIsPlayable() throws {
        var damage = video()
        for tick in Int64(0)..<(24 * 60) {
            if tick % 12 == 0 { damage.decoded(at: tick) } else { try damage.skip(refused, at: tick) }
        }
        #expect(damage.skipped == 24 * 60 * 11 / 12)
    }

    /// Nothing decoded for longer than two seconds (2 % of a minute is less) is too damaged.
    @Test func aStretchWithoutPicturesIsCorrupt() throws {
        var damage = video()
        damage.decoded(at: 0)
        for tick in Int64(1)...48 { try damage.skip(refused, at: tick) }
        let error = try #require(throws: MediaError.self) { try damage.skip(refused, at: 49) }
        #expect(error.code == .corruptInput)
        #expect("\(error)".contains("no video could be decoded for 2.0 s"), "\(error)")
    }

    /// The stretch may start at the first packet: a stream whose start never decodes is corrupt.
    @Test func aStartThatNeverDecodesIsCorrupt() throws {
        var damage = video()
        #expect(throws: MediaError.self) {
            for tick in Int64(100)...200 { try damage.skip(refused, at: tick) }
        }
    }

    /// A long video may lose 2 % of its length in one stretch: 36 s of a 30-minute one.
    @Test func theStretchGrowsWithTheDuration() throws {
        var damage = DamagedPackets(
            stream: "video", timeBase: Rational(1, 1), durationSeconds: 1800, packetsPerSecond: 1)
        #expect(damage.longestGap == 36)
        damage.decoded(at: 0)
        for second in Int64(1)...36 { try damage.skip(refused, at: second) }
        #expect(throws: MediaError.self) { try damage.skip(refused, at: 37) }
    }

    /// Timestamps that never advance cannot buy an endless run of refusals, and packets without
    /// any count two seconds' worth in a row.
    @Test func refusalsInARowAreBoundedWhateverTheTimestamps() throws {
        var stuck = video()
        stuck.decoded(at: 5)
        for _ in 0..<(10 * stuck.longestRun) { try stuck.skip(refused, at: 5) }
        #expect(throws: MediaError.self) { try stuck.skip(refused, at: 5) }

        var untimed = video()
        for _ in 0..<untimed.longestRun { try untimed.skip(refused, at: nil) }
        #expect(throws: MediaError.self) { try untimed.skip(refused, at: nil) }
    }

    /// Out of memory is never damage.
    @Test func outOfMemoryIsNotDamage() {
        var damage = video()
        let error = #expect(throws: MediaError.self) { try damage.skip(.allocation("av_frame_alloc"), at: 0) }
        #expect(error?.code != .corruptInput)
        #expect(damage.skipped == 0)
    }
}
