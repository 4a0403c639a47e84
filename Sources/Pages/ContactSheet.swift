import Foundation
public import Media

/// The contact sheet of a local run (`media-worker process FILE… --report`): one self-contained
/// HTML page, no network at all (inline CSS, BlurHashes as `data:` URLs, outputs linked relatively,
/// so the folder can be zipped and opened anywhere), a card per input. Every string that comes
/// from a file (names, codec names, messages) is escaped.
public enum ContactSheet {
    /// One input and what became of it.
    public struct Entry: Sendable {
        /// The input's file name, as the user gave it.
        public var name: String
        /// Where its outputs are, relative to the page's folder ("" for the same folder).
        public var folder: String
        public var outcome: Result<ProcessingReport, MediaError>
        /// Wall-clock seconds it took.
        public var seconds: Double
        /// The storyboard's WebVTT text, when one was made: embedded in the page, so its cues load
        /// from a page opened straight from the disk too.
        public var storyboardCues: String?

        public init(
            name: String, folder: String, outcome: Result<ProcessingReport, MediaError>, seconds: Double,
            storyboardCues: String? = nil
        ) {
            self.name = name
            self.folder = folder
            self.outcome = outcome
            self.seconds = seconds
            self.storyboardCues = storyboardCues
        }
    }

    /// The page for `entries`, made in `wallSeconds` in all.
    public static func html(_ entries: [Entry], wallSeconds: Double) -> String {
        let reports = entries.compactMap { try? $0.outcome.get() }
        let bytesIn = reports.reduce(Int64(0)) { $0 + $1.input.sizeBytes }
        let bytesOut = reports.reduce(0) { $0 + $1.outputs.values.reduce(0) { $0 + $1.bytes } }
        let summary = [
            ("inputs", "\(entries.count)"), ("completed", "\(reports.count)"),
            ("failed", "\(entries.count - reports.count)"),
            ("bytes", "\(megabytes(bytesIn)) → \(megabytes(Int64(bytesOut)))"),
            ("wall time", String(format: "%.1f s", wallSeconds)),
        ].map { "<div class=total><b>\(escape($0.1))</b><span>\(escape($0.0))</span></div>" }.joined()
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>media-worker contact sheet</title>
            <style>\(style)</style></head>
            <body><header><h1>media-worker contact sheet</h1><div class=totals>\(summary)</div></header>
            <main>\(entries.map(card).joined(separator: "\n"))</main>
            <script data-sheet>\(scrubbing)</script></body></html>
            """
    }

    private static func card(_ entry: Entry) -> String {
        switch entry.outcome {
        case .failure(let error):
            return """
                <section class="card failed" data-code="\(escape(error.code.rawValue))">
                <h2>\(escape(entry.name))</h2>
                <p class=error><b>\(escape(error.code.rawValue))</b> \(escape(error.message))</p></section>
                """
        case .success(let report):
            return successCard(entry, report)
        }
    }

    private static func successCard(_ entry: Entry, _ report: ProcessingReport) -> String {
        let link = { (file: String) in escape(entry.folder.isEmpty ? file : "\(entry.folder)/\(file)") }
        let element = { (tag: String, file: OutputFile, side: Int, attributes: String) in
            Self.element(tag, file, link: link(file.path), side: side, attributes)
        }
        var media = ""
        if let poster = report.outputs[.poster] {
            media += figure("poster", element("img", poster, 320, "alt=\"poster\""))
            let (width, height) = fitted(poster.width, poster.height, into: 320)
            if let blurhash = poster.blurhash.flatMap({
                BlurHash.png($0, width: 32, height: max(1, 32 * height / width))
            }) {
                media += figure(
                    "BlurHash (before the image loads)",
                    "<img class=blurhash src=\"data:image/png;base64,\(Data(blurhash).base64EncodedString())\" "
                        + "width=\(width) height=\(height) alt=\"blurhash\">")
            }
        }
        if let thumbnail = report.outputs[.thumbnail] {
            media += figure("thumbnail", element("img", thumbnail, 320, "alt=\"thumbnail\""))
        }
        if let preview = report.outputs[.preview] {
            media += figure("preview", element("video", preview, 240, "muted loop autoplay playsinline"))
        }
        if let video = report.outputs[.video] {
            // The storyboard's cues ride on the video as a metadata track: the browser's own
            // WebVTT parser reads them, and the strip under the video scrubs through them.
            let storyboard = entry.storyboardCues.flatMap { cues in
                report.outputs[.storyboard].flatMap { sprite in
                    report.outputs[.storyboardVtt].map { tiles in (cues, sprite, tiles) }
                }
            }
            let track = storyboard.map {
                "<track kind=metadata default src=\"data:text/vtt;base64,\(Data($0.0.utf8).base64EncodedString())\">"
            }
            media += figure(
                "video",
                Self.element(
                    "video", video, link: link(video.path), side: 320, "controls preload=metadata",
                    inside: track ?? ""))
            if let (_, sprite, tiles) = storyboard {
                media += figure(
                    "storyboard: move over the strip to scrub",
                    "<div class=scrub data-sprite=\"\(link(sprite.path))\"><div class=tile style=\"width:\(tiles.width)px;"
                        + "height:\(tiles.height)px\"></div><div class=strip></div></div>")
            }
        }
        return """
            <section class=card data-type="\(escape(report.type.rawValue))">
            <h2>\(escape(entry.name))</h2>
            <div class=media>\(media)</div>
            \(comparison(entry, report))
            </section>
            """
    }

    private static func figure(_ caption: String, _ content: String) -> String {
        "<figure>\(content)<figcaption>\(escape(caption))</figcaption></figure>"
    }

    /// Before → after: container and codecs, display size, duration, bytes and bit rate, how the
    /// video was made, and how long it took.
    private static func comparison(_ entry: Entry, _ report: ProcessingReport) -> String {
        let input = report.input
        let before = [
            "\(input.container): \(input.video.codec)" + (input.audio.map { " + \($0.codec)" } ?? ""),
            "\(input.video.width)x\(input.video.height)"
                + (input.video.rotation != 0 ? " (turned \(input.video.rotation)°)" : "")
                + (input.video.hdr ? ", HDR" : ""),
            input.durationMs.map { String(format: "%.2f s", Double($0) / 1000) } ?? "?",
            "\(megabytes(input.sizeBytes))" + (input.bitRate.map { ", \($0 / 1000) kbit/s" } ?? ""),
        ]
        var rows = [("format", before[0]), ("size", before[1]), ("duration", before[2]), ("bytes", before[3])].map {
            ($0.0, $0.1, "")
        }
        if let video = report.outputs[.video] {
            let durationSeconds = Double(video.durationMs ?? 0) / 1000
            rows[0].2 = "mp4: \(video.videoCodec ?? "?")" + (video.audioCodec.map { " + \($0)" } ?? "")
            rows[1].2 = "\(video.width)x\(video.height)"
            rows[2].2 = String(format: "%.2f s", durationSeconds)
            rows[3].2 =
                "\(megabytes(Int64(video.bytes)))"
                + (durationSeconds > 0 ? ", \(Int(Double(video.bytes) * 8 / durationSeconds / 1000)) kbit/s" : "")
            if let encoder = video.encoder {
                let settings =
                    encoder.path == "remux"
                    ? "remux (streams copied)"
                    : "x264 \(encoder.preset ?? "") CRF \(encoder.crf.map(String.init) ?? "?"), "
                        + "max \(encoder.maxrateKbps.map(String.init) ?? "?") kbit/s"
                        + (encoder.audioKbps.map { ", AAC \($0) kbit/s" } ?? "")
                rows.append(("encoder", "", settings))
            }
        }
        let speed = Double(input.durationMs ?? 0) / 1000 / max(entry.seconds, 0.001)
        rows.append(("time", "", String(format: "%.2f s (%.1f× realtime)", entry.seconds, speed)))
        let body = rows.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td><td>\(escape($0.2))</td></tr>" }
        return "<table><tr><th></th><th>before</th><th>after</th></tr>\(body.joined())</table>"
    }

    /// An output as `<img>` or `<video>` (its class its role) at `link`, in a box of at most `side`
    /// pixels from the size media-worker made, whatever its stream declares; a video holds `inside`.
    private static func element(
        _ tag: String, _ file: OutputFile, link: String, side: Int, _ attributes: String, inside: String = ""
    ) -> String {
        let (width, height) = fitted(file.width, file.height, into: side)
        let opening =
            "<\(tag) class=\(file.role.rawValue) src=\"\(link)\" width=\(width) height=\(height) \(attributes)>"
        return tag == "video" ? opening + inside + "</video>" : opening
    }

    private static func fitted(_ width: Int, _ height: Int, into side: Int) -> (Int, Int) {
        let scale = min(1, Double(side) / Double(max(width, height, 1)))
        return (max(1, Int(Double(width) * scale)), max(1, Int(Double(height) * scale)))
    }

    private static func megabytes(_ bytes: Int64) -> String {
        bytes >= 1 << 20 ? String(format: "%.1f MB", Double(bytes) / 1_048_576) : "\(bytes / 1024) KB"
    }

    private static let style = """
        body{font:14px system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
        header{background:#1d2633;color:#fff;padding:16px 24px}h1{margin:0 0 8px;font-size:20px}
        .totals{display:flex;gap:24px}.total b{display:block;font-size:18px}.total span{opacity:.7}
        main{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px;padding:16px}
        .card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 3px #0002}
        .card h2{font-size:15px;margin:0 0 8px;word-break:break-all}
        .media{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
        figure{margin:0}figcaption{font-size:11px;color:#666}img,video{display:block;background:#ddd;max-width:100%;object-fit:contain}
        table{border-collapse:collapse;margin-top:8px;width:100%}th,td{text-align:left;padding:2px 8px;border-bottom:1px solid #eee}
        .failed{border-left:6px solid #c0392b}.error{color:#c0392b}
        .scrub .tile{background:#ddd no-repeat}.scrub .strip{height:14px;margin-top:4px;background:#1d2633;border-radius:7px;cursor:ew-resize}
        """

    /// Shows, over each storyboard's strip, the tile of the cue at the pointer's time.
    private static let scrubbing = """
        for (const scrub of document.querySelectorAll('.scrub')) {
          const video = scrub.closest('.card').querySelector('video.video');
          const track = video.textTracks[0];
          track.mode = 'hidden';
          const tile = scrub.querySelector('.tile'), strip = scrub.querySelector('.strip');
          const show = time => {
            const cues = [...(track.cues || [])];
            const cue = cues.find(c => c.startTime <= time && time < c.endTime) || cues[cues.length - 1];
            if (!cue) return;
            const [x, y] = cue.text.split('#xywh=')[1].split(',').map(Number);
            tile.style.backgroundImage = 'url("' + scrub.dataset.sprite + '")';
            tile.style.backgroundPosition = -x + 'px ' + -y + 'px';
            tile.dataset.cue = cue.startTime;
          };
          strip.addEventListener('mousemove', event => {
            const box = strip.getBoundingClientRect();
            const last = [...(track.cues || [])].pop();
            show((event.clientX - box.left) / box.width * (video.duration || (last ? last.endTime : 0)));
          });
          video.querySelector('track').addEventListener('load', () => show(0));
        }
        """
}

/// `text` made safe inside HTML text and attribute values.
public func escapeHTML(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        case "'": escaped += "&#39;"
        default: escaped.append(character)
        }
    }
    return escaped
}

private func escape(_ text: String) -> String { escapeHTML(text) }
