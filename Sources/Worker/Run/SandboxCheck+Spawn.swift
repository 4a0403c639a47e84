public import Foundation
public import JobChild

extension SandboxCheck {
    /// Spawns `media-worker sandbox-check` exactly as a job's child is spawned, in a fresh folder
    /// under `temporaryDirectory`, and returns what it could still do.
    public static func spawn(executable: URL, temporaryDirectory: String) async throws -> SandboxCheck {
        let folder = URL(fileURLWithPath: temporaryDirectory)
            .appendingPathComponent("media-worker-sandbox-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: folder) }
        let child = ChildProcess(
            executable: executable,
            arguments: ["sandbox-check", folder.path, "--parent", "\(getpid())", "--outside", "/etc/hostname"],
            directory: folder)
        let line = LastLine()
        _ = try await child.run(timeout: 30) { line.set($0) }
        guard let data = line.value else { throw ChildError.spawn("the sandbox check printed nothing") }
        return try JSONDecoder().decode(SandboxCheck.self, from: data)
    }
}

/// The last line a child wrote.
private final class LastLine: @unchecked Sendable {
    // @unchecked: `line` is only touched under `lock`.
    private let lock = NSLock()
    private var line: Data?

    func set(_ value: Data) { lock.withLock { line = value } }
    var value: Data? { lock.withLock { line } }
}
