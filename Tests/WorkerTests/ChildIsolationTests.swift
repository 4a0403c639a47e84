import Foundation
import Media
import TestSupport
import Testing

@testable import JobChild
@testable import Worker

@Suite("A job's child holds nothing and reaches nothing", .heavy)
struct ChildIsolationTests {
    /// Spawns `sandbox-check` exactly as a job's child is spawned, while this process holds a
    /// descriptor and a listening socket that are not close-on-exec (as the daemon's metrics
    /// listener was), and reads what the confined child could still do.
    @Test func childIsConfined() async throws {
        let folder = try Fixtures.temporaryDirectory("sandbox")
        let outside = try Fixtures.temporaryDirectory("outside").appendingPathComponent("another-users-input.mp4")
        try FileManager.default.copyItem(atPath: Fixtures.path("no_audio.mp4"), toPath: outside.path)
        let inherited = open("/dev/null", O_RDONLY)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer {
            close(inherited)
            close(listener)
        }
        #expect(inherited > 2 && listener > 2)

        let child = ChildProcess(
            executable: Fixtures.executable,
            arguments: ["sandbox-check", folder.path, "--parent", "\(getpid())", "--outside", outside.path],
            directory: folder)
        let lines = LineCollector()
        // A generous deadline: on a loaded 2-core machine (the whole suite at once) starting it can be slow.
        let exit = try await child.run(timeout: 120) { lines.append($0) }
        #expect(exit == .exited(0))
        let check = try JSONDecoder().decode(SandboxCheck.self, from: try #require(lines.all.first))

        // Beyond stdin, stdout (its pipe) and stderr, only what its own runtime made (libdispatch's
        // epoll, eventfd and timerfd): none of this process's files or sockets.
        let beyondStandard = check.openDescriptors.filter { $0.key > 2 }
        #expect(beyondStandard.values.allSatisfy { $0.hasPrefix("anon_inode:") }, "inherited: \(check.openDescriptors)")
        #expect(check.openDescriptors[0] == "/dev/null" && check.openDescriptors[1]?.hasPrefix("pipe:") == true)
        #expect(check.sandbox.isComplete, "\(check.sandbox)")
        #expect(check.openSocket == "Operation not permitted")
        #expect(check.startProgram != "allowed")
        #expect(check.readParentEnvironment != "allowed")
        #expect(check.readOutsideFile != "allowed")
        #expect(check.writeInFolder == "allowed")
    }

    /// A child that writes a line longer than `ChildProcess.longestLine` (a subverted decoder
    /// flooding its pipe) costs the daemon no more than that: the line is dropped, the lines
    /// around it arrive whole, and lines split across reads are joined.
    @Test func anOverlongLineFromAChildIsDropped() async throws {
        let folder = try Fixtures.temporaryDirectory("flood")
        let longest = ChildProcess.longestLine
        let script = """
            printf 'first\\n'; head -c \(longest + 100_000) /dev/zero | tr '\\0' x; printf '\\nafter\\n'
            head -c 200000 /dev/zero | tr '\\0' y; printf '\\nlast'
            """
        let child = ChildProcess(
            executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script], directory: folder)
        let lines = LineCollector()
        let exit = try await child.run(timeout: 60) { lines.append($0) }
        #expect(exit == .exited(0))
        let texts = lines.all.map { String(decoding: $0, as: UTF8.self) }
        #expect(
            texts.count == 3 && texts.first == "first" && texts.dropFirst().first == "after", "\(texts.map(\.count))")
        #expect(texts.last == String(repeating: "y", count: 200_000))
    }

    @Test func reportedOutputsMustBePlainFilesInTheFolder() throws {
        let folder = try Fixtures.temporaryDirectory("outputs")
        let secret = try Fixtures.temporaryDirectory("elsewhere").appendingPathComponent("secret.jpg")
        try Data(repeating: 7, count: 100).write(to: secret)
        try Data(repeating: 1, count: 100).write(to: folder.appendingPathComponent("poster.jpg"))
        try FileManager.default.createSymbolicLink(
            atPath: folder.appendingPathComponent("thumbnail.jpg").path, withDestinationPath: secret.path)
        try FileManager.default.linkItem(
            atPath: secret.path, toPath: folder.appendingPathComponent("linked.jpg").path)

        /// An output as a (possibly subverted) child's report would carry it.
        func output(_ path: String, bytes: Int = 100) throws -> OutputFile {
            let fields: [String: Any] = [
                "role": "poster", "path": path, "width": 10, "height": 10, "bytes": bytes, "mimeType": "image/jpeg",
            ]
            return try JSONDecoder().decode(OutputFile.self, from: JSONSerialization.data(withJSONObject: fields))
        }
        #expect(OutputCheck.problem(with: try output("poster.jpg"), in: folder) == nil)
        #expect(OutputCheck.problem(with: try output("poster.jpg", bytes: 99), in: folder) != nil)
        #expect(
            OutputCheck.problem(with: try output("thumbnail.jpg"), in: folder)?.contains("not a regular file") == true)
        #expect(OutputCheck.problem(with: try output("linked.jpg"), in: folder)?.contains("hard links") == true)
        #expect(OutputCheck.problem(with: try output("../elsewhere/secret.jpg"), in: folder) != nil)
        #expect(OutputCheck.problem(with: try output(secret.path), in: folder) != nil)
        #expect(OutputCheck.problem(with: try output("missing.jpg"), in: folder) != nil)
    }
}

/// Lines a child wrote, collected from its reader thread.
final class LineCollector: @unchecked Sendable {
    // @unchecked: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [Data] = []

    func append(_ line: Data) { lock.withLock { lines.append(line) } }
    var all: [Data] { lock.withLock { lines } }
}
