import Foundation
import Logging
import Media
import Observability
import Queue

/// The claiming duty, the daemon's core: whenever woken (a notification, a freed slot, the poll
/// interval, a rescue), claims into free slots with `FOR UPDATE SKIP LOCKED` (encode slots first,
/// then the fast lane), then pieces of other workers' long videos and variant work for encode
/// slots no job wants, and runs each in the service's task group; at a stop it lets the running
/// ones finish within the grace period and stops the rest.
struct Claimer: Sendable, WorkingWithContext {
    let context: WorkerContext
    let state: ServiceState
    let runner: JobRunner
    /// A run that ends when the queue is empty (`--until-idle`).
    let untilIdle: Bool
    let events: AsyncStream<WorkerEvent>.Continuation
    let wake: AsyncStream<WorkerService.WakeUp>.Continuation
    let wakeUps: AsyncStream<WorkerService.WakeUp>

    /// Other workers' pieces and variant work need nothing beyond the context.
    private var pieces: PieceRunner { PieceRunner(context: context) }
    private var variants: VariantRunner { VariantRunner(context: context) }

    private func idle() async throws -> Bool {
        let (store, uploadWait, hasPausedTable) = (store, configuration.uploadWait, state.hasPausedTable)
        return try await database.withSession("check for work") {
            try store.isIdle($0, uploadWait: uploadWait, hasPausedTable: hasPausedTable)
        }
    }

    /// Claims into free slots whenever woken, until a stop begins (or, with `--until-idle`, the
    /// queue is empty): encode slots first (any work: a job claimed there runs whole), then the
    /// fast lane (quick work: what an encode slot would otherwise keep waiting).
    func claimUntilStopped(group: inout DiscardingTaskGroup) async {
        wake.yield(.pollInterval)
        for await _ in wakeUps {
            if state.isDraining { return }
            do {
                var dry: Set<Lane> = []
                while !state.isDraining,
                    let lane = Lane.allCases.first(where: {
                        !dry.contains($0) && state.running(in: $0) < $0.slots(configuration)
                    })
                {
                    guard let job = try await claim(into: lane) else {
                        // Quick work is a part of any work: when an encode slot finds none, neither does the lane.
                        dry.formUnion(lane == .encode ? Set(Lane.allCases) : [lane])
                        continue
                    }
                    start(job, in: lane, group: &group)
                }
                // A piece of another worker's long video, in an encode slot no job wants: the
                // fleet helps with long videos only where nobody else waits.
                while configuration.pieceSeconds > 0, !state.isDraining,
                    state.running(in: .encode) < Lane.encode.slots(configuration), let piece = try await claimPiece()
                {
                    startPiece(piece, group: &group)
                }
                // Background work, only in an encode slot no job wants (and never in a run that
                // ends when the queue is empty), nor while the fast lane takes a first look: the job
                // it parks wants this slot next, and variant work started meanwhile is given back
                // unfinished.
                if !untilIdle, configuration.variantAfterReuses > 0, !state.isDraining,
                    state.running(in: .fast) == 0, state.running(in: .encode) < Lane.encode.slots(configuration),
                    let work = try await claimVariant()
                {
                    startVariant(work, group: &group)
                }
                if untilIdle, state.running == 0, try await idle() { return }
            } catch {
                state.databaseFailed("\(error)")
                logger.error("database error in the main loop; retrying", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Runs `work` in a slot of `lane` as a task of the service's group, with its share of the
    /// cores and a control for the stop; the slot is given back when `work` returns (with its
    /// job's ending, or nil for background work).
    private func occupy(
        _ lane: Lane, group: inout DiscardingTaskGroup,
        _ work: @escaping @Sendable (_ threads: Int, _ control: RunControl) async -> JobRunner.Ending?
    ) {
        let control = state.started(in: lane)
        let threads = Lane.threads(running: state.running, cores: ProcessInfo.processInfo.activeProcessorCount)
        group.addTask {
            let ending = await work(threads, control)
            self.state.finished(control, ending: ending)
            self.wake.yield(.slotFreed)
        }
    }

    private func start(_ job: Job, in lane: Lane, group: inout DiscardingTaskGroup) {
        events.yield(.claimed(job.id, lane))
        occupy(lane, group: &group) { threads, control in
            let ending = await self.runner.run(job, threads: threads, lane: lane, control: control) { event in
                self.events.yield(.run(job.id, event))
            }
            self.events.yield(.finished(job.id, ending))
            return ending
        }
    }

    private func claimPiece() async throws -> PieceRunner.Piece? {
        guard state.hasPiecesTable else { return nil }
        return try await pieces.claim(ofJob: nil)
    }

    private func startPiece(_ piece: PieceRunner.Piece, group: inout DiscardingTaskGroup) {
        events.yield(.pieceStarted(piece.jobId, piece.index))
        occupy(.encode, group: &group) { threads, control in
            let ending = await self.pieces.run(piece, threads: threads, control: control)
            self.events.yield(.pieceEnded(piece.jobId, piece.index, ending))
            return nil
        }
    }

    private func claimVariant() async throws -> JobStore.VariantWork? {
        guard state.hasVariantsTable else { return nil }
        let (store, configuration, hasPausedTable) = (store, configuration, state.hasPausedTable)
        return try await database.withSession("claim variant work") {
            try store.claimVariantWork(
                $0, pipelineVersion: configuration.pipelineVersion, staleAfter: configuration.staleAfter,
                uploadWait: configuration.uploadWait, hasPausedTable: hasPausedTable)
        }
    }

    private func startVariant(_ work: JobStore.VariantWork, group: inout DiscardingTaskGroup) {
        events.yield(.variantStarted(work.jobId))
        occupy(.encode, group: &group) { threads, control in
            let ending = await self.variants.run(work, threads: threads, control: control)
            self.events.yield(.variantEnded(work.jobId, ending))
            return nil
        }
    }

    /// Lets running jobs finish within the grace period, then stops the rest (each run puts its
    /// job back to PENDING), and waits for them all.
    func drainRunningJobs() async {
        guard state.running > 0 else { return }
        let grace = Task {
            try await Task.sleep(for: .seconds(configuration.shutdownGrace))
            state.stopAll()
        }
        for await _ in wakeUps where state.running == 0 { break }
        grace.cancel()
    }

    private func claim(into lane: Lane) async throws -> Job? {
        let (store, host, pid, configuration) = (store, identity.host, identity.pid, configuration)
        let rules = lane.claimRules(configuration, hasPausedTable: state.hasPausedTable)
        let job = try await database.withSession("claim a job") {
            try store.claim(
                $0, rules: rules, retryBase: configuration.retryBase, uploadWait: configuration.uploadWait, host: host,
                pid: pid, lane: lane.rawValue)
        }
        state.polled()
        return job
    }
}
