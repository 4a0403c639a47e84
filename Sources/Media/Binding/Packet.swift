import CFFmpeg

/// Owns one `AVPacket`; reused across reads (`readPacket` unreferences it first).
final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() throws(FFmpegError) {
        pointer = try allocated("av_packet_alloc", av_packet_alloc())
    }

    deinit {
        var packet: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&packet)
    }

    var streamIndex: Int { Int(pointer.pointee.stream_index) }

    /// The decoding timestamp, or the presentation one when there is none, in the stream's time base.
    var timestamp: Int64? {
        let raw = pointer.pointee
        return raw.dts != noTimestamp ? raw.dts : raw.pts != noTimestamp ? raw.pts : nil
    }

    /// How long the packet lasts, in its time base (0: unknown).
    var duration: Int64 {
        get { pointer.pointee.duration }
        set { pointer.pointee.duration = newValue }
    }

    /// Drops the payload so the packet can be filled again.
    func reset() { av_packet_unref(pointer) }
}
