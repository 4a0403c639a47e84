import ArgumentParser
import Foundation
import JobChild
import Worker

/// `media-worker sandbox-check FOLDER`: confines itself as a job's child does and reports what it
/// can still do, as one JSON line. Started by `doctor` and the tests. Not for people.
struct SandboxCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox-check",
        abstract: "Internal: confine this process as a job's child and report what it can still do.",
        shouldDisplay: false
    )

    @Argument var folder: String
    @Option var parent: Int32
    @Option var outside: String

    func run() throws {
        let check = SandboxCheck.run(folder: folder, parentPID: parent, outsideFile: outside)
        FileHandle.standardOutput.write(try JSONEncoder().encode(check) + Data("\n".utf8))
    }
}
