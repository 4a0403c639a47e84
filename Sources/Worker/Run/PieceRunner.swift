import Foundation
import JobChild
import JobVocabulary
import Logging
import Media
import Queue
import Storage

/// Encodes one claimed piece of a long video (`Pieces`) in a confined child, as any job's
/// work is: the job's input (its coordinator's copy when it runs on this worker, else this
/// worker's one copy for the run's pieces, `PieceInputs`), the piece's frames encoded with the
/// job's profile at nice 19, the result stored under the job's key prefix and recorded, fenced
/// by the piece's claim (and, on the coordinator's worker, left in the join's folder too). A
/// heartbeat every second carries its progress and notices when the piece was taken away (its
/// job cancelled, reprocessed or rescued, or the piece rescued), which stops the child.
public struct PieceRunner: Sendable, WorkingWithContext {
    let context: WorkerContext

    typealias Piece = JobStore.ClaimedPiece<Pieces.Span>

    /// How a claimed piece ended: completed, failed, released, fenced off or unrecorded.
    public typealias Ending = RunEnding

    /// Claims the next piece to encode (of `jobId`, or of any job): never one of this worker's own
    /// running pieces, however late its heartbeat.
    func claim(ofJob jobId: Int?) async throws -> Piece? {
        let (store, staleAfter, worker, own) = (store, configuration.staleAfter, identity.name, context.running.pieces)
        return try await database.withSession("claim a piece") {
            try store.claimPiece(
                $0, ofJob: jobId, staleAfter: staleAfter, worker: worker, sparing: own, as: Pieces.Span.self)
        }
    }

    /// Encodes `piece`. When its job's coordinator runs on this worker (this very run, or
    /// another slot's) the piece reads the coordinator's copy of the input and, once stored and
    /// recorded, is left in the join's folder under `keptFile(key:in:)`: a long video made on one
    /// host fetches its input once and no piece back. Elsewhere the pieces a worker takes of one
    /// run share one copy of the input, fetched for the first of them.
    func run(_ piece: Piece, threads: Int, control: RunControl) async -> Ending {
        var logger = logger
        logger[metadataKey: "job"] = "\(piece.jobId)"
        logger[metadataKey: "piece"] = "\(piece.index)"
        let started = ContinuousClock.now
        let lent = context.running.localPieces(of: piece.runClaim)?.input
        let ending: Ending = await context.running.holding(piece: piece.token) {
            do {
                return try await execute(piece, input: lent, threads: threads, control: control, logger: logger)
            } catch {
                logger.error(
                    "could not record the piece's end; it will be claimed again", metadata: ["error": "\(error)"])
                return .unrecorded
            }
        }
        logger.info(
            "piece ended",
            metadata: [
                "outcome": "\(ending.rawValue)", "attempt": "\(piece.attempt)",
                "input": lent == nil ? "worker copy" : "coordinator copy",
                "seconds": "\(String(format: "%.2f", (ContinuousClock.now - started).inSeconds))",
            ])
        return ending
    }

    private func execute(
        _ piece: Piece, input lent: URL?, threads: Int, control: RunControl, logger: Logger
    ) async throws -> Ending {
        let store = store
        // The coordinator's copy, or this worker's one copy for the run's pieces taken here.
        let (input, borrowed): (URL, PieceInputs.Borrowed?)
        if let lent {
            (input, borrowed) = (lent, nil)
        } else {
            do {
                let copy = try await context.pieceInputs.borrow(piece.runClaim, in: configuration.temporaryDirectory) {
                    [storage] input in
                    _ = try await storage.download(
                        key: piece.inputStorageKey, to: input, expectedSize: piece.inputFileSize)
                }
                (input, borrowed) = (copy.input, copy)
            } catch let error as StorageError {
                return try await end(piece, error: "the input could not be fetched: \(error)")
            } catch {
                return try await end(piece, error: "the piece's private folder cannot be made: \(error)")
            }
        }
        defer { if let borrowed { context.pieceInputs.giveBack(borrowed) } }
        // The child may write only in the folder its input is in.
        let outputs = input.deletingLastPathComponent()
            .appendingPathComponent("piece-\(piece.index)-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: outputs) }
        let work = ChildWork(configuration: configuration)
        var request = work.request(
            input: input, outputs: outputs, type: piece.processingType, profile: piece.qualityProfile, threads: threads)
        request.media.part = .longPass
        request.media.pieceWork = .encode(piece.span)
        request.niceness = 19
        // The heartbeat carries the piece's progress; a piece taken away stops.
        let outcome = try await work.run(
            request, in: input.deletingLastPathComponent(), control: control,
            watch: { [database] state in
                (try? await database.withSession("keep a piece alive") {
                    try store.keepPieceAlive($0, piece, progress: state.progress)
                }) ?? true
            })
        guard case .ended(let exit, let state, let takenAway) = outcome else {
            return try await end(piece, released: true)
        }
        if takenAway { return .fencedOff }
        if control.stopRequested || exit == .stopped { return try await end(piece, released: true) }
        let file = outputs.appendingPathComponent(Pieces.fileName)
        guard exit == .exited(0), state.report != nil, FileManager.default.fileExists(atPath: file.path) else {
            return try await end(piece, error: state.failure.map { "\($0)" } ?? "the media process ended with \(exit)")
        }
        // Stored only under a claim the database confirms right now, and under a key of this claim.
        let checked = ClaimCheck(database: database, patience: .seconds(configuration.staleAfter), logger: logger)
        guard await checked.confirm("the piece", { try store.keepPieceAlive($0, piece, progress: 1) }) else {
            return .fencedOff
        }
        let key = OutputKeys.piece(jobId: piece.jobId, token: piece.run, index: piece.index, claim: piece.token)
        let tiles = URL(fileURLWithPath: Pieces.tilesFile(ofPiece: file.path))
        let hasTiles = FileManager.default.fileExists(atPath: tiles.path)
        do {
            try await storage.upload(file, key: key, contentType: "video/mp4")
            if hasTiles {
                try await storage.upload(
                    tiles, key: OutputKeys.tiles(ofPiece: key), contentType: "application/octet-stream")
            }
        } catch {
            return try await end(piece, error: "the piece could not be stored: \(error)")
        }
        let ending = try await end(piece, key: key)
        if ending == .completed {
            // The very bytes just stored, tiles first: a piece in the join's folder has its tiles
            // beside it if it made some. Should a move fail, the join fetches what is missing.
            context.running.keep(for: piece.runClaim) { local in
                let kept = Self.keptFile(key: key, in: local.folder)
                if hasTiles {
                    try FileManager.default.moveItem(
                        at: tiles, to: URL(fileURLWithPath: Pieces.tilesFile(ofPiece: kept.path)))
                }
                try FileManager.default.moveItem(at: file, to: kept)
            }
        }
        return ending
    }

    /// Where the piece stored under `key` is (kept by its encoder, or fetched) in a join's
    /// `folder`: the whole key, percent-encoded into one file name, so no key (a row's value)
    /// can name a file outside the folder, and two keys never name the same file.
    static func keptFile(key: String, in folder: URL) -> URL {
        let name = key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? UUID().uuidString
        return folder.appendingPathComponent("piece-\(name).mp4")
    }

    /// Records the piece's end: completed with its key, failed with an error, or given back.
    private func end(_ piece: Piece, key: String? = nil, error: String? = nil, released: Bool = false) async throws
        -> Ending
    {
        if let error { logger.warning("piece failed", metadata: ["error": "\(error)"]) }
        let store = store
        let recorded = try await database.withSession("end a piece") {
            try store.finishPiece($0, piece, key: key, error: error, released: released)
        }
        guard recorded else { return .fencedOff }
        return key != nil ? .completed : released ? .released : .failed
    }
}
