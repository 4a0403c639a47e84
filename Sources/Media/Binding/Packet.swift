import CFFmpeg

/// Owns one `AVPacket`; reused across reads (`InputFile.read(into:)` unreferences it first).
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

    /// Payload bytes.
    var size: Int { Int(pointer.pointee.size) }

    /// The decoding timestamp, or the presentation one when there is none, in the stream's time base.
    var timestamp: Int64? {
        let raw = pointer.pointee
        return raw.dts != noTimestamp ? raw.dts : raw.pts != noTimestamp ? raw.pts : nil
    }

    /// Whether the packet starts a picture that decodes on its own.
    var isKeyframe: Bool { pointer.pointee.flags & AV_PKT_FLAG_KEY != 0 }

    /// Lends the packet's payload, read-only, for the duration of `body`.
    func withPayload<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: pointer.pointee.data, count: Int(pointer.pointee.size)))
    }

    /// The presentation timestamp, in the stream's time base.
    var presentationTimestamp: Int64? { pointer.pointee.pts == noTimestamp ? nil : pointer.pointee.pts }

    /// Makes this packet another reference to `other`'s payload and fields (both stay valid), so
    /// one packet read can be written to two outputs.
    func reference(_ other: Packet) throws(FFmpegError) {
        av_packet_unref(pointer)
        _ = try check("av_packet_ref") { av_packet_ref(pointer, other.pointer) }
    }

    /// Moves `other`'s payload and fields into this packet (leaving `other` empty).
    func take(_ other: Packet) {
        av_packet_unref(pointer)
        av_packet_move_ref(pointer, other.pointer)
    }

    /// Moves the packet's presentation and decoding times (those it has) by `ticks`.
    func shift(by ticks: Int64) {
        if pointer.pointee.pts != noTimestamp { pointer.pointee.pts += ticks }
        if pointer.pointee.dts != noTimestamp { pointer.pointee.dts += ticks }
    }

    /// The decoding timestamp, in the stream's time base.
    var decodingTimestamp: Int64? { pointer.pointee.dts == noTimestamp ? nil : pointer.pointee.dts }

    /// Makes the timestamps of a copied packet acceptable to a muxer, as `ffmpeg -c copy` does:
    /// a missing decoding time is predicted (the previous one plus `frameDuration` or, for the
    /// first packet, the presentation time less the stream's `reorderDelay` frames) when frames
    /// are reordered, and is the presentation time when they are not; a missing presentation time
    /// is the decoding one; a decoding time not after `previous` becomes the next tick (and the
    /// presentation time no earlier); a negative duration none.
    func mendTimestamps(after previous: Int64?, frameDuration: Int64 = 1, reorderDelay: Int = 0) {
        let raw = pointer
        if raw.pointee.dts == noTimestamp {
            if reorderDelay == 0 {
                raw.pointee.dts = raw.pointee.pts
            } else if let previous {
                raw.pointee.dts = previous + frameDuration
            } else if raw.pointee.pts != noTimestamp {
                raw.pointee.dts = raw.pointee.pts - Int64(reorderDelay) * frameDuration
            }
        }
        if raw.pointee.pts == noTimestamp { raw.pointee.pts = raw.pointee.dts }
        guard raw.pointee.dts != noTimestamp else { return }
        if let previous, raw.pointee.dts <= previous {
            raw.pointee.dts = previous + 1
        }
        if raw.pointee.pts < raw.pointee.dts { raw.pointee.pts = raw.pointee.dts }
        if raw.pointee.duration < 0 || raw.pointee.duration > Int64(Int32.max) { raw.pointee.duration = 0 }
    }

    /// How long the packet lasts, in its time base (0: unknown).
    var duration: Int64 {
        get { pointer.pointee.duration }
        set { pointer.pointee.duration = newValue }
    }

    /// Drops the payload so the packet can be filled again.
    func reset() { av_packet_unref(pointer) }
}
