import Foundation

/// The types of an MP4/MOV file's top-level boxes, in file order (`ftyp`, `moov`, `mdat`, …).
public func topLevelBoxes(_ path: String) throws -> [String] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    var boxes: [String] = []
    var offset = 0
    while offset + 8 <= data.count {
        var size = data[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
        let type = String(decoding: data[offset + 4..<offset + 8], as: UTF8.self)
        if size == 1, offset + 16 <= data.count {
            size = data[offset + 8..<offset + 16].reduce(0) { $0 << 8 | Int($1) }
        } else if size == 0 {
            size = data.count - offset
        }
        guard size >= 8 else { break }
        boxes.append(type)
        offset += size
    }
    return boxes
}

/// Per-stream durations in seconds as ffprobe reads them (`video`, `audio`), or nil without it.
public func streamDurations(_ path: String) throws -> [String: Double]? {
    guard let judge = try FFprobe.describe(path), let streams = judge["streams"] as? [[String: Any]] else {
        return nil
    }
    var durations: [String: Double] = [:]
    for stream in streams {
        if let type = stream["codec_type"] as? String, let value = Double(stream["duration"] as? String ?? "") {
            durations[type] = value
        }
    }
    return durations
}
