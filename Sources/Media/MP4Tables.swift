import Foundation

/// The index of an MP4/MOV (ISO base media) file, read and checked before FFmpeg sees it. FFmpeg
/// allocates what a sample table claims before it reads the entries: a 9.5 KB file whose `stsz`
/// claims 88 million samples of one size in one chunk costs gigabytes. Every table here must fit
/// in its own box, and the samples it claims in the file. Also says whether an edit list does
/// more than shift the start (then the video is re-encoded, never copied).
struct MP4Tables {
    /// A track's edit list cuts, repeats or retimes its media.
    private(set) var edited = false

    /// Boxes that only hold other boxes, on the way to the tables.
    private static let containers: Set<String> = [
        "moov", "trak", "mdia", "minf", "stbl", "edts", "moof", "traf", "mfra",
    ]
    /// The largest `moov` or `moof` read: a 30-minute 240 fps video's index is a few MB.
    private static let largestIndex = 64 << 20

    /// Reads the top-level boxes of `path` (`size` bytes) as FFmpeg's demuxer does: whatever their
    /// type, as long as their sizes hold (FFmpeg steps over a box it does not know, so a crafted
    /// first box must not stop the check). A file that is not ISO base media stops the walk at
    /// once; what it found is returned.
    static func read(path: String, size: Int64) throws(MediaError) -> MP4Tables? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var tables = MP4Tables()
        var offset: Int64 = 0
        while offset + 8 <= size {
            guard let header = try? Self.read(handle, at: offset, count: 16), header.count >= 8 else { break }
            let type = String(decoding: header[4..<8], as: UTF8.self)
            // A box running past the end is a file cut short: FFmpeg says so in its own words.
            guard let (headerBytes, boxBytes) = Self.length(header, remaining: size - offset) else { break }
            if type == "moov" || type == "moof" || type == "mfra" {
                guard boxBytes <= Int64(largestIndex) else {
                    throw MediaError.limitsExceeded(
                        "the file's index is \(boxBytes) bytes, over the \(largestIndex >> 20) MiB any real video needs; "
                            + "it is crafted or damaged: re-export it")
                }
                guard let body = try? Self.read(handle, at: offset + headerBytes, count: Int(boxBytes - headerBytes))
                else { break }
                try tables.walk(body, type: type, fileSize: size)
            }
            offset += boxBytes
        }
        return tables
    }

    /// Checks the boxes inside `body` (the payload of a `type` box), descending into containers.
    private mutating func walk(_ body: Data, type: String, fileSize: Int64) throws(MediaError) {
        var position = body.startIndex
        while position + 8 <= body.endIndex {
            let header = body[position..<min(body.endIndex, position + 16)]
            let child = String(decoding: header.dropFirst(4).prefix(4), as: UTF8.self)
            guard let (headerBytes, boxBytes) = Self.length(Data(header), remaining: Int64(body.endIndex - position))
            else { throw Self.damaged("a box inside its \(type) box is larger than it") }
            let payload = body[(position + Int(headerBytes))..<(position + Int(boxBytes))]
            if child == "cmov" {
                // FFmpeg inflates a compressed index and parses what comes out, which no check
                // here can see first; no phone or camera writes one.
                throw MediaError.limitsExceeded(
                    "the file's index is compressed (a cmov box), which no phone or camera writes and which could "
                        + "unpack to any size: re-export the video")
            }
            if Self.containers.contains(child) {
                try walk(Data(payload), type: child, fileSize: fileSize)
            } else {
                try check(child, Data(payload), fileSize: fileSize)
            }
            position += Int(boxBytes)
        }
    }

    /// One table: its entries must fit in it, and the samples it claims in the file.
    private mutating func check(_ type: String, _ payload: Data, fileSize: Int64) throws(MediaError) {
        let word = { (at: Int) -> Int64 in
            guard payload.count >= at + 4 else { return 0 }
            return payload[payload.startIndex + at..<payload.startIndex + at + 4].reduce(0) { $0 << 8 | Int64($1) }
        }
        let version = payload.first ?? 0
        let available = Int64(payload.count)
        switch type {
        case "stsz":
            let (sampleSize, count) = (word(4), word(8))
            if sampleSize > 0 {
                if count * sampleSize > fileSize { throw Self.claims(count, of: sampleSize, fileSize: fileSize) }
            } else if 12 + 4 * count > available {
                throw Self.damaged("its sample size table claims \(count) entries in \(available) bytes")
            }
        case "stz2":
            let count = word(8)
            if 12 + (count * max(1, word(4) & 0xFF) + 7) / 8 > available {
                throw Self.damaged("its sample size table claims \(count) entries in \(available) bytes")
            }
        case "stco", "co64", "stts", "stsc", "ctts", "stss":
            let entryBytes: Int64 = ["stco": 4, "co64": 8, "stts": 8, "stsc": 12, "ctts": 8, "stss": 4][type] ?? 0
            if 8 + entryBytes * word(4) > available {
                throw Self.damaged("its \(type) table claims \(word(4)) entries in \(available) bytes")
            }
        case "sbgp":
            // Sample-to-group entries of 8 bytes, after a grouping type (and, in version 1, a parameter).
            let count = word(version == 1 ? 12 : 8)
            if Int64(version == 1 ? 16 : 12) + 8 * count > available {
                throw Self.damaged("its sample group table claims \(count) entries in \(available) bytes")
            }
        case "tfra":
            // Random-access entries: a time and an offset (8 or 16 bytes) and three numbers of 1–4 bytes.
            let sizes = word(8)
            let entryBytes = Int64(version == 1 ? 16 : 8) + ((sizes >> 4 & 3) + (sizes >> 2 & 3) + (sizes & 3) + 3)
            if 16 + entryBytes * word(12) > available {
                throw Self.damaged("its random-access table claims \(word(12)) entries in \(available) bytes")
            }
        case "trun":
            // Each sample holds at least a byte of the file, whatever its default size says.
            if word(4) > fileSize { throw Self.claims(word(4), of: 1, fileSize: fileSize) }
        case "elst":
            let count = word(4)
            let entryBytes: Int64 = version == 1 ? 20 : 12
            guard 8 + entryBytes * count <= available else {
                throw Self.damaged("its edit list claims \(count) entries in \(available) bytes")
            }
            // One edit (and an empty one before it, which only delays the start) at normal speed
            // is a shift; anything more cuts, repeats or retimes.
            var edits = 0
            for entry in 0..<Int(count) {
                let base = 8 + entry * Int(entryBytes)
                let mediaTime = version == 1 ? word(base + 8) << 32 | word(base + 12) : word(base + 4)
                let rate = word(base + Int(entryBytes) - 4)
                let empty = version == 1 ? mediaTime == -1 : mediaTime == 0xFFFF_FFFF
                if !empty { edits += 1 }
                if !empty && rate != 0x0001_0000 { edited = true }
            }
            if edits > 1 { edited = true }
        default:
            break
        }
    }

    /// (header bytes, box bytes) of the box whose first bytes are `header`, or nil when it claims
    /// more than `remaining` or less than its own header.
    private static func length(_ header: Data, remaining: Int64) -> (Int64, Int64)? {
        let bytes = [UInt8](header)
        let small = bytes[0..<4].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        var (headerBytes, boxBytes) = (Int64(8), small)
        if small == 1 {
            guard bytes.count >= 16 else { return nil }
            boxBytes = bytes[8..<16].reduce(Int64(0)) { $0 << 8 | Int64($1) }
            headerBytes = 16
        } else if small == 0 {
            boxBytes = remaining
        }
        guard boxBytes >= headerBytes, boxBytes <= remaining else { return nil }
        return (headerBytes, boxBytes)
    }

    private static func read(_ handle: FileHandle, at offset: Int64, count: Int) throws -> Data {
        try handle.seek(toOffset: UInt64(offset))
        return try handle.read(upToCount: count) ?? Data()
    }

    private static func damaged(_ what: String) -> MediaError {
        .corruptInput("the file's index is damaged (\(what)); upload it again, or re-export it")
    }

    private static func claims(_ count: Int64, of size: Int64, fileSize: Int64) -> MediaError {
        .limitsExceeded(
            "the file's index claims \(count) samples of \(size) bytes, more than its \(fileSize) bytes can hold; it "
                + "is crafted or damaged: re-export it")
    }
}
