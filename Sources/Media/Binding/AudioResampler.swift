import CFFmpeg

/// Owns a `SwrContext` and an `AVAudioFifo`: converts decoded audio of any layout, rate and sample
/// format into planar float frames of exactly the encoder's frame size.
final class AudioResampler {
    private let context: OpaquePointer
    private let fifo: OpaquePointer
    private let channels: Int32
    private let sampleRate: Int32
    private let frameSize: Int32

    init(input: Frame, sampleRate: Int, channels: Int, frameSize: Int) throws(FFmpegError) {
        self.channels = Int32(channels)
        self.sampleRate = Int32(sampleRate)
        self.frameSize = Int32(frameSize)
        var inputLayout = AVChannelLayout()
        if input.pointer.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            av_channel_layout_default(&inputLayout, input.pointer.pointee.ch_layout.nb_channels)
        } else {
            try check("av_channel_layout_copy") {
                av_channel_layout_copy(&inputLayout, &input.pointer.pointee.ch_layout)
            }
        }
        defer { av_channel_layout_uninit(&inputLayout) }
        var outputLayout = AVChannelLayout()
        av_channel_layout_default(&outputLayout, Int32(channels))
        defer { av_channel_layout_uninit(&outputLayout) }
        var created: OpaquePointer?
        try check("swr_alloc_set_opts2") {
            swr_alloc_set_opts2(
                &created, &outputLayout, AV_SAMPLE_FMT_FLTP, Int32(sampleRate), &inputLayout,
                AVSampleFormat(rawValue: input.pointer.pointee.format), input.pointer.pointee.sample_rate, 0, nil)
        }
        var swr = created
        do throws(FFmpegError) {
            try check("swr_init") { swr_init(swr) }
            fifo = try allocated(
                "av_audio_fifo_alloc", av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, Int32(channels), Int32(frameSize) * 4))
        } catch {
            swr_free(&swr)
            throw error
        }
        context = swr!
    }

    deinit {
        var swr: OpaquePointer? = context
        swr_free(&swr)
        av_audio_fifo_free(fifo)
    }

    /// Converts `frame` (nil: drain the resampler's delay) into the queue.
    func push(_ frame: Frame?) throws(FFmpegError) {
        let converted = try Frame()
        let raw = converted.pointer
        raw.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        raw.pointee.sample_rate = sampleRate
        av_channel_layout_default(&raw.pointee.ch_layout, channels)
        try check("swr_convert_frame") { swr_convert_frame(context, raw, frame?.pointer) }
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
        let frame = try Frame()
        let raw = frame.pointer
        raw.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        raw.pointee.sample_rate = sampleRate
        raw.pointee.nb_samples = count
        av_channel_layout_default(&raw.pointee.ch_layout, channels)
        try check("av_frame_get_buffer") { av_frame_get_buffer(raw, 0) }
        let read = raw.pointee.extended_data.withMemoryRebound(
            to: UnsafeMutableRawPointer?.self, capacity: Int(channels)
        ) {
            av_audio_fifo_read(fifo, $0, count)
        }
        if read < 0 { throw FFmpegError(call: "av_audio_fifo_read", code: read) }
        return frame
    }
}
