import CLinux
public import Foundation
import JobVocabulary

/// Headless Chromium (Debian's `chromium`), the judge of the pages: it loads a page, runs its
/// scripts for a while of virtual time, and hands back the DOM, or a screenshot.
public enum Browser {
    public static let executable: URL? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .map { URL(fileURLWithPath: $0) }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    static func arguments(_ extra: [String], budget: Int) -> [String] {
        [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
            "--allow-file-access-from-files", "--autoplay-policy=no-user-gesture-required",
            "--virtual-time-budget=\(budget)",
        ] + extra
    }

    /// The page's DOM after `budget` ms of virtual time.
    public static func dom(_ url: String, budget: Int = 8000) async throws -> String {
        guard let executable else { throw TestSupportError("chromium is not installed") }
        let result = try await runProgramAsync(
            executable, arguments(["--dump-dom", url], budget: budget), timeout: 120)
        return String(decoding: result.stdout, as: UTF8.self)
    }

    /// A screenshot of the page after `budget` ms of virtual time, into `file`.
    public static func screenshot(
        _ url: String, to file: URL, width: Int = 1300, height: Int = 1800, budget: Int = 5000
    )
        async throws
    {
        guard let executable else { throw TestSupportError("chromium is not installed") }
        _ = try await runProgramAsync(
            executable,
            arguments(["--window-size=\(width),\(height)", "--screenshot=\(file.path)", url], budget: budget),
            timeout: 120)
    }

    /// The text of the first element with id `id` in `dom` (a harness page's result).
    public static func text(ofElement id: String, in dom: String) -> String? {
        guard let start = dom.range(of: "id=\"\(id)\">"), let end = dom[start.upperBound...].range(of: "</") else {
            return nil
        }
        return String(dom[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
/// messages ending in NUL on descriptors 3 and 4), for checks that need real time to pass while a
/// page runs (a page that redraws itself every few seconds).
public final class DevTools {
    private let pid: pid_t
    private let input: Int32
    private let output: Int32
    private var nextId = 1
    private var pending = Data()

    public init() throws {
        guard let executable = Browser.executable else { throw TestSupportError("chromium is not installed") }
        var toChrome: [Int32] = [0, 0]
        var fromChrome: [Int32] = [0, 0]
        guard pipe(&toChrome) == 0, pipe(&fromChrome) == 0 else { throw TestSupportError("pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, toChrome[0], 3)
        posix_spawn_file_actions_adddup2(&actions, fromChrome[1], 4)
        let arguments =
            [executable.path]
            + Browser.arguments(["--remote-debugging-pipe", "about:blank"], budget: 0)
            .filter { !$0.hasPrefix("--virtual-time-budget") }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        clinux_spawn_reset_signals(&attributes)
        var pid: pid_t = 0
        let spawned = withCStringArray(arguments) { argv in
            posix_spawn(&pid, executable.path, &actions, &attributes, argv, environ)
        }
        close(toChrome[0])
        close(fromChrome[1])
        guard spawned == 0 else { throw TestSupportError("could not start chromium: \(spawned)") }
        self.pid = pid
        input = toChrome[1]
        output = fromChrome[0]
    }

    deinit {
        close(input)
        close(output)
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// Sends one command and returns its `result` (events in between are skipped).
    @discardableResult
    public func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil) throws -> [String: Any] {
        let id = nextId
        nextId += 1
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var data = try JSONSerialization.data(withJSONObject: message)
        data.append(0)
        _ = data.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
        while true {
            let reply = try readMessage()
            guard reply["id"] as? Int == id else { continue }
            if let error = reply["error"] { throw TestSupportError("\(method): \(error)") }
            return reply["result"] as? [String: Any] ?? [:]
        }
    }

    /// Opens `url` in a new page; returns the session to talk to it.
    public func open(_ url: String) throws -> String {
        let target = try send("Target.createTarget", ["url": url])["targetId"] as? String ?? ""
        return try send("Target.attachToTarget", ["targetId": target, "flatten": true])["sessionId"] as? String ?? ""
    }

    /// The value of `expression` in the page (a promise is awaited).
    public func evaluate(_ expression: String, session: String) throws -> Any? {
        let result = try send(
            "Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true],
            session: session)
        return (result["result"] as? [String: Any])?["value"]
    }

    private func readMessage() throws -> [String: Any] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = pending.firstIndex(of: 0) {
                let message = pending[pending.startIndex..<end]
                pending.removeSubrange(pending.startIndex...end)
                return (try JSONSerialization.jsonObject(with: Data(message)) as? [String: Any]) ?? [:]
            }
            // A browser that stops answering fails its test instead of holding the run.
            var ready = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 60_000) > 0 else { throw TestSupportError("chromium did not answer for 60 s") }
            let count = read(output, &chunk, chunk.count)
            guard count > 0 else { throw TestSupportError("chromium closed its pipe") }
            pending.append(contentsOf: chunk[0..<count])
        }
    }
}
