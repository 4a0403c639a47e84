import Foundation
import TestSupport
import Testing

extension Deployment {
    /// `media-worker ARGUMENTS` on a host where Landlock is refused (EPERM), as under
    /// systemd-nspawn's default seccomp filter: `Tests/Scripts/deny-landlock.py` runs it.
    func runWithoutLandlock(_ arguments: [String], extra: [String: String] = [:]) async throws -> ProgramResult {
        try await runProgramAsync(
            URL(fileURLWithPath: "/usr/bin/python3"),
            [Fixtures.root.appendingPathComponent("Tests/Scripts/deny-landlock.py").path, Fixtures.executable.path]
                + arguments, environment: environment.merging(extra) { $1 })
    }
}

/// A stranger's file never meets a decoder that is not fully confined: where Landlock is refused,
/// `serve` claims nothing and says why, `doctor` fails, and only the setting named dangerous
/// runs jobs anyway.
@Suite("Fail closed when the job sandbox is incomplete", .heavy)
struct FailClosedTests {
    @Test func serveClaimsNothingWithoutLandlock() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let served = try await deployment.runWithoutLandlock(["serve", "--until-idle"])
        let stderr = served.stderr
        #expect(served.status != 0)
        #expect(stderr.contains("the job sandbox lacks Landlock (Operation not permitted)"), "\(stderr)")
        #expect(stderr.contains("landlock_create_ruleset") && stderr.contains("DANGEROUS"), "\(stderr)")
        #expect(try await deployment.job(id).text("status") == "PENDING")

        let doctor = try await deployment.runWithoutLandlock(["doctor", "--min-free-space", "1M"])
        let report = String(decoding: doctor.stdout, as: UTF8.self)
        #expect(doctor.status == 1)
        #expect(report.contains("✘ job sandbox") && report.contains("serve stays not ready"), "\(report)")
    }

    /// A long-running `serve` stays not ready (`/readyz` 503, systemd's STATUS says why) and
    /// claims nothing.
    @Test func serveStaysNotReadyAndSaysWhy() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let notify = try DatagramListener()
        let port = try freePort()
        let server = try BackgroundProgram(
            URL(fileURLWithPath: "/usr/bin/python3"),
            [
                Fixtures.root.appendingPathComponent("Tests/Scripts/deny-landlock.py").path,
                Fixtures.executable.path, "serve",
            ],
            environment: deployment.environment.merging([
                "NOTIFY_SOCKET": notify.path, "MEDIA_WORKER_METRICS_ADDR": "127.0.0.1:\(port)",
            ]) { $1 }, log: deployment.scratch.appendingPathComponent("serve.log"))
        defer { server.signal(SIGKILL) }
        #expect(
            await notify.wait(timeout: 30) {
                $0.hasPrefix("STATUS=not ready: the job sandbox lacks Landlock (Operation not permitted)")
            }, "\(notify.messages)")
        #expect(!notify.messages.contains("READY=1"))
        let ready = try await fetch("http://127.0.0.1:\(port)/readyz")
        #expect(ready.0 == 503)
        #expect(try await deployment.job(id).text("status") == "PENDING")
    }

    /// `MEDIA_WORKER_SANDBOX=partial` is the operator's explicit, dangerous choice: jobs run, and
    /// the log says so.
    @Test func partialSandboxRunsJobsOnlyWhenAskedFor() async throws {
        let deployment = try await Deployment.make()
        let id = try await deployment.enqueue("no_audio.mp4", type: "METADATA")
        let served = try await deployment.runWithoutLandlock(
            ["serve", "--until-idle"], extra: ["MEDIA_WORKER_SANDBOX": "partial"])
        let stderr = served.stderr
        #expect(served.status == 0, "\(stderr)")
        #expect(stderr.contains("DANGEROUS: running jobs without a complete sandbox"), "\(stderr)")
        #expect(try await deployment.job(id).text("status") == "COMPLETED")
    }
}
