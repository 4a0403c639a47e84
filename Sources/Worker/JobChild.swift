import CLinux
import Foundation
public import Logging
public import Media

/// The child side of a job (`media-worker run-job`): the only place untrusted media is parsed
/// while the daemon runs. Before it touches the input it dies with its parent, confines itself
/// (`Sandbox`: the job's folder only, no sockets, no programs), and limits its memory and CPU; once
/// the input is probed, its CPU budget shrinks to what that input deserves. It talks to the parent
/// only through JSON lines on stdout.
public enum JobChild {
    /// Runs `request` and returns the process exit code (0 on success, 1 on a media failure).
    public static func run(
        _ request: MediaProcessor.Request, parentPID: Int32, memoryBytes: Int64, cpuSeconds: Int, logger: Logger
    ) -> Int32 {
        // If the daemon is killed, even with SIGKILL, the kernel kills us too; and if it died
        // before this line ran, stop now.
        _ = clinux_set_parent_death_signal(SIGKILL)
        if getppid() != parentPID { return 70 }
        let jobFolder = URL(fileURLWithPath: request.inputPath).deletingLastPathComponent().path
        send(ChildMessage(sandbox: Sandbox.confine(writable: [jobFolder])))
        ResourceBudget.limitMemory(bytes: memoryBytes)
        ResourceBudget.limitCPU(seconds: cpuSeconds)

        var lastSent = -1.0
        do {
            let report = try MediaProcessor.run(
                request, logger: logger,
                probed: { info in
                    ResourceBudget.limitCPU(
                        seconds: ResourceBudget.cpuSeconds(
                            for: info, type: request.type, profile: request.profile, ceiling: cpuSeconds))
                    send(ChildMessage(probe: info))
                },
                progress: { fraction in
                    // A line per whole percent at most: the parent throttles database writes.
                    guard fraction - lastSent >= 0.01 || fraction >= 1 else { return }
                    lastSent = fraction
                    send(ChildMessage(progress: fraction))
                })
            send(ChildMessage(report: report))
            return 0
        } catch {
            send(ChildMessage(error: .init(code: error.code, message: error.message)))
            return 1
        }
    }

    private static func send(_ message: ChildMessage) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard var line = try? encoder.encode(message) else { return }
        line.append(UInt8(ascii: "\n"))
        FileHandle.standardOutput.write(line)
    }
}
