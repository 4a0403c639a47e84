import Foundation
import TestSupport
import Testing

/// The units in `systemd/`, checked by systemd's own tools with the built binary in ExecStart.
@Suite("systemd units")
struct SystemdUnitTests {
    static let analyze = URL(fileURLWithPath: "/usr/bin/systemd-analyze")

    /// The units copied to a temporary folder with ExecStart pointing at the built binary; the
    /// template also as instance 123, as `systemctl start media-worker-reprocess@123` makes it.
    func installedUnits() throws -> URL {
        let folder = try Fixtures.temporaryDirectory("units")
        for name in ["media-worker.service", "media-worker-reprocess@.service"] {
            let text = try String(
                contentsOf: Fixtures.root.appendingPathComponent("systemd").appendingPathComponent(name),
                encoding: .utf8)
            #expect(text.contains("ExecStart=/usr/local/bin/media-worker "))
            let local = text.replacingOccurrences(of: "/usr/local/bin/media-worker", with: Fixtures.executable.path)
            try local.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
            if name.contains("@") {
                try local.write(
                    to: folder.appendingPathComponent("media-worker-reprocess@123.service"), atomically: true,
                    encoding: .utf8)
            }
        }
        return folder
    }

    @Test func unitsVerifyCleanly() async throws {
        let folder = try installedUnits()
        defer { try? FileManager.default.removeItem(at: folder) }
        for unit in ["media-worker.service", "media-worker-reprocess@.service", "media-worker-reprocess@123.service"] {
            let result = try await runProgramAsync(
                Self.analyze, ["verify", folder.appendingPathComponent(unit).path])
            #expect(result.status == 0, "\(unit): \(result.stderr)")
            #expect(result.stderr.isEmpty, "\(unit): \(result.stderr)")
        }
    }

    @Test func daemonIsANotifyServiceWithAWatchdog() throws {
        let text = try String(
            contentsOf: Fixtures.root.appendingPathComponent("systemd/media-worker.service"), encoding: .utf8)
        for line in [
            "Type=notify", "WatchdogSec=60s", "Restart=on-failure", "TimeoutStopSec=60s", "ProtectSystem=strict",
        ] {
            #expect(text.split(separator: "\n").contains { $0 == line }, "\(line)")
        }
    }

    @Test(arguments: ["media-worker.service", "media-worker-reprocess@123.service"])
    func exposureIsAtMostTwo(_ unit: String) async throws {
        let folder = try installedUnits()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await runProgramAsync(
            Self.analyze, ["security", "--offline=true", folder.appendingPathComponent(unit).path])
        let output = String(decoding: result.stdout, as: UTF8.self) + result.stderr
        let match = try #require(output.firstMatch(of: /Overall exposure level for \S+: (\d+\.\d+)/), "\(output)")
        let exposure = try #require(Double(match.1))
        #expect(exposure <= 2.0, "\(unit): \(exposure)")
    }
}
