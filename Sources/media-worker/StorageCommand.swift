import ArgumentParser
import Foundation
import JobVocabulary
import Storage
import Worker

/// `media-worker storage audit [--sweep]`: storage held against the rows.
struct StorageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage", abstract: "Look at what storage holds against what the rows say.",
        subcommands: [StorageAuditCommand.self])
}

struct StorageAuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "List every stored object no row references, and every reference with no object.",
        discussion: """
            Lists every object under media-worker/jobs/ (every page, on S3) and holds it against one snapshot of the \
            rows: referenced (a live job's outputs, a live upload's variants), in flight (a run still holding its \
            job), or unreferenced, with why: its upload, user or job row was deleted, it is a piece of a run that \
            ended, or no row names it (replaced by a reprocess, or stored by a run that lost its claim). Also lists \
            the objects live rows name that are not stored (there should be none).

            With --sweep it does what the fleet's periodic sweep does: erases what deleted uploads left (their rows \
            first), removes unreferenced objects of deleted uploads, jobs and ended pieces at once, and replaced \
            ones once an earlier audit or sweep has seen them unreferenced for MEDIA_WORKER_SWEEP_GRACE seconds. \
            Only one sweep runs at a time across the fleet. Storage must not be shared with another deployment's \
            media-worker under the same prefix: its objects would be unreferenced here.
            """
    )

    @Flag(help: "Remove what is due (see above), as the daemons' periodic sweep does.")
    var sweep = false

    @Flag(help: "Print the findings as JSON.")
    var json = false

    @OptionGroup var options: DaemonOptions

    func run() async throws {
        let configuration = try options.configuration()
        try configuration.validate()
        let logger = options.makeLogger(label: "media-worker", configuration: configuration)
        let database = configuration.connection(label: "audit", logger: logger, reconnectPatience: .seconds(5))
        let sweeper = StorageSweep(
            context: WorkerContext(
                configuration: configuration, database: database, storage: try configuration.makeStorage(),
                logger: logger))
        let outcome: StorageSweep.Outcome
        do {
            outcome = try await sweeper.runHoldingTheLease(remove: sweep)
            await database.close()
        } catch {
            await database.close()
            throw ValidationError("\(error)")
        }
        print(json ? try JSONFormat.text(Findings(outcome)) : describe(outcome, storage: configuration.storageURL))
        if !outcome.missing.isEmpty || !outcome.failures.isEmpty { throw ExitCode(1) }
    }

    private func describe(_ outcome: StorageSweep.Outcome, storage: String) -> String {
        let entries = outcome.audit.entries
        func line(_ label: String, _ group: [StorageAudit.Entry], _ note: String = "") -> String {
            let bytes = group.reduce(Int64(0)) { $0 + $1.object.bytes }
            return "  \(label.padding(toLength: 13, withPad: " ", startingAt: 0)) \(String(group.count).leftPadded(7)) "
                + "objects  \(Summary.bytes(bytes).leftPadded(9))\(note)"
        }
        var lines = [
            "\(storage.terminalSafe): \(entries.count) objects under \(OutputKeys.prefix), "
                + Summary.bytes(entries.reduce(Int64(0)) { $0 + $1.object.bytes }),
            line("referenced", entries.filter { $0.verdict == .referenced }),
            line("in flight", entries.filter { $0.verdict == .inFlight }, "  (runs still holding their job)"),
            line("unreferenced", outcome.audit.unreferenced),
        ]
        for entry in outcome.audit.unreferenced {
            guard case .unreferenced(let reason) = entry.verdict else { continue }
            let when = reason.removedAtOnce ? "removed at once" : "unreferenced for \(Int(entry.unreferencedFor)) s"
            lines.append(
                "      \(entry.object.key.terminalSafe)  \(Summary.bytes(entry.object.bytes)): \(reason.rawValue) "
                    + "(\(when))")
        }
        lines.append("  missing       \(String(outcome.missing.count).leftPadded(7)) objects live rows name")
        for missing in outcome.missing {
            lines.append(
                "      \(missing.key.terminalSafe) (jobs \(missing.jobs.map(String.init).joined(separator: ", ")))")
        }
        if sweep {
            lines.append(
                "swept: \(outcome.erasedJobs.count) deleted uploads' jobs erased (\(outcome.erasedObjects.count) "
                    + "objects), \(outcome.removed.count) unreferenced objects removed ("
                    + Summary.bytes(outcome.removed.reduce(Int64(0)) { $0 + $1.object.bytes }) + ")")
            lines += outcome.failures.map { "  not removed (the next sweep tries again): \($0.terminalSafe)" }
        }
        return lines.joined(separator: "\n")
    }
}

/// `storage audit --json`.
private struct Findings: Encodable {
    struct Object: Encodable {
        let key: String
        let bytes: Int64
        let verdict: String
        let reason: String?
        let unreferencedSeconds: Double?
    }
    struct Missing: Encodable {
        let key: String
        let jobs: [Int]
    }
    let objects: [Object]
    let missing: [Missing]
    let erasedJobs: [Int]
    let erasedObjects: [String]
    let removed: [String]
    let failures: [String]

    init(_ outcome: StorageSweep.Outcome) {
        objects = outcome.audit.entries.map { entry in
            switch entry.verdict {
            case .referenced:
                Object(
                    key: entry.object.key, bytes: entry.object.bytes, verdict: "referenced", reason: nil,
                    unreferencedSeconds: nil)
            case .inFlight:
                Object(
                    key: entry.object.key, bytes: entry.object.bytes, verdict: "inFlight", reason: nil,
                    unreferencedSeconds: nil)
            case .unreferenced(let reason):
                Object(
                    key: entry.object.key, bytes: entry.object.bytes, verdict: "unreferenced",
                    reason: "\(reason)", unreferencedSeconds: entry.unreferencedFor)
            }
        }
        missing = outcome.missing.map { Missing(key: $0.key, jobs: $0.jobs) }
        erasedJobs = outcome.erasedJobs
        erasedObjects = outcome.erasedObjects
        removed = outcome.removed.map(\.object.key)
        failures = outcome.failures
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
