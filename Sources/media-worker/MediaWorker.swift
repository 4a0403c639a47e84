import ArgumentParser
import Foundation

@main
struct MediaWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media-worker",
        abstract:
            "Background worker for user-uploaded video: probes, thumbnails and transcodes with FFmpeg's libraries.",
        discussion: """
            On media hosts, `media-worker serve` is the daemon (a systemd service): it takes jobs from the \
            app's VideoProcessing table in PostgreSQL and writes results back. `reprocess JOB_ID` runs one \
            job in the foreground; `pause TYPE` / `resume TYPE` stop and restart a processing type \
            fleet-wide. Locally, `migrate` and `enqueue FILE` set up a throwaway database, and \
            `probe FILE` / `process FILE --out DIR` work on a file with no database. Failures print `<code>: \
            <message>` on stderr (codes as in the job table's errorMessage) and exit non-zero.
            """,
        subcommands: [
            ServeCommand.self, ReprocessCommand.self, PauseCommand.self, ResumeCommand.self, DoctorCommand.self,
            EnqueueCommand.self, MigrateCommand.self, ProbeCommand.self, ProcessCommand.self, RunJobCommand.self,
            SandboxCheckCommand.self, StorageCommand.self,
        ]
    )
}
