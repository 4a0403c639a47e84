import Foundation
import Testing

@testable import Queue
@testable import Worker

/// What the run coordinating a long video's pieces does next: pure rules.
@Suite("Pieces coordination rules")
struct PiecesCoordinationRules {
    private func state(
        total: Int = 4, completed: Int = 0, progress: Double = 0, failure: String? = nil, keys: [String] = []
    ) -> JobStore.PiecesState {
        JobStore.PiecesState(total: total, completed: completed, progress: progress, failure: failure, keys: keys)
    }

    /// A round: progress written, a piece claimed and encoded here, then the rows read again; with
    /// no piece to claim, a second's wait.
    @Test func aRoundWritesProgressThenEncodesOrWaits() {
        var machine = PiecesCoordination()
        let first = machine.next(.observed(state(progress: 1), seconds: 1, stopRequested: false))
        guard case .writeProgress(let percent, _, let announce) = first else {
            Issue.record("\(first)")
            return
        }
        #expect(percent == 23 && announce)
        #expect(machine.next(.progressWritten(alive: true)) == .claimPiece)
        #expect(machine.next(.claimed(true)) == .encodeClaimed)
        #expect(machine.next(.done) == .observe)
        _ = machine.next(.observed(state(progress: 1.2), seconds: 2, stopRequested: false))
        _ = machine.next(.progressWritten(alive: true))
        #expect(machine.next(.claimed(false)) == .wait)
        #expect(machine.next(.done) == .observe)
    }

    /// The app hears of every ten points, once each; the pieces are 95 % of the job.
    @Test func theAppHearsOfEveryTenPoints() {
        var machine = PiecesCoordination()
        var announced: [Int] = []
        for (step, progress) in [0.1, 0.3, 0.45, 0.5, 1.2, 2.0, 2.1, 3.99].enumerated() {
            guard
                case .writeProgress(let percent, _, let announce) = machine.next(
                    .observed(state(progress: progress), seconds: Double(step + 1), stopRequested: false))
            else {
                Issue.record("no progress written at \(progress)")
                return
            }
            if announce { announced.append(percent) }
            _ = machine.next(.progressWritten(alive: true))
        }
        #expect(announced == [10, 28, 47, 94])
    }

    /// A progress write the run's claim no longer covers: the job is someone else's.
    @Test func aLostClaimEndsTheCoordination() {
        var machine = PiecesCoordination()
        _ = machine.next(.observed(state(progress: 1), seconds: 1, stopRequested: false))
        #expect(machine.next(.progressWritten(alive: false)) == .takenAway)
    }

    /// The time left at the fleet's pace, a tenth added for the join.
    @Test func timeLeftAtTheFleetsPace() {
        var machine = PiecesCoordination()
        var left: Int?
        for second in 1...20 {
            let action = machine.next(
                .observed(state(progress: Double(second) * 0.1), seconds: Double(second), stopRequested: false))
            if case .writeProgress(_, let seconds, _) = action { left = seconds }
            _ = machine.next(.progressWritten(alive: true))
        }
        // 2 of 4 pieces in 20 s: 20 s more, and a tenth.
        #expect(left.map { (22...23).contains($0) } == true, "\(String(describing: left))")
    }

    /// A failed piece fails the job; every piece stored joins them; a stop gives the job back.
    @Test func endings() {
        var machine = PiecesCoordination()
        #expect(
            machine.next(.observed(state(failure: "boom"), seconds: 1, stopRequested: false))
                == .fail("a piece of the video failed three times: boom"))
        #expect(
            machine.next(
                .observed(state(completed: 4, progress: 4, keys: ["a", "b"]), seconds: 2, stopRequested: true))
                == .join(keys: ["a", "b"]))
        #expect(machine.next(.observed(state(progress: 2), seconds: 3, stopRequested: true)) == .release)
    }

    /// A join's local file for a stored piece is one file inside the join's folder, whatever the
    /// key a row holds, and distinct keys get distinct files.
    @Test func keptPiecesStayInTheirFolder() {
        let folder = URL(fileURLWithPath: "/work/job/pieces", isDirectory: true)
        let keys = [
            "media-worker/jobs/7/20261207/pieces/3-abcdef12.mp4", "../../etc/passwd", "..", "/", "", "a/b", "a_b",
            "a%2Fb",
        ]
        let files = keys.map { PieceRunner.keptFile(key: $0, in: folder) }
        for file in files {
            #expect(file.deletingLastPathComponent().path == folder.path, "\(file.path)")
            #expect(!file.lastPathComponent.hasPrefix(".") && file.lastPathComponent.hasSuffix(".mp4"))
        }
        #expect(Set(files).count == keys.count)
    }
}
