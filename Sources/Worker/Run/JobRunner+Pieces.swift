import Foundation
import JobVocabulary
import Logging
import Media
import Observability
import Queue

extension JobRunner {
    /// A long video's run after its child cut it into `spans`: the run records the pieces, encodes
    /// them itself while free encode slots of any worker take others (`PieceRunner`; those of this
    /// worker read its copy of the input and leave their pieces in the join's folder), writes the
    /// job's progress from all of them, and once every piece is stored runs the child once more
    /// to join them beside the audio (and to make the preview and what else the type asks for);
    /// the write-back is the usual one. The run keeps the job's claim throughout, so a cancel, a
    /// reprocess or a rescue fences it off as any run, and its pieces are then forgotten (their
    /// workers notice at their next heartbeat). A piece that failed three times fails the job.
    func coordinatePieces(
        _ child: ChildRun, spans: [Pieces.Span], part: MediaProcessor.Part, published: [OutputRole: StoredOutput]
    ) async throws -> Ending {
        let (run, threads, control, input, observe) = (
            child.run, child.threads, child.control, child.input, child.observe
        )
        let (job, connection, logger, store) = (run.job, run.database, run.logger, store)
        // The rest of the type after the pieces: the stills already published are not made again.
        let rest: MediaProcessor.Part = published.values.contains { $0.file.role.isStill } ? .longPass : part
        let recorded: Bool
        do {
            recorded = try await connection.withSession("record the pieces") {
                try store.insertPieces($0, job: job, spans: spans)
            }
        } catch {
            // No pieces table (or no right to it): one pass, as without pieces.
            logger.warning("could not record the pieces; encoding in one pass", metadata: ["error": "\(error)"])
            return try await runToEnd(child, part: rest, published: published, splitting: false)
        }
        guard recorded else { return try await run.takenAway() }
        logger.info("encoding in pieces", metadata: ["pieces": "\(spans.count)"])
        // Rows first, then storage: once no row names a piece, a late piece worker's upload is
        // refused (its claim is gone) or, if it slipped through, left to the sweep.
        let forget = { @Sendable () async in
            _ = try? await connection.withSession("forget the pieces") { try store.deletePieces($0, job: job) }
            let folder = OutputKeys.pieces(jobId: job.id, token: job.token)
            for object in (try? await self.storage.list(prefix: folder)) ?? [] {
                try? await self.storage.delete(key: object.key)
            }
        }
        let pieces = PieceRunner(context: context.sending(to: connection))
        // The join's folder, beside the input: the pieces encoded on this worker stay in it once
        // stored (a move into a folder that could not be made fails, and the join fetches).
        let folder = input.deletingLastPathComponent().appendingPathComponent("pieces", isDirectory: true)
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let local = LocalPieces(input: input, folder: folder)
        // The rounds, while this worker's other slots may borrow the input and keep their pieces
        // here; they end with the action that ends the coordination.
        let last = try await context.running.coordinating(job.claim, local) {
            var coordination = PiecesCoordination()
            var action = PiecesCoordination.Action.observe
            var claimed: PieceRunner.Piece?
            let began = ContinuousClock.now
            while true {
                switch action {
                case .observe:
                    let state = try await connection.withSession("read the pieces") {
                        try store.piecesState($0, job: job, staleAfter: configuration.staleAfter)
                    }
                    action = coordination.next(
                        .observed(
                            state, seconds: (ContinuousClock.now - began) / .seconds(1),
                            stopRequested: control.stopRequested))
                case .writeProgress(let percent, let left, let announce):
                    let estimate = left.map(run.expectedSeconds)
                    let alive = try await connection.withSession("write progress") {
                        try store.writeProgress(
                            $0, job: job, progress: percent, estimatedSeconds: estimate, secondsLeft: left,
                            announce: announce)
                    }
                    if alive { observe(.progress(Double(percent) / 100)) }
                    action = coordination.next(.progressWritten(alive: alive))
                case .claimPiece:
                    claimed = try await pieces.claim(ofJob: job.id)
                    action = coordination.next(.claimed(claimed != nil))
                case .encodeClaimed:
                    if let piece = claimed { _ = await pieces.run(piece, threads: threads, control: control) }
                    claimed = nil
                    action = coordination.next(.done)
                case .wait:
                    try await Task.sleep(for: .seconds(1))
                    action = coordination.next(.done)
                case .join, .fail, .release, .takenAway:
                    return action
                }
            }
        }
        let keys: [String]
        switch last {
        case .join(let stored): keys = stored
        case .fail(let reason):
            await forget()
            return try await run.fail(JobFailure(.crashed, reason))
        case .release:
            await forget()
            return try await run.release()
        default:  // .takenAway: no other action ends the rounds
            await forget()
            return try await run.takenAway()
        }
        // Every piece is stored: fetch those made on other workers (and their storyboard tiles)
        // beside the ones made on this one, and join them in one more child.
        var kept = 0
        var files: [String] = []
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for key in keys {
                let file = PieceRunner.keptFile(key: key, in: folder)
                files.append(file.path)
                // A piece kept here has its storyboard tiles beside it, if it made some.
                if FileManager.default.fileExists(atPath: file.path) {
                    kept += 1
                    continue
                }
                _ = try await storage.download(key: key, to: file, expectedSize: nil)
                // Its tiles, when it made some; without them the join takes keyframes.
                let tiles = URL(fileURLWithPath: Pieces.tilesFile(ofPiece: file.path))
                if !FileManager.default.fileExists(atPath: tiles.path) {
                    _ = try? await storage.download(key: OutputKeys.tiles(ofPiece: key), to: tiles, expectedSize: nil)
                }
            }
        } catch {
            await forget()
            return try await run.fail(JobFailure(.storage, "the video's pieces could not be fetched: \(error)"))
        }
        logger.info("joining the pieces", metadata: ["kept": "\(kept)", "fetched": "\(keys.count - kept)"])
        observe(.piecesGathered(madeHere: kept, fetched: keys.count - kept))
        let ending = try await runToEnd(
            child, part: rest, published: published, pieceWork: .join(files), progressFrom: 0.95)
        await forget()
        return ending
    }

    /// Runs a child that may not answer with pieces (one pass, or the join): its run's end.
    private func runToEnd(
        _ child: ChildRun, part: MediaProcessor.Part, published: [OutputRole: StoredOutput],
        pieceWork: MediaProcessor.PieceWork? = nil, splitting: Bool = true, progressFrom: Double = 0
    ) async throws -> Ending {
        let outcome = try await runChild(
            child, part: part, published: published, pieceWork: pieceWork, splitting: splitting,
            progressFrom: progressFrom)
        guard case .ended(let ending) = outcome else {
            return try await child.run.fail(JobFailure(.internal, "the join of a video's pieces asked for pieces"))
        }
        return ending
    }
}
