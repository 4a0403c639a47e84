import CLinux
import Dispatch
import Foundation
import JobVocabulary
import Logging

/// Runs a job's child (this same binary, `run-job`) with an environment of our choosing (no
/// database URL, no storage credentials) and no descriptor of ours but the pipe it writes its
/// lines to, reading those lines. Spawned with `posix_spawn` and reaped by a blocking `waitpid`
/// on a thread of its own: no process-wide SIGCHLD machinery that could miss an exit when many
/// children come and go at once.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `pid` is written once before any other thread sees it; `stopReason` is only
    // touched under `lock`.
    enum Exit: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
        case stopped
    }

    private let executable: String
    private let arguments: [String]
    private let environment: [String]
    private let lock = NSLock()
    private var pid: pid_t = 0
    private var stopReason: Exit?
    private var timer: (any DispatchSourceTimer)?
    private var deadline: DispatchTime = .distantFuture

    /// A child running `executable` with `arguments`, its `TMPDIR` being `directory`.
    init(executable: URL, arguments: [String], directory: URL) {
        self.executable = executable.path
        self.arguments = arguments
        // Only what a decoder needs: nothing of the daemon's secrets. No Swift backtracer either:
        // it would start another program (which the sandbox refuses) and wait, instead of dying.
        environment = [
            "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TMPDIR=\(directory.path)", "SWIFT_BACKTRACE=enable=no",
        ]
    }

    /// Starts the child and waits for it, handing each line it writes to `onLine`. Kills it after
    /// `timeout` seconds (or sooner, see `shortenDeadline`).
    func run(timeout: Double, onLine: @escaping @Sendable (Data) -> Void) async throws -> Exit {
        // The child is spawned by the thread that then reads and reaps it: the kernel's parent
        // death signal (the child asks for SIGKILL when its parent goes) follows the spawning
        // thread, not the process, and a pool thread may be retired while the child runs.
        let status: Result<Int32, ChildError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                let child: (pid: pid_t, readEnd: Int32)
                switch Result(catching: { () throws(ChildError) in try spawn() }) {
                case .success(let spawned): child = spawned
                case .failure(let error):
                    continuation.resume(returning: .failure(error))
                    return
                }
                armTimer(timeout: timeout)
                Self.readLines(from: child.readEnd, onLine: onLine)
                close(child.readEnd)
                var status: Int32 = 0
                while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: .success(status))
            }
        }
        lock.withLock { timer?.cancel() }
        let exitStatus = try status.get()
        if let reason = lock.withLock({ stopReason }) { return reason }
        let signal = exitStatus & 0x7f
        return signal == 0 ? .exited((exitStatus >> 8) & 0xff) : .signalled(signal)
    }

    /// Starts the child with stdout on a new pipe; returns its pid and the pipe's read end.
    private func spawn() throws(ChildError) -> (pid: pid_t, readEnd: Int32) {
        var descriptors: [Int32] = [0, 0]
        guard clinux_pipe_cloexec(&descriptors) == 0 else { throw ChildError.spawn(String(cString: strerror(errno))) }
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // Nothing else of the daemon's: not its database sockets, not the metrics listener.
        clinux_spawn_close_from(&actions, 3)
        // Nor its signal state: the daemon ignores SIGTERM and SIGINT to handle them itself.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        clinux_spawn_reset_signals(&attributes)
        var spawnedPid: pid_t = 0
        let spawned = withCStringArray([executable] + arguments) { argv in
            withCStringArray(environment) { envp in
                posix_spawn(&spawnedPid, executable, &actions, &attributes, argv, envp)
            }
        }
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            throw ChildError.spawn(String(cString: strerror(spawned)))
        }
        let child = spawnedPid
        lock.withLock { pid = child }
        if lock.withLock({ stopReason != nil }) { kill(child, SIGKILL) }
        return (child, readEnd)
    }

    /// Kills the child once `timeout` seconds have passed (or sooner, see `shortenDeadline`).
    private func armTimer(timeout: Double) {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.setEventHandler { [self] in stop(.timedOut) }
        lock.withLock {
            self.timer = timer
            deadline = .now() + timeout
            timer.schedule(deadline: deadline)
        }
        timer.resume()
    }

    /// Kills the child (SIGKILL: a decoder stuck in a loop ignores gentler signals).
    func stop() { stop(.stopped) }

    /// Brings the deadline forward to `seconds` from now, if that is sooner (once the input is
    /// probed, its budget is known).
    func shortenDeadline(to seconds: Double) {
        lock.withLock {
            let wanted = DispatchTime.now() + seconds
            guard wanted < deadline, let timer else { return }
            deadline = wanted
            timer.schedule(deadline: wanted)
        }
    }

    private func stop(_ reason: Exit) {
        let target = lock.withLock {
            if stopReason == nil { stopReason = reason }
            return pid
        }
        if target > 0 { kill(target, SIGKILL) }
    }

    /// The longest line a child may write (its report is a few kilobytes): a child gone wrong on
    /// a hostile upload cannot make the daemon hold more than this of its output.
    static let longestLine = 4 << 20

    /// Reads lines until the child closes its stdout (it exits, or is killed). A line longer than
    /// `longestLine` is dropped, up to its newline, unread.
    private static func readLines(from descriptor: Int32, onLine: (Data) -> Void) {
        var buffer = Data()
        var dropping = false
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            var start = 0
            while let newline = chunk[start..<count].firstIndex(of: UInt8(ascii: "\n")) {
                if !dropping {
                    buffer.append(contentsOf: chunk[start..<newline])
                    onLine(buffer)
                }
                buffer.removeAll(keepingCapacity: true)
                dropping = false
                start = newline + 1
            }
            if !dropping { buffer.append(contentsOf: chunk[start..<count]) }
            if buffer.count > longestLine {
                buffer = Data()
                dropping = true
            }
        }
    }
}

/// The child could not be started.
enum ChildError: Error, CustomStringConvertible {
    case spawn(String)

    var description: String {
        switch self {
        case .spawn(let reason): "could not start the media process: \(reason)"
        }
    }
}
