import Foundation
import JobVocabulary

/// What a confined process can still do, tried from inside the sandbox: the proof, for tests and
/// `doctor`, that a job's child holds nothing and reaches nothing. Run by the hidden
/// `media-worker sandbox-check` command, spawned exactly as a job's child is.
public struct SandboxCheck: Codable, Sendable {
    public var sandbox: SandboxReport
    /// What each attempt gave: `allowed`, or the system's refusal (`Operation not permitted`).
    public var openSocket: String
    public var readParentEnvironment: String
    public var readOutsideFile: String
    public var startProgram: String
    public var writeInFolder: String
    /// The descriptors open in the process and what they are (from `/proc/self/fd`), apart from the
    /// one listing them.
    public var openDescriptors: [Int: String]

    /// Confines the calling process to `folder`, then tries each escape. `outsideFile` is any
    /// readable file outside `folder`.
    public static func run(folder: String, parentPID: Int32, outsideFile: String) -> SandboxCheck {
        let descriptors = openDescriptors()
        let sandbox = Sandbox.confine(writable: [folder])
        return SandboxCheck(
            sandbox: sandbox,
            openSocket: attempt { socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) },
            readParentEnvironment: attempt { open("/proc/\(parentPID)/environ", O_RDONLY | O_CLOEXEC) },
            readOutsideFile: attempt { open(outsideFile, O_RDONLY | O_CLOEXEC) },
            startProgram: startProgram(),
            writeInFolder: attempt {
                open("\(folder)/sandbox-check.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            },
            openDescriptors: descriptors)
    }

    /// Why a job's child would not be fully confined on this host, in plain words, or nil when it is.
    public var problem: String? {
        let missing = sandbox.missing
        guard !missing.isEmpty || !escapes.isEmpty else { return nil }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("the job sandbox lacks " + missing.joined(separator: ", ")) }
        if !escapes.isEmpty { parts.append("a job's child could " + escapes.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }

    /// What an operator does about `problem`.
    public static let fix =
        "run on Linux 5.13 or later with Landlock enabled (CONFIG_SECURITY_LANDLOCK, `lsm=…,landlock` on the kernel "
        + "command line); let the service manager or container allow the landlock_create_ruleset, "
        + "landlock_add_rule and landlock_restrict_self system calls (systemd-nspawn: --system-call-filter='landlock_*'; "
        + "a container runtime's seccomp profile; systemd/media-worker.service already allows them); "
        + "MEDIA_WORKER_SANDBOX=partial runs jobs anyway and is DANGEROUS"

    /// What is still possible that should not be, in plain words (empty: fully confined).
    public var escapes: [String] {
        var escapes: [String] = []
        if openSocket == "allowed" { escapes.append("open a socket") }
        if readParentEnvironment == "allowed" { escapes.append("read the daemon's environment") }
        if readOutsideFile == "allowed" { escapes.append("read files outside its folder") }
        if startProgram == "allowed" { escapes.append("start programs") }
        if writeInFolder != "allowed" { escapes.append("not even write its own folder (\(writeInFolder))") }
        return escapes
    }

    /// Runs `call` (which returns a descriptor or -1) and closes what it opened.
    private static func attempt(_ call: () -> Int32) -> String {
        let descriptor = call()
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        close(descriptor)
        return "allowed"
    }

    private static func startProgram() -> String {
        var pid: pid_t = 0
        let result = withCStringArray(["/bin/true"]) { argv in
            withCStringArray([]) { envp in posix_spawn(&pid, "/bin/true", nil, nil, argv, envp) }
        }
        guard result == 0 else { return String(cString: strerror(result)) }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        // posix_spawn reports a failed exec through the child's exit status 127.
        return (status >> 8) & 0xff == 127 ? "exec refused" : "allowed"
    }

    private static func openDescriptors() -> [Int: String] {
        guard let directory = opendir("/proc/self/fd") else { return [:] }
        defer { closedir(directory) }
        let own = Int(dirfd(directory))
        var found: [Int: String] = [:]
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let descriptor = Int(name), descriptor != own else { continue }
            found[descriptor] =
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)")) ?? "?"
        }
        return found
    }
}
