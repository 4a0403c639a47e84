import ArgumentParser
import Foundation
import JobChild
import Logging
import Media
import Queue
import Storage
import Worker

/// `media-worker doctor`: checks this host can run the worker, saying how to fix what cannot.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this host can run the worker: FFmpeg, settings, database, storage, temporary space.",
        discussion: """
            Reads the same settings as `serve` (environment, then flags). Prints one line per check with \
            a fix for each failure, and exits 1 if any failed. Safe on a live system: the storage check \
            writes, reads back and deletes one small object under media-worker/checks/.
            """
    )

    @OptionGroup var options: DaemonOptions

    @Option(
        name: .customLong("min-free-space"),
        help: "Free space the temporary folder needs: bytes, or with a K, M or G suffix.")
    var minimumFreeSpace = ByteCount(bytes: 2 << 30)

    func run() async throws {
        var report = DoctorReport()
        checkFFmpeg(&report)
        let configuration: Configuration
        do {
            configuration = try options.configuration()
            report.pass("settings", configuration.redactedSummary)
        } catch {
            report.fail(
                "settings", "\(error)",
                fix: "set it in the environment file or as a flag (see `media-worker serve --help`)")
            report.finish()
            throw ExitCode(1)
        }
        await checkDatabase(configuration, &report)
        await checkStorage(configuration, &report)
        checkTemporaryFolder(configuration, &report)
        await checkSandbox(configuration, &report)
        report.finish()
        if report.failures > 0 { throw ExitCode(1) }
    }

    private func checkFFmpeg(_ report: inout DoctorReport) {
        report.pass(
            "FFmpeg libraries",
            FFmpegCapabilities.libraryVersions.map { "\($0.name) \($0.version)" }.joined(separator: ", "))
        let fix =
            "install Debian's FFmpeg 5.1 libraries (apt-get install libavcodec59 libavfilter8 libx264-164 libsvtav1enc1)"
        for (kind, names, present) in [
            ("encoders", FFmpegCapabilities.requiredEncoders, FFmpegCapabilities.hasEncoder),
            ("decoders", FFmpegCapabilities.expectedDecoders, FFmpegCapabilities.hasDecoder),
            ("filters", FFmpegCapabilities.requiredFilters, FFmpegCapabilities.hasFilter),
        ] as [(String, [String], (String) -> Bool)] {
            let missing = names.filter { !present($0) }
            if missing.isEmpty {
                report.pass(kind, names.joined(separator: ", "))
            } else {
                report.fail(kind, "missing: \(missing.joined(separator: ", "))", fix: fix)
            }
        }
    }

    private func checkDatabase(_ configuration: Configuration, _ report: inout DoctorReport) async {
        var logger = options.makeLogger(label: "media-worker.doctor", configuration: configuration)
        logger.logLevel = .error
        let connection = configuration.connection(label: "doctor", logger: logger, reconnectPatience: .zero)
        await checkDatabase(connection, configuration, &report)
        await connection.close()
    }

    private func checkDatabase(
        _ connection: PostgresConnection, _ configuration: Configuration, _ report: inout DoctorReport
    ) async {
        let store = JobStore(tables: configuration.tables)
        do {
            let version = try await connection.withSession("connect") { try store.serverVersion($0) }
            report.pass("database", "PostgreSQL \(version) at \(configuration.redactedDatabaseURL)")
        } catch {
            report.fail(
                "database", "cannot connect to \(configuration.redactedDatabaseURL): \(Self.oneLine(error))",
                fix: "check DATABASE_URL (host, port, user, password, database name) and that PostgreSQL is running")
            return
        }
        if let transport = try? await connection.withSession("look at the connection", { $0.transport }) {
            if transport.encrypted || transport.local {
                report.pass("tls", transport.description)
            } else {
                report.fail(
                    "tls", "\(transport.description): the password and every row cross the network in the clear",
                    fix: "add sslmode=verify-full&sslrootcert=/path/to/ca.pem to DATABASE_URL")
            }
        }
        if let missing = try? await connection.withSession("check privileges", { try store.missingPrivileges($0) }) {
            if missing.isEmpty {
                report.pass("privileges", "the database user may read and update jobs and uploads")
            } else {
                report.fail(
                    "privileges", "the database user lacks \(missing.joined(separator: ", "))",
                    fix: "GRANT them to the user in DATABASE_URL (see Operations: Production PostgreSQL)")
            }
        }
        do {
            let problems = try await connection.withSession("check the schema") { try store.schemaProblems($0) }
            if problems.isEmpty {
                report.pass(
                    "schema",
                    "\(configuration.tables.videoProcessing), \(configuration.tables.fileUpload), "
                        + "\(configuration.tables.user): every column and enum value media-worker uses")
            } else {
                report.fail(
                    "schema", problems.joined(separator: "; "),
                    fix: "run the app's migrations (`media-worker migrate` on a local database), "
                        + "or point MEDIA_WORKER_TABLE_* at the right tables")
            }
        } catch {
            report.fail("schema", Self.oneLine(error), fix: "check the database user may read the catalog")
        }
        do {
            let agreement = try await connection.withSession("read the schema version") {
                try store.schemaAgreement($0)
            }
            if case .behind = agreement {
                report.fail(
                    "migrations", agreement.description,
                    fix: "run `media-worker migrate --own-tables-only` "
                        + "(it changes media-worker's tables, nothing of the app's)")
            } else {
                report.pass("migrations", agreement.description)
            }
        } catch {
            report.fail("migrations", Self.oneLine(error), fix: "check the database user may read the catalog")
        }
        let tables = configuration.tables
        let present = { (table: String) async -> Bool in
            (try? await connection.withSession("look for media-worker's own tables") { try store.hasTable($0, table) })
                == true
        }
        let fix =
            "run `media-worker migrate --own-tables-only` (it creates media-worker's tables, nothing of the app's)"
        if !configuration.reuseOutputs {
            report.pass("reuse", "off (MEDIA_WORKER_REUSE=off)")
        } else if await present(tables.outputs) {
            report.pass("reuse", "\(tables.outputs): forwarded videos reuse earlier outputs")
        } else {
            report.fail(
                "reuse", "\(tables.outputs) does not exist: every forwarded video is processed again",
                fix: fix + ", or set MEDIA_WORKER_REUSE=off")
        }
        if await present(tables.paused) {
            let paused = (try? await connection.withSession("list paused types") { try store.pausedTypes($0) }) ?? []
            report.pass(
                "pauses",
                paused.isEmpty
                    ? "\(tables.paused): nothing paused"
                    : "paused: " + paused.map(\.processingType.rawValue).joined(separator: ", ")
                        + " (`media-worker resume TYPE` to resume)")
        } else {
            report.fail("pauses", "\(tables.paused) does not exist: `media-worker pause` cannot stop a type", fix: fix)
        }
        if configuration.variantAfterReuses == 0 {
            report.pass("variants", "off (MEDIA_WORKER_VARIANT_AFTER_REUSES=0)")
        } else if await present(tables.variants) {
            report.pass(
                "variants",
                "\(tables.variants): a video reused \(configuration.variantAfterReuses) times gets its AV1 variant")
        } else {
            report.fail(
                "variants", "\(tables.variants) does not exist: popular videos get no efficient variant",
                fix: fix + ", or set MEDIA_WORKER_VARIANT_AFTER_REUSES=0")
        }
        if await present(tables.unreferenced), await present(tables.sweeps) {
            report.pass(
                "sweep",
                "deleted uploads' outputs go within \(Int(configuration.eraseAfter)) s, replaced objects after "
                    + "\(Int(configuration.sweepGrace)) s (`media-worker storage audit` lists what storage holds)")
        } else {
            report.fail(
                "sweep",
                "\(tables.unreferenced) or \(tables.sweeps) does not exist: storage is never swept, deleted uploads' "
                    + "outputs stay", fix: fix)
        }
    }

    private func checkStorage(_ configuration: Configuration, _ report: inout DoctorReport) async {
        do {
            let storage = try configuration.makeStorage()
            try await storage.check()
            report.pass("storage", "\(storage.redactedDescription): write, read back and delete work")
        } catch {
            report.fail(
                "storage", Self.oneLine(error),
                fix: configuration.storageURL.hasPrefix("s3://")
                    ? "check MEDIA_STORAGE_URL (bucket, endpoint, region) and the AWS_* credentials"
                    : "check MEDIA_STORAGE_URL names a folder this user can write (mkdir -p, chown)")
        }
    }

    private func checkTemporaryFolder(_ configuration: Configuration, _ report: inout DoctorReport) {
        let folder = configuration.temporaryDirectory
        let probe = URL(fileURLWithPath: folder).appendingPathComponent(".media-worker-doctor-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: probe.path, contents: Data("ok".utf8)) else {
            report.fail(
                "temporary folder", "cannot write in \(folder)",
                fix: "set MEDIA_WORKER_TMPDIR to a folder this user can write (systemd: CacheDirectory=)")
            return
        }
        try? FileManager.default.removeItem(at: probe)
        var stats = statvfs()
        guard statvfs(folder, &stats) == 0 else {
            report.fail("temporary folder", "cannot read free space of \(folder)", fix: "check the folder exists")
            return
        }
        let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
        let text = "\(folder): \(free >> 20) MiB free"
        if free >= minimumFreeSpace.bytes {
            report.pass("temporary folder", text)
        } else {
            report.fail(
                "temporary folder", "\(text), less than \(minimumFreeSpace.bytes >> 20) MiB",
                fix: "free space, or point MEDIA_WORKER_TMPDIR at a bigger disk (a job needs its input and outputs)")
        }
    }

    /// Spawns a confined child as a job's is spawned and reports what confines it. Fails whenever
    /// the confinement is incomplete, even where `MEDIA_WORKER_SANDBOX=partial` lets `serve` run.
    private func checkSandbox(_ configuration: Configuration, _ report: inout DoctorReport) async {
        do {
            let check = try await SandboxCheck.spawn(
                executable: configuration.childExecutable, temporaryDirectory: configuration.temporaryDirectory)
            let sandbox = check.sandbox
            let confinement =
                "Landlock \(sandbox.landlockABI.map { "ABI \($0)" } ?? "unavailable"), seccomp \(sandbox.seccomp ? "on" : "off"), "
                + "no new privileges \(sandbox.noNewPrivileges ? "on" : "off")"
            if let problem = check.problem {
                let policy =
                    configuration.sandboxPolicy == .partial
                    ? " (MEDIA_WORKER_SANDBOX=partial: serve runs jobs anyway, DANGEROUS)"
                    : " (serve stays not ready and runs no job)"
                report.fail("job sandbox", "\(confinement): \(problem)\(policy)", fix: SandboxCheck.fix)
            } else {
                report.pass(
                    "job sandbox",
                    "\(confinement); a job's child could not open a socket, read the daemon's environment or files outside "
                        + "its folder, or start a program")
            }
        } catch {
            report.fail("job sandbox", "could not start a confined child: \(error)", fix: SandboxCheck.fix)
        }
    }

    /// The error on one line; for the database with libpq's own words (which never hold the password).
    private static func oneLine(_ error: any Error) -> String {
        let text = (error as? PostgresError).map { String(reflecting: $0) } ?? "\(error)"
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
    }
}

/// The checks' lines as they are made, and the count of failures.
struct DoctorReport {
    private(set) var failures = 0
    private var passes = 0

    mutating func pass(_ name: String, _ detail: String) {
        passes += 1
        print("✔ \(name.padding(toLength: 17, withPad: " ", startingAt: 0)) \(detail)")
    }

    mutating func fail(_ name: String, _ problem: String, fix: String) {
        failures += 1
        print("✘ \(name.padding(toLength: 17, withPad: " ", startingAt: 0)) \(problem)")
        print("  \(String(repeating: " ", count: 17)) fix: \(fix)")
    }

    func finish() {
        print(failures == 0 ? "all \(passes) checks passed" : "\(failures) of \(passes + failures) checks failed")
    }
}
