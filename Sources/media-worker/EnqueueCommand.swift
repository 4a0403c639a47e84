import ArgumentParser
import Foundation
import Media
import Queue
import Storage
import Worker

/// `media-worker enqueue FILE`: what the app does on upload, for local runs.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Put a local video into storage and insert its file_upload and video_processing rows (local runs).",
        discussion: "Prints the new job's id."
    )

    @Argument(help: "The video file.")
    var file: String

    @Option(help: "Processing type.")
    var type: ProcessingType = .fullProcessing

    @Option(help: "Quality profile (default: NULL, which means MEDIUM).")
    var profile: QualityProfile?

    @Option(name: .customLong("user-id"), help: "The uploader (created if missing).")
    var userId: Int = 1

    @OptionGroup var options: DaemonOptions

    func run() async throws {
        let configuration = try options.configuration()
        let storage = try configuration.makeStorage()
        let source = URL(fileURLWithPath: file)
        guard let size = try? FileManager.default.attributesOfItem(atPath: source.path)[.size] as? Int64 else {
            throw ValidationError("no file at \(file)")
        }
        let name = source.lastPathComponent
        let key =
            "uploads/\(UUID().uuidString.lowercased())/\(name.filter { $0.isLetter || $0.isNumber || "._-".contains($0) })"
        let mimeType =
            ["mov": "video/quicktime", "webm": "video/webm", "mkv": "video/x-matroska"][
                source.pathExtension.lowercased()] ?? "video/mp4"
        try await storage.upload(source, key: key, contentType: mimeType)
        let connection = PostgresConnection(
            url: configuration.databaseURL, label: "enqueue",
            logger: options.makeLogger(label: "media-worker", configuration: configuration))
        let store = JobStore(tables: configuration.tables)
        let ids = try await connection.withSession("enqueue") { [userId, type, profile] in
            try store.enqueue(
                $0, userId: userId, storageKey: key, storageUrl: storage.publicURL(for: key), fileName: name,
                mimeType: mimeType, fileSize: size, processingType: type.rawValue, qualityProfile: profile?.rawValue)
        }
        await connection.close()
        print(ids.jobId)
    }
}
