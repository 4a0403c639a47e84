import Foundation
import JobChild
import JobVocabulary
import Media

/// How a run of any kind ended: a job's run (`JobRunner`), a piece of a long video (`PieceRunner`)
/// or a popular video's variant (`VariantRunner`); the last two end in the first five cases and
/// the last two.
public enum RunEnding: String, Sendable {
    case completed, retrying, failed, cancelled, released
    /// A first look published what it found; the job waits (PENDING) for an encode slot.
    case parked
    /// Someone else owns the work now (rescued, cancelled, reprocessed): nothing was written.
    case fencedOff
    /// The database could not be reached to record the end: rescue will deal with it.
    case unrecorded
}

/// Media work in a confined child, the one way every runner does it: the request with this host's
/// limits and confinement, the child spawned in the work's folder (`run-job`, nothing of the
/// daemon's secrets), its messages gathered in a `ChildState`, a watch beside it that may stop it,
/// and how it ended. The runners keep only what differs: what the work is, what is watched, and
/// what the ending means.
struct ChildWork {
    let configuration: Configuration

    /// CPU seconds a child may use until it has probed its input and lowered the limit to what
    /// the input deserves: the wall-clock budget on every core it may use.
    func cpuCeiling(threads: Int) -> Int {
        Int(configuration.jobTimeout) * (threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The request for work on `input` writing into `outputs`: this host's memory, CPU ceiling
    /// and confinement, and the settings every output follows (loudness, storyboards).
    func request(
        input: URL, outputs: URL, type: ProcessingType, profile: QualityProfile, threads: Int
    ) -> JobRequest {
        var media = MediaProcessor.Request(
            inputPath: input.path, outputDirectory: outputs.path, type: type, profile: profile, threads: threads)
        media.loudnessTarget = configuration.loudnessTarget
        media.storyboardAfter = configuration.storyboardAfter
        var request = JobRequest(
            media: media, parentPID: getpid(), memoryBytes: configuration.childMemoryBytes,
            cpuSeconds: cpuCeiling(threads: threads))
        request.sandboxPolicy = configuration.sandboxPolicy
        return request
    }

    /// How the child's work ended.
    enum Outcome {
        /// A stop (shutdown, or a fence) came before the child started: it never ran.
        case notStarted
        /// The child ended with `exit`; `state` holds what it said; `watchStopped` says whether the
        /// watch stopped it.
        case ended(ChildProcess.Exit, state: ChildState, watchStopped: Bool)
    }

    /// Runs `request` in a child whose folder (its `TMPDIR`, the only place it may write) is
    /// `directory`, attached to `control` (which can stop it). Each message goes to `onMessage`
    /// (with the child, whose deadline it may shorten); `watch`, if any, is asked every second
    /// while the child runs (with what it said so far) and stops it by answering false;
    /// `alongside` runs beside the child (a heartbeat) and is cancelled when it ends.
    func run(
        _ request: JobRequest, in directory: URL, control: RunControl,
        onMessage: @escaping @Sendable (ChildMessage, ChildProcess) -> Void = { _, _ in },
        watch: (@Sendable (ChildState) async -> Bool)? = nil,
        alongside: (@Sendable (ChildState) async -> Void)? = nil
    ) async throws -> Outcome {
        let child = ChildProcess(
            executable: configuration.childExecutable, arguments: ["run-job", try JSONFormat.text(request)],
            directory: directory)
        guard control.attach(child) else { return .notStarted }
        let (state, watchStopped) = (ChildState(), Flag())
        let watching = watch.map { watch in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    guard !Task.isCancelled else { return }
                    if await !watch(state) {
                        watchStopped.set()
                        child.stop()
                        return
                    }
                }
            }
        }
        let beside = alongside.map { body in Task { await body(state) } }
        let decoder = JSONDecoder()
        let exit = try await child.run(timeout: configuration.jobTimeout) { line in
            guard let message = try? decoder.decode(ChildMessage.self, from: line) else { return }
            state.take(message)
            onMessage(message, child)
        }
        watching?.cancel()
        beside?.cancel()
        _ = await beside?.value
        return .ended(exit, state: state, watchStopped: watchStopped.isSet)
    }
}
