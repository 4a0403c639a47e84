import Foundation
import Logging
import TestSupport
import Testing

@testable import Media

/// The meter against what EBU Tech 3341 says a tone measures, and the levelling decisions.
@Suite("Loudness rules")
struct LoudnessRules {
    /// `seconds` of a sine of peak `amplitude` at `frequency`, starting at `phase`, on every channel.
    private func measured(
        frequency: Double, amplitude: Double, phase: Double = 0, seconds: Double, rate: Int = 48_000,
        channels: Int = 2, then silence: Double = 0
    ) -> LoudnessMeter {
        var meter = LoudnessMeter(sampleRate: rate, channels: channels)
        let count = Int(seconds * Double(rate))
        var samples = (0..<count).map { index in
            Float(amplitude * sin(phase + 2 * Double.pi * frequency * Double(index) / Double(rate)))
        }
        samples += Array(repeating: 0, count: Int(silence * Double(rate)))
        // In buffers of 1000 samples, as decoded audio comes.
        for start in stride(from: 0, to: samples.count, by: 1000) {
            let end = min(samples.count, start + 1000)
            samples[start..<end].withUnsafeBufferPointer { buffer in
                meter.add(Array(repeating: UnsafeBufferPointer(rebasing: buffer[...]), count: channels))
            }
        }
        return meter
    }

    /// Tech 3341 case 1: a stereo 1 kHz sine at −23 dBFS measures −23.0 LUFS, at either rate.
    @Test(arguments: [48_000, 44_100])
    func toneMeasuresAsTheStandardSays(rate: Int) throws {
        let meter = measured(frequency: 1000, amplitude: pow(10, -23.0 / 20), seconds: 5, rate: rate)
        let integrated = try #require(meter.integrated)
        #expect(abs(integrated - -23) < 0.1, "\(integrated)")
        #expect(abs(meter.truePeak - -23) < 0.1, "\(meter.truePeak)")
    }

    /// Silence after the tone is gated out, whatever its length: only the three blocks that
    /// straddle the end count, partly (4 s of tone: 38.5 blocks' power over 40, −0.17 dB).
    @Test func silenceIsGatedOut() throws {
        let meter = measured(frequency: 1000, amplitude: pow(10, -20.0 / 20), seconds: 4, then: 20)
        let integrated = try #require(meter.integrated)
        #expect(abs(integrated - (-20 + 10 * log10(38.5 / 40))) < 0.05, "\(integrated)")
        #expect(measured(frequency: 1000, amplitude: 0, seconds: 3).integrated == nil)
    }

    /// A quarter-rate sine sampled 45° off its crests: every sample is 3 dB under the wave's
    /// peak, which the true peak finds between them.
    @Test func truePeakIsBetweenTheSamples() {
        let meter = measured(frequency: 12_000, amplitude: 0.5, phase: .pi / 4, seconds: 1)
        #expect(abs(meter.truePeak - 20 * log10(0.5)) < 0.3, "\(meter.truePeak)")
    }

    @Test func levelDecisions() {
        #expect(LoudnessLevel(integrated: -30, truePeak: -20) == LoudnessLevel(gain: 14, .levelled))
        #expect(LoudnessLevel(integrated: -8, truePeak: -1) == LoudnessLevel(gain: -8, .levelled))
        // A gain that would push the true peak past the ceiling (less the codec's margin) is cut.
        #expect(LoudnessLevel(integrated: -30, truePeak: -6) == LoudnessLevel(gain: 3.5, .peakLimited))
        #expect(LoudnessLevel(integrated: -16.3, truePeak: -10) == LoudnessLevel(gain: 0, .alreadyLevel))
        #expect(LoudnessLevel(integrated: -55, truePeak: -40) == LoudnessLevel(gain: 0, .silent))
        #expect(LoudnessLevel(integrated: nil, truePeak: -.infinity) == LoudnessLevel(gain: 0, .silent))
        #expect(LoudnessLevel(integrated: -20, truePeak: -10, target: -23) == LoudnessLevel(gain: -3, .levelled))
    }

    @Test func targetsAsSettingsSpellThem() {
        #expect(LoudnessTarget("-16") == .lufs(-16) && LoudnessTarget("OFF") == .off)
        #expect(LoudnessTarget("-2") == nil && LoudnessTarget("loud") == nil && LoudnessTarget("-90") == nil)
    }
}

extension LoudnessLevel {
    fileprivate init(gain: Double, _ outcome: Outcome) { self.init(gainDB: gain, outcome: outcome) }
}

/// Every output's audio at −16 LUFS (± 1 LU) with its true peak at most −1.5 dBTP, as FFmpeg's
/// own EBU R128 meter hears the written file: loud and quiet uploads levelled, room tone left as
/// it is, an upload already level left alone, a long video in pieces levelled once for the whole.
@Suite("Loudness levelling", .oneAtATime)
struct LoudnessTests {
    private func compressed(
        _ file: String, target: Double? = LoudnessLevel.target, pieceSeconds: Double? = nil
    ) throws -> (report: LoudnessReport?, input: (integrated: Double, truePeak: Double), output: (Double, Double)) {
        try withProcessed(
            file, type: .compression,
            configure: {
                $0.loudnessTarget = target
                $0.pieceSeconds = pieceSeconds
            }
        ) { report, directory in
            let video = try #require(report.outputs[.video])
            if pieceSeconds != nil { #expect(video.encoder?.why.contains { $0.contains("pieces") } == true) }
            let input = try #require(try FFprobe.loudness(Fixtures.path(file)))
            let output = try #require(try FFprobe.loudness(directory.appendingPathComponent(video.path).path))
            return (video.encoder?.loudness, input, output)
        }
    }

    @Test(arguments: ["loudness_concert.mp4", "loudness_whisper.mp4"])
    func loudAndQuietUploadsAreLevelled(file: String) throws {
        let (report, input, output) = try compressed(file)
        #expect(abs(input.integrated - -16) > 5, "the fixture starts far from the target")
        #expect(abs(output.0 - -16) <= 1, "\(file): \(output.0) LUFS")
        #expect(output.1 <= -1.5, "\(file): true peak \(output.1) dBTP")
        let measured = try #require(report?.measuredLufs)
        #expect(abs(measured - input.integrated) <= 0.2, "our meter \(measured), the judge's \(input.integrated)")
        #expect(report?.outcome == "levelled" && report?.targetLufs == -16)
    }

    @Test func roomToneStaysAsQuietAsItWas() throws {
        let (report, input, output) = try compressed("loudness_room_tone.mp4")
        #expect(input.integrated < LoudnessLevel.floor)
        #expect(abs(output.0 - input.integrated) <= 1, "\(input.integrated) → \(output.0)")
        #expect(report?.outcome == "silent" && report?.gainDb == 0)
    }

    @Test func anUploadAlreadyLevelIsLeftAlone() throws {
        let (report, input, output) = try compressed("loudness_levelled.mp4")
        #expect(report?.outcome == "already_level" && report?.gainDb == 0)
        #expect(abs(output.0 - input.integrated) <= 0.5 && abs(output.0 - -16) <= 1)
    }

    @Test func offKeepsTheSourcesLevel() throws {
        let (report, input, output) = try compressed("loudness_whisper.mp4", target: nil)
        #expect(report == nil)
        #expect(abs(output.0 - input.integrated) <= 1)
    }

    /// The pieces' join makes the audio of the whole once, with the gain measured for the whole.
    @Test func aLongVideoInPiecesIsLevelledOnce() throws {
        let (report, input, output) = try compressed("long_hevc_720p_20s.mp4", pieceSeconds: 5)
        #expect(abs(input.integrated - -16) > 1.5, "the fixture starts away from the target: \(input.integrated)")
        #expect(abs(output.0 - -16) <= 1 && output.1 <= -1.5, "\(output)")
        #expect(report?.outcome == "levelled")
    }
}
