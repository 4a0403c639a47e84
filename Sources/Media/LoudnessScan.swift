import Foundation

/// What levelling found and did, in every video output's `encoder.loudness` (and so in
/// `outputMetadata`): the input's audio as its outputs hear it (resampled and mixed down as they
/// are), the target, the gain and what became of it. Values in LUFS, dBTP and dB, to 0.1.
public struct LoudnessReport: Codable, Sendable, Equatable {
    /// Integrated loudness (EBU R128) before levelling; nil: nothing over the −70 LUFS gate.
    public var measuredLufs: Double?
    public var measuredTruePeakDbtp: Double?
    public var targetLufs: Double
    public var gainDb: Double
    /// `levelled`, `peak_limited` (less gain than asked: the true peak would pass −1.5 dBTP),
    /// `already_level` or `silent` (under −50 LUFS: left as it is).
    public var outcome: String
    /// The CPU seconds the audio-only read that measured it took.
    public var measureCpuSeconds: Double
}

/// Measures the loudness of an input's audio by reading it alone (the video's packets are skipped
/// by the demuxer, never decoded), before the one pass that makes the outputs applies the gain.
enum LoudnessScan {
    /// The level that brings the input at `path` to `target` LUFS, with its report; nil when the
    /// input has no audio. `checkBudget` is called every few packets (it throws when the job's
    /// CPU budget is spent: a crafted audio stream costs no more than a video would).
    static func level(
        path: String, limits: MediaLimits, target: Double, checkBudget: () throws(MediaError) -> Void
    ) throws(MediaError) -> (level: LoudnessLevel, report: LoudnessReport)? {
        let cpu = ProcessCPU.seconds()
        let opened = try Probe.open(path: path, limits: limits)
        guard let info = opened.info.audio, opened.audioStream != nil else { return nil }
        let (rate, channels) = AudioEncodeBranch.outputFormat(info)
        var meter = LoudnessMeter(sampleRate: rate, channels: channels)
        let resampler: AudioResampler
        do {
            resampler = try AudioResampler(sampleRate: rate, channels: channels, frameSize: 4096)
        } catch {
            throw .decoding(error)
        }
        func measure(flushing: Bool) throws(FFmpegError) {
            while let samples = try resampler.pop(flushing: flushing) {
                samples.withFloatPlanes { planes in meter.add(planes.map { UnsafeBufferPointer($0) }) }
            }
        }
        var packets = 0
        try opened.decodeAudioAlone(
            eachPacket: {
                packets += 1
                if packets % 64 == 0 { try checkBudget() }
            }
        ) { frame in
            try resampler.push(frame)
            try measure(flushing: false)
        }
        do {
            try resampler.push(nil)
            try measure(flushing: true)
        } catch {
            throw .decoding(error)
        }
        let (integrated, peak) = (meter.integrated, meter.truePeak)
        let level = LoudnessLevel(integrated: integrated, truePeak: peak, target: target)
        let tenth = { (value: Double) in (value * 10).rounded() / 10 }
        let report = LoudnessReport(
            measuredLufs: integrated.map(tenth), measuredTruePeakDbtp: peak.isFinite ? tenth(peak) : nil,
            targetLufs: target, gainDb: tenth(level.gainDB), outcome: level.outcome.rawValue,
            measureCpuSeconds: ((ProcessCPU.seconds() - cpu) * 1000).rounded() / 1000)
        return (level, report)
    }
}
