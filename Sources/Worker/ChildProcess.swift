import Dispatch
import Foundation
import Logging

/// Runs a job's child (this same binary, `run-job`) with an environment of our choosing (no
/// database URL, no storage credentials), in the job's private folder, reading its JSON lines.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is started once and only signalled afterwards; `buffer` is touched
    // only from the pipe's handler, `stopReason` under `lock`.
    enum Exit: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
        case stopped
    }

    private let process = Process()
    private let output = Pipe()
    private var buffer = Data()
    private let lock = NSLock()
    private var stopReason: Exit?

    /// The running binary, for spawning children of the same build.
    static var ownExecutable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }

    init(arguments: [String], directory: URL) {
        process.executableURL = Self.ownExecutable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        // Only what a decoder needs: nothing of the daemon's secrets.
        process.environment = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": directory.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
    }

    /// Starts the child and waits for it, handing each message to `onMessage`. Kills it after
    /// `timeout` seconds.
    func run(timeout: Double, onMessage: @escaping @Sendable (ChildMessage) -> Void) async throws -> Exit {
        let decoder = JSONDecoder()
        output.fileHandleForReading.readabilityHandler = { [self] handle in
            let chunk = handle.availableData
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                if let message = try? decoder.decode(ChildMessage.self, from: line) { onMessage(message) }
            }
            if chunk.isEmpty { handle.readabilityHandler = nil }
        }
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        let pid = process.processIdentifier
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + timeout)
        timer.setEventHandler { [self] in stop(.timedOut, pid: pid) }
        timer.resume()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                exited.wait()
                continuation.resume()
            }
        }
        timer.cancel()
        // Let the reader take the last lines before the pipe is dropped.
        while let handler = output.fileHandleForReading.readabilityHandler {
            _ = handler
            try? await Task.sleep(for: .milliseconds(5))
        }
        if let reason = lock.withLock({ stopReason }) { return reason }
        if process.terminationReason == .uncaughtSignal { return .signalled(process.terminationStatus) }
        return .exited(process.terminationStatus)
    }

    /// Kills the child (SIGKILL: a decoder stuck in a loop ignores gentler signals).
    func stop() { stop(.stopped, pid: process.processIdentifier) }

    private func stop(_ reason: Exit, pid: Int32) {
        lock.withLock { if stopReason == nil { stopReason = reason } }
        if pid > 0 { kill(pid, SIGKILL) }
    }
}
