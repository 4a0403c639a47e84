import CFFmpeg

/// Owns an `AVBSFContext`: rewrites the packets of a copied stream without decoding them. Used to
/// keep only what a decoder needs (`ParameterSets`) of what an uploader's camera or app wrote into
/// the bitstream itself before a copy is published.
final class BitstreamFilter {
    private var context: UnsafeMutablePointer<AVBSFContext>?

    /// `name` with `options`, for packets of `input`'s stream `index`.
    init(_ name: String, options: [String: String], input: InputFile, stream index: Int) throws(FFmpegError) {
        let filter = try allocated("av_bsf_get_by_name(\(name))", av_bsf_get_by_name(name))
        var created: UnsafeMutablePointer<AVBSFContext>?
        try check("av_bsf_alloc(\(name))") { av_bsf_alloc(filter, &created) }
        context = created
        try input.withStream(index) { source throws(FFmpegError) in
            try check("avcodec_parameters_copy") {
                avcodec_parameters_copy(created!.pointee.par_in, source.pointee.codecpar)
            }
            created!.pointee.time_base_in = source.pointee.time_base
        }
        for (key, value) in options {
            try check("av_opt_set(\(name), \(key))") { av_opt_set(created!.pointee.priv_data, key, value, 0) }
        }
        try check("av_bsf_init(\(name))") { av_bsf_init(created) }
    }

    deinit { av_bsf_free(&context) }

    /// Hands the filter's output parameters (extradata filtered too) to `body`.
    func withOutputParameters<R>(_ body: (UnsafePointer<AVCodecParameters>) throws(FFmpegError) -> R)
        throws(FFmpegError) -> R
    {
        try body(context!.pointee.par_out)
    }

    /// Replaces the output parameters' extradata (the decoder configuration a copy is muxed with)
    /// by what `rewrite` makes of it; false (nothing changed) when `rewrite` refuses it.
    func rewriteOutputExtradata(_ rewrite: ([UInt8]) -> [UInt8]?) throws(FFmpegError) -> Bool {
        let parameters = context!.pointee.par_out!
        let current =
            parameters.pointee.extradata.map {
                Array(UnsafeBufferPointer(start: $0, count: Int(parameters.pointee.extradata_size)))
            } ?? []
        guard let rewritten = rewrite(current) else { return false }
        let buffer = try allocated(
            "av_mallocz(extradata)",
            av_mallocz(rewritten.count + Int(AV_INPUT_BUFFER_PADDING_SIZE))?.assumingMemoryBound(to: UInt8.self))
        buffer.update(from: rewritten, count: rewritten.count)
        av_freep(&parameters.pointee.extradata)
        parameters.pointee.extradata = buffer
        parameters.pointee.extradata_size = Int32(rewritten.count)
        return true
    }

    /// The output parameters' extradata (the decoder configuration a copy is muxed with).
    var outputExtradata: [UInt8] {
        let parameters = context!.pointee.par_out!.pointee
        return parameters.extradata.map { Array(UnsafeBufferPointer(start: $0, count: Int(parameters.extradata_size))) }
            ?? []
    }

    /// Filters `packet` in place (consuming its payload); false when the filter dropped it.
    func filter(_ packet: Packet) throws(FFmpegError) -> Bool {
        try check("av_bsf_send_packet") { av_bsf_send_packet(context, packet.pointer) }
        let received = av_bsf_receive_packet(context, packet.pointer)
        if received == cffmpeg_averror_eagain() { return false }
        try check("av_bsf_receive_packet") { received }
        return true
    }
}
