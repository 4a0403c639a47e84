import Foundation

/// What a copied video keeps: an allow-list of the units a decoder needs to show the picture, per
/// codec, for the packets (`passedUnits`, in `filter_units` syntax) and for the decoder
/// configuration (`decoderConfiguration`, rebuilt from the parameter sets alone). Everything else
/// an upload's bitstream may hold (SEI of any type, filler data, unspecified and reserved units,
/// AV1 metadata and padding OBUs, SEI arrays in `hvcC`, SPS extensions in `avcC`) is dropped, since
/// dashcams, drones and phone apps write telemetry and device strings there.
enum ParameterSets {
    /// The unit types a copy passes, by codec. H.264: slices and data partitions (1–5), SPS, PPS,
    /// access unit delimiter, end of sequence and of stream (7–11). HEVC: the VCL types in use
    /// (0–9, 16–21), VPS, SPS, PPS, access unit delimiter, end of sequence and of bitstream
    /// (32–37). AV1: sequence header, temporal delimiter, frame header, tile group, frame.
    static let passedUnits = ["h264": "1-5|7-11", "hevc": "0-9|16-21|32-37", "av1": "1|2|3|4|6"]

    /// NAL types of the parameter sets a decoder configuration keeps (H.264: SPS, PPS; HEVC: VPS,
    /// SPS, PPS).
    private static let parameterSetTypes: [String: Set<UInt8>] = ["h264": [7, 8], "hevc": [32, 33, 34]]

    /// `extradata` of a copied stream of `codec` with nothing but its parameter sets (AV1: its
    /// sequence header), in the form it came in (Annex B, `avcC`, `hvcC`, `av1C` or bare OBUs).
    /// Nil when it cannot be read as such (the copy is then refused).
    static func decoderConfiguration(_ extradata: [UInt8], codec: String) -> [UInt8]? {
        guard !extradata.isEmpty else { return extradata }
        switch codec {
        case "h264", "hevc":
            let kept = parameterSetTypes[codec]!
            if extradata.starts(with: [0, 0, 1]) || extradata.starts(with: [0, 0, 0, 1]) {
                return annexB(extradata, keeping: kept, codec: codec)
            }
            return codec == "h264" ? avcC(extradata) : hvcC(extradata, keeping: kept)
        case "av1":
            if extradata[0] & 0x80 != 0 {  // av1C: a 4-byte header, then config OBUs
                guard extradata.count >= 4, let obus = sequenceHeaderOnly(Array(extradata[4...])) else { return nil }
                return Array(extradata[..<4]) + obus
            }
            return sequenceHeaderOnly(extradata)
        default:
            return extradata
        }
    }

    /// The sequence-level units a stream of `codec` starts from: H.264 SPS, HEVC VPS and SPS, AV1
    /// sequence headers (their payload). A copy is made under one decoder configuration, so it
    /// fits only while every such unit in its packets is one the configuration holds.
    static func sequenceUnits(ofConfiguration configuration: [UInt8], codec: String) -> Set<[UInt8]> {
        configuration.withUnsafeBytes {
            sequenceUnits(in: $0, codec: codec, framing: configurationFraming(configuration, codec: codec))
        }
    }

    /// How units are framed in the packets of a copy whose decoder configuration is
    /// `configuration` (the bitstream filter writes both alike).
    static func framing(ofConfiguration configuration: [UInt8], codec: String) -> Framing {
        guard configuration.first == 1 else { return codec == "av1" ? .obus : .annexB }
        switch codec {
        case "h264" where configuration.count > 4: return .lengthPrefixed(Int(configuration[4] & 3) + 1)
        case "hevc" where configuration.count > 21: return .lengthPrefixed(Int(configuration[21] & 3) + 1)
        default: return .annexB
        }
    }

    /// How units follow each other: after start codes, after a length of n bytes, or as AV1 OBUs
    /// that carry their sizes.
    enum Framing: Equatable {
        case annexB
        case lengthPrefixed(Int)
        case obus
    }

    /// The framing of a decoder configuration itself: `avcC` and `hvcC` are read by their arrays.
    private static func configurationFraming(_ configuration: [UInt8], codec: String) -> Framing? {
        if codec == "av1" { return .obus }
        return configuration.first == 1 ? nil : .annexB
    }

    /// The sequence-level units in `bytes` framed as `framing` (nil: an `avcC` or `hvcC`).
    static func sequenceUnits(in bytes: UnsafeRawBufferPointer, codec: String, framing: Framing?) -> Set<[UInt8]> {
        var found: Set<[UInt8]> = []
        let take = { (unit: Range<Int>) in
            if let first = unit.first, isSequenceUnit(bytes[first], codec: codec) { found.insert(Array(bytes[unit])) }
        }
        switch framing {
        case .annexB?:
            annexBUnits(bytes).forEach(take)
        case .lengthPrefixed(let size)?:
            var index = 0
            while index + size <= bytes.count {
                let length = (0..<size).reduce(0) { $0 << 8 | Int(bytes[index + $1]) }
                guard length > 0, index + size + length <= bytes.count else { break }
                take((index + size)..<(index + size + length))
                index += size + length
            }
        case .obus?:
            let start = bytes.first.map { $0 & 0x80 != 0 } == true ? 4 : 0  // av1C's header
            for obu in obus(bytes, from: start).units where obu.type == 1 { found.insert(Array(bytes[obu.payload])) }
        case nil:
            // avcC or hvcC: the units of its arrays.
            for unit in configurationArrays(Array(bytes), codec: codec) {
                if let first = unit.first, isSequenceUnit(first, codec: codec) { found.insert(unit) }
            }
        }
        return found
    }

    /// Whether a unit whose first byte is `first` is sequence-level: H.264 SPS, HEVC VPS or SPS.
    private static func isSequenceUnit(_ first: UInt8, codec: String) -> Bool {
        codec == "h264" ? first & 0x1F == 7 : codec == "hevc" && [32, 33].contains((first >> 1) & 0x3F)
    }

    /// Every unit of an `avcC` or `hvcC` (without its length).
    private static func configurationArrays(_ data: [UInt8], codec: String) -> [[UInt8]] {
        var reader = Reader(data)
        var units: [[UInt8]] = []
        if codec == "h264" {
            guard reader.bytes(5) != nil, let spsCount = reader.byte() else { return [] }
            for _ in 0..<(spsCount & 0x1F) {
                if let unit = reader.lengthPrefixed() { units.append(Array(unit.dropFirst(2))) }
            }
            guard let ppsCount = reader.byte() else { return units }
            for _ in 0..<ppsCount { if let unit = reader.lengthPrefixed() { units.append(Array(unit.dropFirst(2))) } }
            return units
        }
        guard reader.bytes(22) != nil, let arrays = reader.byte() else { return [] }
        for _ in 0..<arrays {
            guard reader.byte() != nil, let countBytes = reader.bytes(2) else { return units }
            for _ in 0..<(Int(countBytes[0]) << 8 | Int(countBytes[1])) {
                guard let unit = reader.lengthPrefixed() else { return units }
                units.append(Array(unit.dropFirst(2)))
            }
        }
        return units
    }

    private static func nalType(_ unit: ArraySlice<UInt8>, codec: String) -> UInt8? {
        guard let first = unit.first else { return nil }
        return codec == "h264" ? first & 0x1F : (first >> 1) & 0x3F
    }

    /// Annex B units (start codes of three or four bytes) whose type is in `keeping`.
    private static func annexB(_ data: [UInt8], keeping: Set<UInt8>, codec: String) -> [UInt8] {
        annexBUnits(data).flatMap { range -> [UInt8] in
            let unit = data[range]
            guard let type = nalType(unit, codec: codec), keeping.contains(type) else { return [] }
            return [0, 0, 0, 1] + unit
        }
    }

    /// Where the units of an Annex B stream are (after start codes of three or four bytes).
    private static func annexBUnits<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes) -> [Range<Int>]
    where Bytes.Index == Int {
        var starts: [Int] = []
        var index = bytes.startIndex
        while index + 2 < bytes.endIndex {
            if bytes[index] == 0, bytes[index + 1] == 0, bytes[index + 2] == 1 {
                starts.append(index + 3)
                index += 3
            } else {
                index += 1
            }
        }
        return starts.enumerated().map { position, start in
            var end = position + 1 < starts.count ? starts[position + 1] - 3 : bytes.endIndex
            while end > start, bytes[end - 1] == 0 { end -= 1 }
            return start..<end
        }
    }

    /// The OBUs of `bytes` from `start`: each one's type, its whole extent and its payload; and
    /// whether they all parsed (sizes within the bytes). An OBU without a size field runs to the end.
    private static func obus<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, from start: Int)
        -> (units: [(type: UInt8, whole: Range<Int>, payload: Range<Int>)], complete: Bool)
    where Bytes.Index == Int {
        var units: [(type: UInt8, whole: Range<Int>, payload: Range<Int>)] = []
        var index = start
        while index < bytes.endIndex {
            let header = bytes[index]
            var cursor = index + 1 + (header & 0x04 != 0 ? 1 : 0)
            var size = bytes.endIndex - cursor
            if header & 0x02 != 0 {
                size = 0
                var shift = 0
                while true {
                    guard cursor < bytes.endIndex, shift < 56 else { return (units, false) }
                    size |= Int(bytes[cursor] & 0x7F) << shift
                    cursor += 1
                    if bytes[cursor - 1] & 0x80 == 0 { break }
                    shift += 7
                }
            }
            guard size >= 0, cursor + size <= bytes.endIndex else { return (units, false) }
            units.append(((header >> 3) & 0x0F, index..<(cursor + size), cursor..<(cursor + size)))
            index = cursor + size
        }
        return (units, true)
    }

    /// An `avcC` with its SPS and PPS arrays and no SPS extensions (a high profile's trailer says
    /// none).
    private static func avcC(_ data: [UInt8]) -> [UInt8]? {
        var reader = Reader(data)
        guard let header = reader.bytes(5), let spsCount = reader.byte() else { return nil }
        var out = header + [spsCount]
        for _ in 0..<(spsCount & 0x1F) {
            guard let unit = reader.lengthPrefixed() else { return nil }
            out += unit
        }
        guard let ppsCount = reader.byte() else { return nil }
        out.append(ppsCount)
        for _ in 0..<ppsCount {
            guard let unit = reader.lengthPrefixed() else { return nil }
            out += unit
        }
        // High profiles add chroma format and bit depths, then a count of SPS extensions.
        if header[1] == 100 || header[1] == 110 || header[1] == 122 || header[1] == 144, let trailer = reader.bytes(3) {
            out += trailer + [0]
        }
        return out
    }

    /// An `hvcC` with the arrays of the types in `keeping` only.
    private static func hvcC(_ data: [UInt8], keeping: Set<UInt8>) -> [UInt8]? {
        var reader = Reader(data)
        guard let header = reader.bytes(22), let arrays = reader.byte() else { return nil }
        var kept: [[UInt8]] = []
        for _ in 0..<arrays {
            guard let kind = reader.byte(), let countBytes = reader.bytes(2) else { return nil }
            var array = [kind] + countBytes
            for _ in 0..<(Int(countBytes[0]) << 8 | Int(countBytes[1])) {
                guard let unit = reader.lengthPrefixed() else { return nil }
                array += unit
            }
            if keeping.contains(kind & 0x3F) { kept.append(array) }
        }
        return header + [UInt8(kept.count)] + kept.flatMap { $0 }
    }

    /// The sequence header OBUs of a run of OBUs (each with its size field).
    private static func sequenceHeaderOnly(_ data: [UInt8]) -> [UInt8]? {
        let (units, complete) = obus(data, from: 0)
        guard complete else { return nil }
        return units.filter { $0.type == 1 }.flatMap { data[$0.whole] }
    }

    /// Reads big-endian fields from a byte array, refusing to run past its end.
    private struct Reader {
        let data: [UInt8]
        var offset = 0

        init(_ data: [UInt8]) { self.data = data }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard offset + count <= data.count else { return nil }
            defer { offset += count }
            return Array(data[offset..<offset + count])
        }

        mutating func byte() -> UInt8? { bytes(1)?.first }

        /// A unit with its 16-bit length, as `avcC` and `hvcC` store them.
        mutating func lengthPrefixed() -> [UInt8]? {
            guard let length = bytes(2), let unit = bytes(Int(length[0]) << 8 | Int(length[1])) else { return nil }
            return length + unit
        }
    }
}
