import Foundation
import Observability

/// A one-line progress bar on stderr, drawn only when stderr is a terminal. Safe to update from
/// any thread.
final class ProgressBar: @unchecked Sendable {
    // @unchecked: `shownPercent` and `timeLeft` are only touched under `lock`.
    private let title: String
    private let enabled: Bool
    private let lock = NSLock()
    private var shownPercent = -1
    private var timeLeft = TimeLeft()
    private let began = ContinuousClock.now

    init(title: String) {
        self.title = title.terminalSafe
        enabled = isatty(STDERR_FILENO) == 1
    }

    /// Redraws for `fraction` (0…1) when the whole percentage changed.
    func update(_ fraction: Double) {
        let percent = Int((min(1, max(0, fraction)) * 100).rounded(.down))
        let elapsed = (ContinuousClock.now - began) / .seconds(1)
        guard enabled,
            let left = lock.withLock({ () -> String? in
                timeLeft.record(fraction, at: elapsed)
                guard percent != shownPercent else { return nil }
                shownPercent = percent
                return timeLeft.secondsLeft(at: elapsed).map { "  \(TimeLeft.phrase($0))" } ?? ""
            })
        else { return }
        let width = 30
        let filled = percent * width / 100
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        // The line is cleared first: the time left may be shorter than what it replaces.
        FileHandle.standardError.write(
            Data("\r\u{1B}[2K\(bar) \(String(format: "%3d", percent))%  \(title)\(left)".utf8))
    }

    /// Clears the bar's line.
    func finish() {
        guard enabled, lock.withLock({ shownPercent >= 0 }) else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}
