import Observability
import Queue

/// What the run coordinating a long video's pieces does next, from what it last learnt: a pure
/// state machine (events in, actions out, as postgres-nio's `ConnectionStateMachine`), so its
/// rules are tested without a database, storage or FFmpeg; `JobRunner.coordinatePieces` is the thin
/// loop that performs the actions. A round: read the pieces' rows; fail, release or join if the
/// time has come; otherwise write the job's progress (the pieces are 95 % of the job; the app hears
/// of every ten points) with the time left at the fleet's pace, then encode a piece nobody holds,
/// or wait a second when there is none.
struct PiecesCoordination {
    enum Event: Equatable {
        /// The pieces' rows, `seconds` after the pieces were recorded; whether the worker stops.
        case observed(JobStore.PiecesState, seconds: Double, stopRequested: Bool)
        /// The progress write answered: whether the run still holds its job.
        case progressWritten(alive: Bool)
        /// A claim for a piece answered: whether one was claimed.
        case claimed(Bool)
        /// The piece this run encoded ended, or the wait did.
        case done
    }

    enum Action: Equatable {
        /// Read the pieces' rows.
        case observe
        /// Write the job's progress (percent, seconds left; `announce`: tell the app).
        case writeProgress(percent: Int, secondsLeft: Int?, announce: Bool)
        /// Claim a piece nobody holds.
        case claimPiece
        /// Encode the piece just claimed.
        case encodeClaimed
        /// Nothing to encode here: wait a second.
        case wait
        /// Every piece is stored: fetch and join them.
        case join(keys: [String])
        /// A piece failed for good: forget the pieces and fail the job with this reason.
        case fail(String)
        /// The worker stops: forget the pieces and give the job back.
        case release
        /// The job is no longer this run's: forget the pieces, write nothing.
        case takenAway
    }

    private var announced = 0
    private var pending: (percent: Int, announce: Bool)?
    private var timeLeft = TimeLeft()

    /// The action that follows `event`.
    mutating func next(_ event: Event) -> Action {
        switch event {
        case .observed(let state, let seconds, let stopRequested):
            if let failure = state.failure { return .fail("a piece of the video failed three times: \(failure)") }
            if state.completed == state.total { return .join(keys: state.keys) }
            if stopRequested { return .release }
            let fraction = state.progress / Double(max(1, state.total))
            let percent = min(95, Int(fraction * 95))
            let announce = percent / 10 > announced / 10
            // The time left at the fleet's pace on these pieces, the join's tenth included.
            timeLeft.record(fraction, at: seconds)
            let left = timeLeft.secondsLeft(at: seconds).map { Int(($0 * 1.1).rounded(.up)) }
            pending = (percent, announce)
            return .writeProgress(percent: percent, secondsLeft: left, announce: announce)
        case .progressWritten(let alive):
            guard alive else { return .takenAway }
            if let pending, pending.announce { announced = pending.percent }
            pending = nil
            return .claimPiece
        case .claimed(let claimed):
            return claimed ? .encodeClaimed : .wait
        case .done:
            return .observe
        }
    }
}
