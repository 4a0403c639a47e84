/// Each byte of a file belongs to one packet at most: a stream whose packets add up to more than
/// the file (an MP4 edit list replaying a clip thousands of times, chunk offsets all pointing at
/// one frame) plays its data again and again. Refused before it costs a decode or a copy of it.
struct ReplayCheck {
    let fileBytes: Int64
    private var read: [Int: Int64] = [:]

    init(fileBytes: Int64) { self.fileBytes = fileBytes }

    /// Some containers share a little between streams (DV's audio lives in its video frames).
    var allowance: Int64 { fileBytes + fileBytes / 20 + (256 << 10) }

    mutating func count(_ bytes: Int, stream: Int) throws(MediaError) {
        let total = read[stream, default: 0] + Int64(bytes)
        read[stream] = total
        if total > allowance {
            throw .limitsExceeded(
                "the file's index plays the same data more than once (over \(total) bytes of packets from a "
                    + "\(fileBytes)-byte file); it is crafted or damaged: re-export it")
        }
    }
}
