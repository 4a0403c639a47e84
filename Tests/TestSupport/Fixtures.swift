public import Foundation

/// The committed fixture videos (`Fixtures/`, made by `Fixtures/make-fixtures.sh`).
public enum Fixtures {
    /// The repository's root folder.
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The path of fixture `name`.
    public static func path(_ name: String) -> String {
        root.appendingPathComponent("Fixtures").appendingPathComponent(name).path
    }

    /// A new empty folder under the system's temporary folder, removed when the test process
    /// exits (or earlier by the caller).
    public static func temporaryDirectory(_ label: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("media-worker-\(label)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let first = foldersLock.withLock {
            folders.append(url.path)
            return folders.count == 1
        }
        if first {
            atexit { for path in Fixtures.folders { try? FileManager.default.removeItem(atPath: path) } }
        }
        return url
    }

    nonisolated(unsafe) private static var folders: [String] = []
    private static let foldersLock = NSLock()

    /// The built `media-worker` executable, next to the test bundle.
    public static var executable: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !directory.path.isEmpty, directory.path != "/" {
            let candidate = directory.appendingPathComponent("media-worker")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/media-worker")
    }
}

/// The marker colours `make-fixtures.sh` paints in the corners of every upright picture.
public enum Marker: String, CaseIterable, Sendable {
    case red, green, blue, white

    /// Whether an RGB pixel reads as this marker, allowing for JPEG and chroma subsampling.
    public func matches(_ pixel: [UInt8]) -> Bool {
        let (r, g, b) = (Int(pixel[0]), Int(pixel[1]), Int(pixel[2]))
        switch self {
        case .red: return r > 150 && g < 90 && b < 90
        case .green: return g > 150 && r < 90 && b < 90
        case .blue: return b > 150 && r < 90 && g < 90
        case .white: return r > 170 && g > 170 && b > 170
        }
    }
}

/// The SHA-256 of a file, lowercase hex, computed by `sha256sum` (an independent judge).
public func sha256Hex(_ file: URL) throws -> String {
    let result = try runProgram(URL(fileURLWithPath: "/usr/bin/sha256sum"), [file.path])
    return String(String(decoding: result.stdout, as: UTF8.self).prefix(64))
}
