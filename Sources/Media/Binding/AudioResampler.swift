import CFFmpeg

/// Converts decoded audio of any layout, rate and sample format into planar float frames of
/// exactly the encoder's frame size. The input may change format, rate or layout part-way (WMV,
/// AVI, concatenated clips): the resampler is then drained and rebuilt for the new input, as
/// FFmpeg's own tools do, and the output goes on unchanged.
final class AudioResampler {
    private var converter: Converter?
    private let fifo: OpaquePointer
    private let channels: Int32
    private let sampleRate: Int32
    private let frameSize: Int32

    init(sampleRate: Int, channels: Int, frameSize: Int) throws(FFmpegError) {
        self.channels = Int32(channels)
        self.sampleRate = Int32(sampleRate)
        self.frameSize = Int32(frameSize)
        fifo = try allocated(
            "av_audio_fifo_alloc", av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, Int32(channels), Int32(frameSize) * 4))
    }

    deinit {
        av_audio_fifo_free(fifo)
    }

    /// Converts `frame` (nil: drain the resampler's delay) into the queue. Returns false when the
    /// frame could not be converted at all and was dropped.
    @discardableResult
    func push(_ frame: Frame?) throws(FFmpegError) -> Bool {
        if let frame, frame.pointer.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            // Decoders of old formats leave the layout unspecified: give it the default for its
            // channel count, as the converter was given, so libswresample sees the same input.
            let count = frame.pointer.pointee.ch_layout.nb_channels
            av_channel_layout_uninit(&frame.pointer.pointee.ch_layout)
            av_channel_layout_default(&frame.pointer.pointee.ch_layout, count)
        }
        if let frame, converter.map({ !$0.accepts(frame) }) ?? true {
            if converter != nil { try convert(nil) }
            do {
                converter = try Converter(input: frame, sampleRate: sampleRate, channels: channels)
            } catch {
                // A layout libswresample cannot mix (a damaged header's 35 channels): the frame is
                // dropped, and the next one starts afresh.
                converter = nil
                return false
            }
        }
        try convert(frame)
        return true
    }

    /// Queues `seconds` of silence (a gap in the source's audio).
    func pushSilence(seconds: Double) throws(FFmpegError) {
        let count = Int32((seconds * Double(sampleRate)).rounded())
        guard count > 0 else { return }
        let silence = try outputFrame(samples: count)
        let raw = silence.pointer
        try check("av_samples_set_silence") {
            av_samples_set_silence(raw.pointee.extended_data, 0, count, channels, AV_SAMPLE_FMT_FLTP)
        }
        let written = withExtendedLifetime(silence) {
            raw.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(channels)) {
                av_audio_fifo_write(fifo, $0, count)
            }
        }
        if written < 0 { throw FFmpegError(call: "av_audio_fifo_write", code: written) }
    }

    /// A frame of `samples` in the output's format, rate and layout, with its buffers.
    private func outputFrame(samples: Int32) throws(FFmpegError) -> Frame {
        let frame = try Frame()
        let raw = frame.pointer
        raw.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        raw.pointee.sample_rate = sampleRate
        raw.pointee.nb_samples = samples
        av_channel_layout_default(&raw.pointee.ch_layout, channels)
        try check("av_frame_get_buffer") { av_frame_get_buffer(raw, 0) }
        return frame
    }

    private func convert(_ frame: Frame?) throws(FFmpegError) {
        guard let converter else { return }
        let converted = try Frame()
        let raw = converted.pointer
        raw.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        raw.pointee.sample_rate = sampleRate
        av_channel_layout_default(&raw.pointee.ch_layout, channels)
        try check("swr_convert_frame") { swr_convert_frame(converter.context, raw, frame?.pointer) }
        guard raw.pointee.nb_samples > 0 else { return }
        let written = raw.pointee.extended_data.withMemoryRebound(
            to: UnsafeMutableRawPointer?.self, capacity: Int(channels)
        ) {
            av_audio_fifo_write(fifo, $0, raw.pointee.nb_samples)
        }
        if written < 0 { throw FFmpegError(call: "av_audio_fifo_write", code: written) }
    }

    /// Takes one encoder-sized frame from the queue; at the end (`flushing`), a last shorter one.
    /// Returns nil when not enough samples are queued.
    func pop(flushing: Bool) throws(FFmpegError) -> Frame? {
        let available = av_audio_fifo_size(fifo)
        guard available >= frameSize || (flushing && available > 0) else { return nil }
        let count = min(available, frameSize)
        let frame = try outputFrame(samples: count)
        let raw = frame.pointer
        let read = raw.pointee.extended_data.withMemoryRebound(
            to: UnsafeMutableRawPointer?.self, capacity: Int(channels)
        ) {
            av_audio_fifo_read(fifo, $0, count)
        }
        if read < 0 { throw FFmpegError(call: "av_audio_fifo_read", code: read) }
        return frame
    }
}

/// Owns one `SwrContext`, set up for one input format, rate and layout.
private final class Converter {
    let context: OpaquePointer
    private let format: Int32
    private let rate: Int32
    private var layout: AVChannelLayout

    init(input: Frame, sampleRate: Int32, channels: Int32) throws(FFmpegError) {
        let raw = input.pointer
        let format = raw.pointee.format
        let rate = raw.pointee.sample_rate
        var inputLayout = AVChannelLayout()
        try check("av_channel_layout_copy") { av_channel_layout_copy(&inputLayout, &raw.pointee.ch_layout) }
        var outputLayout = AVChannelLayout()
        av_channel_layout_default(&outputLayout, channels)
        defer { av_channel_layout_uninit(&outputLayout) }
        var created: OpaquePointer?
        do throws(FFmpegError) {
            try check("swr_alloc_set_opts2") {
                swr_alloc_set_opts2(
                    &created, &outputLayout, AV_SAMPLE_FMT_FLTP, sampleRate, &inputLayout,
                    AVSampleFormat(rawValue: format), rate, 0, nil)
            }
            try check("swr_init") { swr_init(created) }
        } catch {
            swr_free(&created)
            av_channel_layout_uninit(&inputLayout)
            throw error
        }
        context = created!
        self.format = format
        self.rate = rate
        layout = inputLayout
    }

    deinit {
        var swr: OpaquePointer? = context
        swr_free(&swr)
        av_channel_layout_uninit(&layout)
    }

    /// Whether `frame` has the format, rate and layout this converter was built for.
    func accepts(_ frame: Frame) -> Bool {
        let raw = frame.pointer
        guard raw.pointee.format == format, raw.pointee.sample_rate == rate else { return false }
        return av_channel_layout_compare(&raw.pointee.ch_layout, &layout) == 0
    }
}
