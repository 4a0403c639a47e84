import CLinux
import Foundation
import JobVocabulary

/// What confines a process, as the kernel granted it.
public struct SandboxReport: Codable, Sendable, Equatable {
    /// `PR_SET_NO_NEW_PRIVS`: nothing it runs can gain privileges.
    public var noNewPrivileges = false
    /// `PR_SET_DUMPABLE` 0: processes of the same user cannot read its memory or environment.
    public var notDumpable = false
    /// The seccomp filter refusing sockets, programs, processes, tracing and namespaces.
    public var seccomp = false
    /// The Landlock ABI enforced (file system access limited to the job's folder and the system's
    /// read-only libraries), or nil when the kernel offers none.
    public var landlockABI: Int?
    /// Why Landlock could not be enforced (the system's words), when it was not.
    public var landlockRefusal: String?

    public init() {}

    /// Every confinement is in place.
    public var isComplete: Bool { noNewPrivileges && notDumpable && seccomp && landlockABI != nil }

    /// What is missing, in plain words (empty: complete).
    public var missing: [String] {
        var missing: [String] = []
        if landlockABI == nil { missing.append("Landlock (\(landlockRefusal ?? "unavailable"))") }
        if !seccomp { missing.append("the seccomp filter") }
        if !noNewPrivileges { missing.append("no-new-privileges") }
        if !notDumpable { missing.append("not-dumpable") }
        return missing
    }
}

/// How much of the job sandbox the daemon insists on (`MEDIA_WORKER_SANDBOX`).
public enum SandboxPolicy: String, Codable, Sendable {
    /// Every confinement, or no job runs: the daemon stays not ready and says why (the default).
    case full
    /// DANGEROUS: run jobs with whatever confinement the kernel grants. A stranger's file then
    /// meets a decoder that may read the host's files, other jobs' folders, or open sockets.
    case partial
}

/// Confines processes that parse untrusted media, and protects the daemon from them. Everything
/// here works unprivileged (no root, no capabilities), so it holds on a developer's machine, in CI
/// and under systemd alike.
public enum Sandbox {
    /// What a job's child may still read once confined: the system's libraries and data, its own
    /// `/proc` entry and the CPU topology (FFmpeg sizes its threads from it). Not `/etc`, not
    /// `/home`, not other processes' `/proc` entries (the daemon's environment holds secrets).
    static let readablePaths = [
        "/usr", "/lib", "/lib64", "/bin", "/proc/self", "/sys/devices/system/cpu", "/dev/null", "/dev/urandom",
    ]

    /// Confines the calling process for good: no new privileges, not dumpable, the seccomp filter,
    /// and Landlock allowing `writable` (the job's folder) and `readablePaths` only. Call it before
    /// the first byte of untrusted input is read. Whatever the kernel refuses is left out of the
    /// report rather than failing the job.
    public static func confine(writable: [String]) -> SandboxReport {
        var report = SandboxReport()
        report.noNewPrivileges = clinux_set_no_new_privileges() == 0
        report.notDumpable = clinux_set_not_dumpable() == 0
        let abi = withConstCStringArray(readablePaths) { readable in
            withConstCStringArray(writable) { writablePaths in
                clinux_landlock_confine(readable, Int32(readablePaths.count), writablePaths, Int32(writable.count))
            }
        }
        report.landlockABI = abi > 0 ? Int(abi) : nil
        if abi <= 0 { report.landlockRefusal = String(cString: strerror(errno)) }
        report.seccomp = report.noNewPrivileges && clinux_seccomp_deny_escapes() == 0
        return report
    }

    /// Makes the daemon undumpable: its `/proc/<pid>/environ` (database password, S3 secret) and
    /// memory become unreadable to other processes of its user, a job's child among them.
    public static func protectDaemon() -> Bool { clinux_set_not_dumpable() == 0 }
}
