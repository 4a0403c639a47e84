import Foundation
import Media

/// Readable summaries of command results, for people at a terminal.
enum Summary {
    static func describe(_ info: MediaInfo, file: String) -> String {
        let video = info.video
        var lines = [
            "file        \(file.terminalSafe)",
            "container   \(info.container), \(info.durationMs.map(seconds) ?? "unknown duration"), "
                + "\(bytes(info.sizeBytes))\(info.bitRate.map { ", \(kbps($0))" } ?? "")",
            "video       \(video.codec)\(video.profile.map { " (\($0))" } ?? ""), \(video.width)x\(video.height)"
                + (video.rotation != 0
                    ? " (stored \(video.codedWidth)x\(video.codedHeight), rotated \(video.rotation)°)" : "")
                + ", \(video.frameRate.map { String(format: "%.3g fps", $0) } ?? "unknown rate")"
                + (video.variableFrameRate ? " (variable)" : ""),
            "pixels      \(video.pixelFormat ?? "?"), \(video.bitDepth.map { "\($0)-bit" } ?? "?"), "
                + "\(video.colorPrimaries ?? "untagged")/\(video.colorTransfer ?? "untagged")"
                + (video.hdr ? " (HDR)" : ""),
            "audio       "
                + (info.audio.map { "\($0.codec), \($0.channels) ch, \($0.sampleRate) Hz" } ?? "none"),
        ]
        if let created = info.creationTime { lines.append("created     \(created.terminalSafe)") }
        if let location = info.location { lines.append("location    \(location.terminalSafe)") }
        return lines.joined(separator: "\n")
    }

    static func describe(_ report: ProcessingReport, file: String, outputDirectory: String) -> String {
        var lines = [describe(report.input, file: file), ""]
        for output in report.outputs.values.sorted(by: { $0.role < $1.role }) {
            let role = output.role.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)
            let path = (outputDirectory as NSString).appendingPathComponent(output.path)
            let frame = output.timeMs.map { ", frame at \(seconds($0))" } ?? ""
            lines.append(
                "\(role) \(path.terminalSafe)  \(output.width)x\(output.height), \(bytes(Int64(output.bytes)))\(frame)")
        }
        if let blurhash = report.stills.first?.blurhash { lines.append("blurhash    \(blurhash)") }
        lines.append("\(report.type.rawValue) done in \(seconds(report.elapsedMs))")
        return lines.joined(separator: "\n")
    }

    private static func seconds(_ milliseconds: Int) -> String { String(format: "%.2f s", Double(milliseconds) / 1000) }

    static func bytes(_ count: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: count, countStyle: .file)
    }

    private static func kbps(_ bitsPerSecond: Int64) -> String { "\(bitsPerSecond / 1000) kbit/s" }
}

extension String {
    /// The text with control characters (the escape sequences that retitle or clear a terminal
    /// among them) and bidirectional overrides written out as `\u{1B}`, so a file name or a tag
    /// from an upload prints as what it is. JSON output and pages escape on their own.
    var terminalSafe: String {
        unicodeScalars.map { scalar in
            let bidi = (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
            guard scalar.properties.generalCategory == .control || bidi else { return String(scalar) }
            return "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
        }.joined()
    }
}
