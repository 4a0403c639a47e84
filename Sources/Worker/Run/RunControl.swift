import Foundation
import JobChild
import Media

/// Lets the daemon stop a running job (graceful shutdown past its grace period), and the run's
/// heartbeat stop it when the job was taken away.
public final class RunControl: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var child: ChildProcess?
    private var stopping = false
    private var fencedOff = false

    public init() {}

    /// Stops the job's child; the run then puts the job back to PENDING.
    public func stop() {
        let child = lock.withLock {
            stopping = true
            return self.child
        }
        child?.stop()
    }

    var stopRequested: Bool { lock.withLock { stopping } }
    var fenced: Bool { lock.withLock { fencedOff } }

    func fence() {
        let child = lock.withLock {
            fencedOff = true
            return self.child
        }
        child?.stop()
    }

    /// Records the child; false when a stop came first.
    func attach(_ child: ChildProcess) -> Bool {
        lock.withLock {
            self.child = child
            return !stopping
        }
    }
}

/// What the child has said so far.
final class ChildState: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var _progress = 0.0
    private var _probe: MediaInfo?
    private var _report: ProcessingReport?
    private var _failure: JobFailure?

    func take(_ message: ChildMessage) {
        lock.withLock {
            switch message {
            case .progress(let fraction): _progress = fraction
            case .probe(let info): _probe = info
            case .report(let report): _report = report
            case .failure(let failure): _failure = failure
            case .sandbox, .stills: break
            }
        }
    }

    var progress: Double { lock.withLock { _progress } }
    var durationMs: Int? { lock.withLock { _probe?.durationMs } }
    var report: ProcessingReport? { lock.withLock { _report } }
    var failure: JobFailure? { lock.withLock { _failure } }
}

/// Set once, read from anywhere.
final class Flag: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = false

    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
