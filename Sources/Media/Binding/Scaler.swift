import CFFmpeg

/// Owns a `SwsContext` that converts frames of one size and format to another.
final class Scaler {
    private let context: OpaquePointer
    let width: Int
    let height: Int
    let format: AVPixelFormat

    /// A scaler from `source`'s size, format and colour matrix to `width`×`height` in `format`.
    /// RGB, grey and full-range YUV ("J") outputs get BT.601 full range, which is what JPEG
    /// means; other YUV outputs get BT.709 limited range, which is what the encoders tag, or with
    /// `bt601`, BT.601 limited range, which is what WebP means.
    init(source: Frame, width: Int, height: Int, format: AVPixelFormat, bt601: Bool = false) throws(FFmpegError) {
        self.width = width
        self.height = height
        self.format = format
        let flags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP
        context = try allocated(
            "sws_getContext",
            sws_getContext(
                Int32(source.width), Int32(source.height), source.pixelFormat,
                Int32(width), Int32(height), format, Int32(flags), nil, nil, nil))
        let sourceFullRange =
            source.colorRange == AVCOL_RANGE_JPEG
            || [AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P].contains(source.pixelFormat)
        let sourceMatrix = Scaler.swsMatrix(source.colorSpace, height: source.height)
        // Errors here only mean the formats have no matrix (e.g. RGB in): the defaults then apply.
        let jpegLike = [AV_PIX_FMT_RGB24, AV_PIX_FMT_GRAY8, AV_PIX_FMT_YUVJ420P].contains(format)
        sws_setColorspaceDetails(
            context, sws_getCoefficients(sourceMatrix), sourceFullRange ? 1 : 0,
            sws_getCoefficients(jpegLike || bt601 ? SWS_CS_ITU601 : SWS_CS_ITU709), jpegLike ? 1 : 0,
            0, 1 << 16, 1 << 16)
    }

    /// The packed or JPEG formats the stages ask for, so no FFmpeg enum leaves the binding.
    enum Layout {
        case rgb, gray, jpegYUV, webpYUV

        var format: AVPixelFormat {
            switch self {
            case .rgb: AV_PIX_FMT_RGB24
            case .gray: AV_PIX_FMT_GRAY8
            case .jpegYUV: AV_PIX_FMT_YUVJ420P
            case .webpYUV: AV_PIX_FMT_YUV420P
            }
        }
    }

    convenience init(source: Frame, width: Int, height: Int, layout: Layout) throws(FFmpegError) {
        try self.init(source: source, width: width, height: height, format: layout.format, bt601: layout == .webpYUV)
    }

    deinit {
        sws_freeContext(context)
    }

    /// Converts `frame` into a new frame of this scaler's size and format.
    func scale(_ frame: Frame) throws(FFmpegError) -> Frame {
        let output = try Frame()
        output.pointer.pointee.width = Int32(width)
        output.pointer.pointee.height = Int32(height)
        output.pointer.pointee.format = format.rawValue
        try check("sws_scale_frame") { sws_scale_frame(context, output.pointer, frame.pointer) }
        output.pointer.pointee.pts = frame.pointer.pointee.pts
        output.pointer.pointee.best_effort_timestamp = frame.pointer.pointee.best_effort_timestamp
        return output
    }

    /// The swscale matrix for a stream's colour space; untagged video follows players' habit
    /// (HD and up is BT.709, smaller is BT.601).
    private static func swsMatrix(_ space: AVColorSpace, height: Int) -> Int32 {
        switch space {
        case AVCOL_SPC_BT709: SWS_CS_ITU709
        case AVCOL_SPC_BT2020_NCL, AVCOL_SPC_BT2020_CL: SWS_CS_BT2020
        case AVCOL_SPC_SMPTE170M, AVCOL_SPC_BT470BG: SWS_CS_ITU601
        case AVCOL_SPC_FCC: SWS_CS_FCC
        case AVCOL_SPC_SMPTE240M: SWS_CS_SMPTE240M
        default: height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601
        }
    }
}
