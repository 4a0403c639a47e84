import Foundation
import JobChild
import JobVocabulary
import Logging
import Media
import Queue
import Storage

/// Background work: the AV1 variant of a video that proved popular (its result reused
/// `variantAfterReuses` times), made in an encode slot nobody else wants. The source job's input is
/// fetched again and the child encodes only `video_av1` (at nice 19); the variant joins the kept
/// result, the source job's output columns and every upload of the same bytes. Whenever a job
/// becomes runnable, the work is stopped and given back: it never delays a chat upload.
public struct VariantRunner: Sendable, WorkingWithContext {
    let context: WorkerContext

    /// How claimed variant work ended: completed, failed, released, fenced off or unrecorded.
    public typealias Ending = RunEnding

    /// Runs `work` with `threads`; `control` stops it (shutdown).
    func run(_ work: JobStore.VariantWork, threads: Int, control: RunControl) async -> Ending {
        var logger = logger
        logger[metadataKey: "variant"] = "\(work.key.sha256.prefix(12))"
        logger[metadataKey: "job"] = "\(work.jobId)"
        logger.info("variant work started", metadata: ["attempt": "\(work.attempt)"])
        let ending: Ending
        do {
            ending = try await execute(work, threads: threads, control: control, logger: logger)
        } catch {
            logger.error(
                "could not record the variant work's end; it will be claimed again", metadata: ["error": "\(error)"])
            ending = .unrecorded
        }
        logger.info("variant work ended", metadata: ["outcome": "\(ending.rawValue)"])
        return ending
    }

    private func execute(
        _ work: JobStore.VariantWork, threads: Int, control: RunControl, logger: Logger
    ) async throws -> Ending {
        let store = store
        guard
            let source = try await database.withSession(
                "read the variant's source", { try store.variantSource($0, work, as: KeptResult.self) })
        else { return .failed }
        guard source.kept.outputs[.videoAv1] == nil, let video = source.kept.outputs[.video] else {
            try await end(work, status: .completed, error: nil)
            return .completed
        }
        let folder: WorkFolder
        do {
            folder = try WorkFolder(in: configuration.temporaryDirectory, kind: "variant-\(work.jobId)")
        } catch {
            return try await fail(work, "the private folder cannot be made: \(error)")
        }
        defer { folder.remove() }
        let directory = folder.url
        let input = directory.appendingPathComponent("input")
        do {
            _ = try await storage.download(key: source.inputStorageKey, to: input, expectedSize: nil)
        } catch {
            return try await fail(work, "the source could not be fetched: \(error)")
        }
        // The `video` made then, whose picture the variant's must equal; without it (a result
        // kept before keys were), the variant is judged by its bytes alone.
        let mainVideo = directory.appendingPathComponent("video.mp4")
        let compared: Bool
        if let key = source.kept.keys[.video] {
            do {
                _ = try await storage.download(key: key, to: mainVideo, expectedSize: Int64(video.bytes))
                compared = true
            } catch {
                return try await fail(work, "the video to compare with could not be fetched: \(error)")
            }
        } else {
            compared = false
        }
        let outputs = directory.appendingPathComponent("out", isDirectory: true)
        let child = ChildWork(configuration: configuration)
        var request = child.request(
            input: input, outputs: outputs, type: work.key.processingType, profile: work.key.qualityProfile,
            threads: threads)
        request.media.part = .efficientVariant
        request.media.variantSmallerThan = video.bytes
        request.media.variantComparedWith = compared ? mainVideo.path : nil
        request.niceness = 19
        // Gives the slot back as soon as a job is runnable; heartbeats meanwhile.
        let yielded = Flag()
        let outcome = try await child.run(
            request, in: directory, control: control,
            watch: { [database, configuration] _ in
                let (alive, wanted) =
                    (try? await database.withSession("watch variant work") { session in
                        (
                            try store.keepVariantWorkAlive(session, work),
                            try store.hasRunnableJob(
                                session, uploadWait: configuration.uploadWait, hasPausedTable: true,
                                needingAnEncodeSlot: true)
                        )
                    }) ?? (true, false)
                if alive && wanted { yielded.set() }
                return alive && !wanted
            })
        guard case .ended(let exit, let state, let stopped) = outcome else {
            try await release(work)
            return .released
        }
        if stopped && !yielded.isSet { return .fencedOff }
        if yielded.isSet || control.stopRequested || exit == .stopped {
            logger.info("variant work given back: a job is waiting, or the worker stops")
            try await release(work)
            return .released
        }
        guard exit == .exited(0), let processed = state.report else {
            return try await fail(work, "the media process ended with \(exit)")
        }
        guard let file = processed.outputs[.videoAv1] else {
            try await end(
                work, status: .completed, error: "video_av1 left out: \(processed.variantLeftOut ?? "not made")")
            return .completed
        }
        if let problem = OutputCheck.problem(with: file, in: outputs) {
            return try await fail(work, "the media process reported a bad output: \(problem)")
        }
        // Stored only under a claim the database confirms right now, and under a key of this claim.
        let checked = ClaimCheck(database: database, patience: .seconds(configuration.staleAfter), logger: logger)
        guard await checked.confirm("the variant work", { try store.keepVariantWorkAlive($0, work) }) else {
            return .fencedOff
        }
        let key = OutputKeys.variant(jobId: work.jobId, claim: work.token, role: .videoAv1)
        let sent: Transferred
        do {
            sent = try await storage.upload(
                outputs.appendingPathComponent(file.path), key: key, contentType: file.mimeType)
        } catch {
            return try await fail(work, "could not store the variant: \(error)")
        }
        let stored = StoredOutput(
            file: file, key: key, url: storage.publicURL(for: key), sha256: sent.sha256, damage: nil)
        var kept = source.kept
        kept.outputs[.videoAv1] = file
        kept.keys[.videoAv1] = key
        kept.sha256?[.videoAv1] = sent.sha256
        let recorded = try await database.withSession("record the variant") { [kept] session in
            try store.completeVariantWork(
                session, work, role: OutputRole.videoAv1.rawValue, key: key, url: stored.url,
                metadata: stored.metadata, variant: stored.variant, kept: kept)
        }
        logger.info(
            "made the AV1 variant of a popular video",
            metadata: ["bytes": "\(file.bytes)", "h264Bytes": "\(video.bytes)", "recorded": "\(recorded)"])
        return recorded ? .completed : .fencedOff
    }

    private func end(_ work: JobStore.VariantWork, status: JobStatus, error: String?) async throws {
        let store = store
        try await database.withSession("end variant work") {
            try store.finishVariantWork($0, work, status: status, error: error)
        }
    }

    private func release(_ work: JobStore.VariantWork) async throws {
        let store = store
        try await database.withSession("give variant work back") { try store.releaseVariantWork($0, work) }
    }

    /// A failed attempt: tried again later, three attempts at most.
    private func fail(_ work: JobStore.VariantWork, _ reason: String) async throws -> Ending {
        logger.warning("variant work failed", metadata: ["error": "\(reason)"])
        try await end(work, status: work.attempt >= JobStore.backgroundAttempts ? .failed : .pending, error: reason)
        return .failed
    }
}
