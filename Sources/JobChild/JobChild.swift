import CLinux
import Foundation
public import Logging
import Media

/// The child side of a job (`media-worker run-job`): the only place untrusted media is parsed
/// while the daemon runs. Before it touches the input it dies with its parent, confines itself
/// (`Sandbox`: the job's folder only, no sockets, no programs; it stops there if it cannot), and
/// limits its memory and CPU; once
/// the input is probed, its CPU budget shrinks to what that input deserves. It talks to the parent
/// only through JSON lines on stdout.
public enum JobChild {
    /// Runs `request` and returns the process exit code (0 on success, 1 on a media failure).
    public static func run(_ request: JobRequest, logger: Logger) -> Int32 {
        // If the daemon is killed, even with SIGKILL, the kernel kills us too; and if it died
        // before this line ran, stop now.
        _ = clinux_set_parent_death_signal(SIGKILL)
        if getppid() != request.parentPID { return 70 }
        let sandbox = Sandbox.confine(writable: [request.jobFolder])
        send(.sandbox(sandbox))
        // Fail closed: a stranger's file never meets a decoder that is not fully confined, unless
        // the operator said otherwise.
        if request.sandboxPolicy == .full, !sandbox.isComplete {
            send(
                .failure(
                    JobFailure(
                        .internal,
                        "the job's process could not be fully confined (it lacks "
                            + sandbox.missing.joined(separator: ", ") + "); nothing was read")))
            return 1
        }
        // Before a byte of the upload is parsed, its address space is what its size could need.
        let threads = request.media.threads > 0 ? request.media.threads : ProcessInfo.processInfo.activeProcessorCount
        let fileBytes =
            (try? FileManager.default.attributesOfItem(atPath: request.media.inputPath)[.size] as? Int64) ?? nil
        ResourceBudget.limitMemory(
            bytes: request.memoryBytes,
            initially: ResourceBudget.parseMemory(
                fileBytes: fileBytes ?? 0, threads: threads, ceiling: request.memoryBytes))
        ResourceBudget.limitCPU(seconds: request.cpuSeconds)
        if request.niceness > 0 { _ = nice(Int32(request.niceness)) }

        var lastSent = -1.0
        do {
            let report = try MediaProcessor.run(
                request.media, logger: logger,
                probed: { info in
                    ResourceBudget.allowMemory(
                        bytes: ResourceBudget.memoryBytes(
                            for: info, threads: threads, encodeWork: request.media.encodeWork,
                            encodesAV1: request.media.encodesAV1, ceiling: request.memoryBytes))
                    ResourceBudget.limit(
                        for: info, type: request.media.type, profile: request.media.profile,
                        cpuCeiling: request.cpuSeconds,
                        limits: request.media.limits, encodeWork: request.media.encodeWork)
                    send(.probe(info))
                },
                cpuBudget: {
                    ResourceBudget.cpuSeconds(
                        for: $0, type: request.media.type, profile: request.media.profile, ceiling: request.cpuSeconds,
                        encodeWork: request.media.encodeWork)
                },
                stillsReady: { send(.stills($0)) },
                progress: { fraction in
                    // A line per whole percent at most: the parent throttles database writes. A
                    // first look is over in a moment, and the job's progress is its long pass's.
                    guard request.media.part != .firstLook, fraction - lastSent >= 0.01 || fraction >= 1 else { return }
                    lastSent = fraction
                    send(.progress(fraction))
                })
            send(.report(report))
            return 0
        } catch {
            send(.failure(error.failure))
            return 1
        }
    }

    private static func send(_ message: ChildMessage) {
        guard var line = try? JSONFormat.encoder().encode(message) else { return }
        line.append(UInt8(ascii: "\n"))
        FileHandle.standardOutput.write(line)
    }
}
