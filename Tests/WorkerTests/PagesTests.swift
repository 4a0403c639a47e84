import Foundation
import JobVocabulary
import TestSupport
import Testing

/// A harness page beside the page under test: it frames it, waits until every image and video
/// has loaded or failed, and writes what it found as JSON into `#result` for `--dump-dom`.
private let harness = """
    <!doctype html><html><body>
    <iframe id="page" src="PAGE" style="width:1300px;height:3000px"></iframe><pre id="result">pending</pre>
    <script>
    const frame = document.getElementById('page');
    const settled = (element, events) => new Promise(done => {
      for (const name of events) element.addEventListener(name, done, {once: true});
    });
    frame.onload = async () => {
      const page = frame.contentDocument;
      const images = [...page.images], videos = [...page.querySelectorAll('video')];
      await Promise.all(images.filter(i => !i.complete).map(i => settled(i, ['load', 'error'])));
      await Promise.all(videos.filter(v => v.readyState < 1).map(v => settled(v, ['loadedmetadata', 'error'])));
      document.getElementById('result').textContent = JSON.stringify({
        images: images.map(i => ({src: i.getAttribute('src').slice(0, 40), naturalWidth: i.naturalWidth})),
        videos: videos.map(v => ({src: v.getAttribute('src'), readyState: v.readyState, duration: v.duration})),
        headings: [...page.querySelectorAll('h2')].map(h => h.textContent),
        failedCards: [...page.querySelectorAll('.card.failed')].map(c => c.dataset.code),
        injected: page.querySelectorAll('img[src="x"], script:not(:empty):not([data-sheet])').length,
      });
    };
    </script></body></html>
    """

/// Waits for the storyboard track of the contact sheet in the frame to load, then reports its
/// cues as the browser's WebVTT parser read them, and the tile shown with the pointer halfway
/// along the strip.
private let storyboardHarness = """
    <!doctype html><html><body>
    <iframe id="page" src="PAGE" style="width:1300px;height:2000px"></iframe><pre id="result">pending</pre>
    <script>
    const frame = document.getElementById('page');
    frame.onload = async () => {
      const page = frame.contentDocument;
      const track = page.querySelector('video.video track');
      for (let i = 0; i < 100 && track.readyState !== 2; i++) await new Promise(done => setTimeout(done, 100));
      const cues = [...track.track.cues].map(c => ({start: c.startTime, end: c.endTime, text: c.text}));
      const strip = page.querySelector('.scrub .strip'), box = strip.getBoundingClientRect();
      strip.dispatchEvent(new MouseEvent('mousemove', {clientX: box.left + box.width * 0.55, clientY: box.top + 2}));
      const tile = page.querySelector('.scrub .tile');
      const sprite = new Image();
      sprite.src = page.querySelector('.scrub').dataset.sprite;
      await new Promise(done => { sprite.onload = sprite.onerror = done; });
      document.getElementById('result').textContent = JSON.stringify({
        readyState: track.readyState, cues, shownCue: Number(tile.dataset.cue),
        position: tile.style.backgroundPosition, spriteWidth: sprite.naturalWidth,
      });
    };
    </script></body></html>
    """

// One at a time: each test runs a Chromium beside media work, and three at once on two cores slowed
// the status page's redraws until a 17 s job showed only its first progress value.
@Suite("Pages people look at, checked in a real browser", .serialized, .heavy, .enabled(if: Browser.executable != nil))
struct PagesTests {
    /// `process … --report`: every image decodes, every video has its metadata and the right
    /// duration, the failed input is an error card, a hostile file name is text.
    @Test func contactSheetLoadsOfflineAndEscapesNames() async throws {
        let folder = try Fixtures.temporaryDirectory("sheet")
        let hostile = folder.appendingPathComponent("<img src=x onerror=alert(1)>.mp4")
        try FileManager.default.copyItem(atPath: Fixtures.path("no_audio.mp4"), toPath: hostile.path)
        let out = folder.appendingPathComponent("out")
        let inputs = [
            Fixtures.path("portrait_rot90.mp4"), Fixtures.path("hdr_hevc_pq_10bit.mp4"), Fixtures.path("truncated.mp4"),
            hostile.path,
        ]
        let result = try await runProgramAsync(
            Fixtures.executable, ["process"] + inputs + ["--out", out.path, "--report", "--json"])
        #expect(result.status == 1, "the truncated input fails")
        // Each successful input's report, by folder: what the page's videos must last.
        var durations: [String: Double] = [:]
        for line in result.stdout.split(separator: UInt8(ascii: "\n")) {
            guard let report = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let outputs = report["outputs"] as? [String: [String: Any]]
            else { continue }
            for output in outputs.values where output["durationMs"] != nil {
                durations[output["path"] as! String, default: 0] = (output["durationMs"] as! Double) / 1000
            }
        }
        let page = out.appendingPathComponent("report.html")
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://"), "the page fetches nothing")
        #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;.mp4") && !html.contains("<img src=x"))

        try harness.replacingOccurrences(of: "PAGE", with: "report.html")
            .write(to: out.appendingPathComponent("harness.html"), atomically: true, encoding: .utf8)
        let dom = try await Browser.dom(out.appendingPathComponent("harness.html").absoluteString)
        let found = try #require(
            try JSONSerialization.jsonObject(with: Data((Browser.text(ofElement: "result", in: dom) ?? "").utf8))
                as? [String: Any], "\(dom.suffix(500))")
        let images = try #require(found["images"] as? [[String: Any]])
        #expect(images.count == 9, "3 inputs × poster, BlurHash, thumbnail")
        #expect(images.allSatisfy { ($0["naturalWidth"] as? Int ?? 0) > 0 }, "\(images)")
        let videos = try #require(found["videos"] as? [[String: Any]])
        #expect(videos.count == 6)
        for video in videos {
            let source = try #require(video["src"] as? String)
            #expect((video["readyState"] as? Int ?? 0) >= 1, "\(source) has no metadata")
            let expected = try #require(
                durations[URL(fileURLWithPath: source).lastPathComponent] ?? durations.first?.value)
            #expect(abs((video["duration"] as? Double ?? 0) - expected) < 0.1 || source.contains("preview"), "\(video)")
        }
        #expect(found["failedCards"] as? [String] == ["corrupt_input"])
        #expect((found["headings"] as? [String])?.contains("<img src=x onerror=alert(1)>.mp4") == true)
        #expect(found["injected"] as? Int == 0)
        try await Browser.screenshot(page.absoluteString, to: folder.appendingPathComponent("report.png"))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.png").path))
    }

    /// The storyboard on the contact sheet: Chromium's WebVTT parser reads every cue (a `<track>`
    /// of kind metadata on the video), the sprite decodes, and pointing halfway along the strip
    /// shows the tile of the cue at that time.
    @Test func contactSheetScrubsTheStoryboard() async throws {
        let out = try Fixtures.temporaryDirectory("scrub")
        let result = try await runProgramAsync(
            Fixtures.executable,
            [
                "process", Fixtures.path("long_hevc_720p_20s.mp4"), "--out", out.path, "--type", "FULL_PROCESSING",
                "--storyboard-after", "10", "--report",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        try storyboardHarness.replacingOccurrences(of: "PAGE", with: "report.html")
            .write(to: out.appendingPathComponent("harness.html"), atomically: true, encoding: .utf8)
        let dom = try await Browser.dom(out.appendingPathComponent("harness.html").absoluteString)
        let found = try #require(
            try JSONSerialization.jsonObject(with: Data((Browser.text(ofElement: "result", in: dom) ?? "").utf8))
                as? [String: Any], "\(dom.suffix(500))")
        #expect(found["readyState"] as? Int == 2, "the track loaded")
        let cues = try #require(found["cues"] as? [[String: Any]])
        #expect(cues.count == 10)
        #expect(cues.first?["start"] as? Double == 0 && cues.last?["end"] as? Double == 20)
        #expect(cues.last?["text"] as? String == "storyboard.webp#xywh=1440,0,160,90")
        // 55 % of 20 s is 11 s: the cue from 10 s, the sixth tile.
        #expect(found["shownCue"] as? Double == 10 && found["position"] as? String == "-800px 0px", "\(found)")
        #expect(found["spriteWidth"] as? Int == 1600)
    }

    /// `/status` while a transcode runs: the page redraws from `/status.json` and the job's
    /// progress bar moves between two redraws.
    @Test func statusPageShowsTheQueueMoving() async throws {
        let deployment = try await Deployment.make()
        // An operator's pause, its reason shown as text (markup included).
        let pause = try await deployment.run("pause", "PREVIEW", "--reason", "<b>drill</b>")
        #expect(pause.status == 0 && String(decoding: pause.stdout, as: UTF8.self).hasPrefix("PREVIEW\tpaused since"))
        // The failure comes first, so the page shows it beside the running job.
        let failing = try await deployment.enqueue("truncated.mp4", type: "METADATA")
        let port = try freePort()
        let server = try BackgroundProgram(
            Fixtures.executable, ["serve"],
            // A byte budget the encode misses: x264's second pass makes it again, twice the
            // work, long enough to watch however quickly this machine encodes.
            environment: deployment.environment.merging([
                "MEDIA_WORKER_METRICS_ADDR": "127.0.0.1:\(port)", "MEDIA_WORKER_MAX_BYTES_ULTRA": "1M",
            ]) { $1 },
            log: deployment.scratch.appendingPathComponent("serve.log"))
        defer { server.signal(SIGKILL) }
        #expect(
            await eventually(timeout: 60) {
                let row = try? await deployment.job(failing)
                return (try? row?.text("status")) == JobStatus.failed.rawValue
            })
        // The page is open before the long job is sent, so its whole run is watched however
        // quickly this machine encodes. ULTRA keeps 720p with x264's `medium` preset: a few seconds.
        let url = "http://127.0.0.1:\(port)/status"
        let (opened, pageIsOpen) = AsyncStream.makeStream(of: Void.self)
        let watcher = Task {
            defer { pageIsOpen.finish() }
            return try await onOwnThread {
                try Self.watchProgress(of: "long_hevc_720p_20s.mp4", at: url) { pageIsOpen.yield(()) }
            }
        }
        for await _ in opened { break }
        _ = try await deployment.enqueue("long_hevc_720p_20s.mp4", type: "COMPRESSION", profile: "ULTRA")
        let (refreshes, history, text, timeLeft) = try await watcher.value
        // The running job's time left, from its own pace, once it is known.
        #expect(timeLeft.wholeMatch(of: /about \d+ (s|min) left/) != nil, "\(timeLeft)")
        #expect(refreshes >= 2, "redrawn \(refreshes) times")
        let values = history.split(separator: ",").compactMap { Int($0) }
        let serveLog = try? String(
            contentsOf: deployment.scratch.appendingPathComponent("serve.log"), encoding: .utf8)
        #expect(
            Set(values).count >= 2 && values == values.sorted(),
            "the bar did not move: \(values); the daemon said:\n\(serveLog?.suffix(3000) ?? "-")")
        #expect(text.contains("long_hevc_720p_20s.mp4"))
        #expect(text.contains("truncated.mp4") && text.contains("corrupt_input"), "\(text)")
        #expect(text.contains("PREVIEW paused since") && text.contains("<b>drill</b>"), "\(text)")
        // The running job's lane, and its uploader holding every running slot.
        #expect(text.contains("\tencode\t") && text.contains("1\t1\t100 %"), "\(text)")
        let status = try await fetch("http://127.0.0.1:\(port)/status.json")
        #expect(status.0 == 200 && status.1.contains(#""running""#))
        try await Browser.screenshot(
            "http://127.0.0.1:\(port)/status", to: deployment.scratch.appendingPathComponent("status.png"),
            width: 1200, height: 900)
    }

    /// Opens `url` in Chromium, calls `opened`, and samples the progress history of the running
    /// job whose row names `file` once a second until it holds two different values and shows the
    /// time left (or 90 seconds pass: an encode runs at nice 19, and the rest of the suite shares
    /// the machine).
    private static func watchProgress(
        of file: String, at url: String, opened: () -> Void
    ) throws -> (Int, String, String, String) {
        let browser = try DevTools()
        let page = try browser.open(url)
        opened()
        var history = ""
        var timeLeft = ""
        for _ in 0..<90 {
            Thread.sleep(forTimeInterval: 1)
            let row = "[...document.querySelectorAll('[data-job]')].find(row => row.textContent.includes('\(file)'))"
            let seen = try browser.evaluate("\(row)?.dataset.progressHistory || ''", session: page) as? String ?? ""
            // The longest history seen: the row goes when the job ends.
            if seen.count > history.count { history = seen }
            if timeLeft.isEmpty {
                timeLeft =
                    try browser.evaluate("\(row)?.querySelector('.left')?.textContent || ''", session: page)
                    as? String ?? ""
            }
            if Set(history.split(separator: ",")).count >= 2 && !timeLeft.isEmpty { break }
        }
        let refreshes = try browser.evaluate("Number(document.body.dataset.refreshes)", session: page) as? Int ?? 0
        let text = try browser.evaluate("document.body.innerText", session: page) as? String ?? ""
        return (refreshes, history, text, timeLeft)
    }
}
