import Foundation
public import Logging

/// Runs the stages of one job on a local file, writing outputs into a folder. Knows nothing of
/// queues or databases: the daemon and `media-worker process` both call this.
public enum MediaProcessor {
    /// What to do.
    public struct Request: Sendable {
        public var inputPath: String
        public var outputDirectory: String
        public var type: ProcessingType
        public var profile: QualityProfile
        public var limits: MediaLimits
        /// Decoder and encoder threads; 0 sizes them to the machine.
        public var threads: Int
        public var thumbnails: ThumbnailSettings

        public init(
            inputPath: String, outputDirectory: String, type: ProcessingType, profile: QualityProfile = .medium,
            limits: MediaLimits = .default, threads: Int = 0, thumbnails: ThumbnailSettings = ThumbnailSettings()
        ) {
            self.inputPath = inputPath
            self.outputDirectory = outputDirectory
            self.type = type
            self.profile = profile
            self.limits = limits
            self.threads = threads
            self.thumbnails = thumbnails
        }
    }

    /// The processing types this build can run.
    public static let availableTypes: [ProcessingType] = [.metadata, .thumbnail]

    /// Runs `request`, calling `progress` with 0…1 as work advances (on the calling thread).
    /// Blocks: call it from a thread of its own, not from Swift's cooperative pool.
    public static func run(
        _ request: Request, logger: Logger, progress: (Double) -> Void = { _ in }
    ) throws(MediaError) -> ProcessingReport {
        let started = ContinuousClock.now
        guard availableTypes.contains(request.type) else {
            throw .unsupported("\(request.type.rawValue) is not available in this build of media-worker")
        }
        let outputDirectory = URL(fileURLWithPath: request.outputDirectory, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw .outputUnwritable(path: request.outputDirectory, reason: error.localizedDescription)
        }
        let opened = try Probe.open(path: request.inputPath, limits: request.limits)
        logger.debug(
            "probed input", metadata: ["container": "\(opened.info.container)", "codec": "\(opened.info.video.codec)"])
        progress(0.05)

        var outputs: [String: OutputFile] = [:]
        var thumbnails: [StillImage] = []
        if request.type == .thumbnail {
            let result = try Thumbnailer(settings: request.thumbnails, threads: request.threads, logger: logger)
                .run(opened, outputDirectory: outputDirectory, limits: request.limits) { progress(0.05 + 0.95 * $0) }
            thumbnails = [result.poster, result.thumbnail]
            for still in thumbnails { outputs[still.role] = OutputFile(still) }
        }
        progress(1)
        return ProcessingReport(
            type: request.type, profile: request.profile, input: opened.info, outputs: outputs, thumbnails: thumbnails,
            elapsedMs: Int((ContinuousClock.now - started) / .milliseconds(1)))
    }
}
