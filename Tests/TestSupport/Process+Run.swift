public import CLinux
public import Foundation
import JobVocabulary

/// The result of running a program to completion.
public struct ProgramResult: Sendable {
    public let status: Int32
    public let stdout: Data
    public let stderr: String
    /// The program's peak resident memory, in bytes (`wait4`'s `ru_maxrss`).
    public let peakMemoryBytes: Int
    /// CPU time the program used, user and system, its children's excluded (`wait4`'s rusage).
    public var cpuSeconds: Double = 0
}

/// Runs `executable` with `arguments`, waiting for it to exit (at most `timeout` seconds, then it
/// is killed). Uses posix_spawn and wait4 (Foundation's Process can miss exits when many run at
/// once); output goes through temporary files, so a chatty child never blocks on a full pipe. With
/// `detached`, output is discarded: for programs that leave a daemon behind holding it open
/// (`pg_ctl start`).
public func runProgram(
    _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, detached: Bool = false,
    timeout: Double = 300
) throws -> ProgramResult {
    let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("stdout-\(UUID().uuidString)")
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)")
    defer {
        try? FileManager.default.removeItem(at: outputFile)
        try? FileManager.default.removeItem(at: errorFile)
    }
    let pid = try spawn(
        executable, arguments, environment: environment ?? ProcessInfo.processInfo.environment,
        stdout: detached ? "/dev/null" : outputFile.path, stderr: detached ? "/dev/null" : errorFile.path,
        flags: O_WRONLY | O_CREAT | O_TRUNC)
    var status: Int32 = 0
    var usage = rusage()
    // A program that hangs must fail its test, not the whole run.
    let deadline = ContinuousClock.now + .seconds(timeout)
    while true {
        let reaped = wait4(pid, &status, WNOHANG, &usage)
        if reaped == pid || (reaped < 0 && errno != EINTR) { break }
        if ContinuousClock.now > deadline {
            kill(pid, SIGKILL)
            while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
            break
        }
        usleep(5_000)
    }
    let output = detached ? Data() : (try? Data(contentsOf: outputFile)) ?? Data()
    let errors = detached ? "" : (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    var result = ProgramResult(
        status: exitStatus, stdout: output, stderr: errors, peakMemoryBytes: Int(usage.ru_maxrss) * 1024)
    result.cpuSeconds =
        Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
    return result
}

/// `ffprobe`, the independent judge, when it is installed.
public enum FFprobe {
    public static let executable: URL? = ["/usr/bin/ffprobe", "/usr/local/bin/ffprobe"]
        .map { URL(fileURLWithPath: $0) }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    /// `ffprobe -show_format -show_streams` as parsed JSON, or nil without ffprobe.
    public static func describe(_ path: String) throws -> [String: Any]? {
        guard let executable else { return nil }
        let result = try runProgram(
            executable, ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", path])
        return try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
    }

    /// The RMS level, in dBFS, of `path`'s sound from `from` to `to` seconds of its audio stream
    /// (`-inf` for silence), by FFmpeg's `astats` filter.
    public static func audioLevel(_ path: String, from: Double, to: Double) throws -> Double? {
        guard let executable else { return nil }
        let graph = "amovie=\(path),atrim=\(from):\(to),astats=metadata=1:reset=0"
        let result = try runProgram(
            executable,
            [
                "-v", "error", "-f", "lavfi", graph, "-show_entries", "frame_tags=lavfi.astats.Overall.RMS_level",
                "-of", "csv=p=0",
            ])
        let last = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").last
        return last.map { $0.trimmingCharacters(in: .whitespaces) == "-inf" ? -.infinity : Double($0) ?? .nan }
    }

    /// Each stream's duration in seconds by its type (`video`, `audio`), as ffprobe reads it.
    public static func streamDurations(_ path: String) throws -> [String: Double]? {
        guard let streams = try describe(path)?["streams"] as? [[String: Any]] else { return nil }
        return Dictionary(
            streams.compactMap { stream in
                guard let type = stream["codec_type"] as? String,
                    let duration = (stream["duration"] as? String).flatMap(Double.init)
                else { return nil }
                return (type, duration)
            }, uniquingKeysWith: { first, _ in first })
    }

    /// The MD5 of every packet's payload in stream `stream` (`v:0`, `a:0`) of `path`, in order.
    public static func packetHashes(_ path: String, stream: String) throws -> [String]? {
        guard let executable else { return nil }
        let result = try runProgram(
            executable,
            [
                "-v", "error", "-select_streams", stream, "-show_data_hash", "MD5", "-show_entries", "packet=data_hash",
                "-of", "csv=p=0", path,
            ])
        return String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// How many frames the first video stream of `path` decodes to (ffprobe decodes them all), and
    /// whether the decoder complained about anything (its errors, at level `error`).
    public static func decodedVideoFrames(_ path: String) throws -> (frames: Int, errors: String)? {
        guard let executable else { return nil }
        let result = try runProgram(
            executable,
            [
                "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames",
                "-of", "csv=p=0", path,
            ])
        // A rotated stream's line ends in an empty side-data column: "60,".
        let line = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return (line.split(separator: ",").first.flatMap { Int($0) } ?? 0, result.stderr)
    }

    /// The integrated loudness (LUFS) and true peak (dBTP) of the audio of `path`, by FFmpeg's
    /// `ebur128` filter (the EBU R128 meter) run through ffprobe's lavfi input; nil without
    /// ffprobe.
    public static func loudness(_ path: String) throws -> (integrated: Double, truePeak: Double)? {
        guard let executable else { return nil }
        let result = try runProgram(
            executable,
            [
                "-v", "error", "-f", "lavfi", "-i", "amovie=\(path),ebur128=metadata=1:peak=true",
                "-show_entries", "frame_tags=lavfi.r128.I,lavfi.r128.true_peak", "-of", "csv=p=0",
            ])
        let rows = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n")
            .map { $0.split(separator: ",").compactMap { Double($0) } }.filter { $0.count == 2 }
        guard let last = rows.last, let peak = rows.map({ $0[1] }).max() else { return nil }
        return (last[0], 20 * log10(peak))
    }

    /// How many packets the first video stream of `path` has, counted by reading them all.
    public static func videoPacketCount(_ path: String) throws -> Int? {
        guard let executable else { return nil }
        let result = try runProgram(
            executable,
            [
                "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets",
                "-of", "csv=p=0", path,
            ])
        return Int(String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// A program started in the background (posix_spawn), for tests that signal it mid-run.
public struct BackgroundProgram: Sendable {
    public let pid: pid_t
    /// Where its output goes.
    public let log: URL

    /// Its output so far (for a failing test's message).
    public var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "(no output at \(log.path))" }

    /// Starts `executable`; its output goes to `log`.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String], log: URL) throws {
        self.log = log
        pid = try spawn(
            executable, arguments, environment: environment, stdout: log.path, stderr: log.path,
            flags: O_WRONLY | O_CREAT | O_APPEND)
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the program to exit (at most `timeout` seconds); returns its exit status, or nil
    /// if it was killed by a signal or is still running.
    public func wait(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while Date() < deadline {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// The children of `parent` whose command line contains `text` (a daemon's `run-job`).
    public static func children(of parent: pid_t, running text: String) -> [pid_t] {
        processes(matching: text).filter { status(of: $0)?.parent == parent }
    }

    /// Processes whose command line contains `text` (to find a job's child by its folder); zombies
    /// left out.
    public static func processes(matching text: String) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry),
                let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                String(decoding: cmdline, as: UTF8.self).contains(text),
                let status = status(of: pid), status.state != "Z"
            else { return nil }
            return pid
        }
    }

    /// A process's state letter and parent, from `/proc/PID/stat` (nil once it is gone).
    private static func status(of pid: pid_t) -> (state: Substring, parent: pid_t)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return nil }
        // After the command in parentheses: state, then the parent's pid.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 1, let parent = pid_t(fields[1]) else { return nil }
        return (fields[0], parent)
    }
}

/// Runs `body` on a thread of its own and waits for it without holding one of Swift's few
/// cooperative threads (one per core): for work that blocks (a program, a browser, a polling loop),
/// so that other tests' tasks, and the daemons some of them run in this process, keep running.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// `runProgram` on a thread of its own (see `onOwnThread`).
public func runProgramAsync(
    _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, timeout: Double = 300
) async throws -> ProgramResult {
    try await onOwnThread { try runProgram(executable, arguments, environment: environment, timeout: timeout) }
}

/// Starts `executable` with stdin from /dev/null and stdout/stderr opened at the given paths with
/// `flags`; returns its pid.
private func spawn(
    _ executable: URL, _ arguments: [String], environment: [String: String], stdout: String, stderr: String,
    flags: Int32
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, flags, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, flags, 0o600)
    // The test runner blocks or ignores signals of its own; what it starts gets the defaults, so
    // SIGTERM stops a PgBouncer or a daemon under test.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    clinux_spawn_reset_signals(&attributes)
    var pid: pid_t = 0
    let spawned = withCStringArray([executable.path] + arguments) { argv in
        withCStringArray(environment.map { "\($0.key)=\($0.value)" }) { envp in
            posix_spawn(&pid, executable.path, &actions, &attributes, argv, envp)
        }
    }
    guard spawned == 0 else { throw TestSupportError("could not start \(executable.path): \(spawned)") }
    return pid
}
