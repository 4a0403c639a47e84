import ArgumentParser
import Foundation

@main
struct MediaWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media-worker",
        abstract:
            "Background worker for user-uploaded video: probes, thumbnails and transcodes with FFmpeg's libraries.",
        discussion: """
            Local runs need no database: `media-worker probe FILE` reports what a video holds, and
            `media-worker process FILE --out DIR --type THUMBNAIL` runs a processing stage on it.
            Failures print `<code>: <message>` on stderr (codes as in the job table's errorMessage)
            and exit non-zero.
            """,
        subcommands: [ProbeCommand.self, ProcessCommand.self]
    )
}
