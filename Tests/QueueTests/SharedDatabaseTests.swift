import Foundation
import Queue
import TestSupport
import Testing

/// media-worker on the app's own database: it says who it is, bounds every statement, and never
/// waits on a lock the app holds.
@Suite("A good citizen of a shared database")
struct SharedDatabaseTests {
    @Test func connectionsNameThemselvesAndBoundTheirStatements() async throws {
        let url = try await TestDatabase.create()
        let limits = StatementLimits(statementTimeout: .milliseconds(1500), lockTimeout: .milliseconds(250))
        let connection = PostgresConnection(url: url, label: "claims", logger: .init(label: "test"), limits: limits)
        defer { Task { await connection.close() } }
        let (name, statementTimeout, lockTimeout) = try await connection.withSession("look") { session in
            let row = try session.query(
                """
                SELECT application_name AS name, current_setting('statement_timeout') AS st,
                    current_setting('lock_timeout') AS lt
                FROM pg_stat_activity WHERE pid = pg_backend_pid()
                """
            ).all[0]
            return (try row.text("name"), try row.text("st"), try row.text("lt"))
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(name == "media-worker \(hostName) \(getpid()) claims")
        #expect(statementTimeout == "1500ms" && lockTimeout == "250ms")
        let error = try await #require(throws: PostgresError.self) {
            try await connection.withSession("sleep") { try $0.query("SELECT pg_sleep(5)", operation: "sleep") }
        }
        #expect(error.sqlState == "57014" && error.kind == .query)
        #expect(error.description.contains("statement timeout (MEDIA_WORKER_STATEMENT_TIMEOUT)"))
    }

    /// The app holds job 1's row (say, an admin screen editing it in a transaction): a claim
    /// takes job 2 at once, and a write to job 1 gives up after the lock timeout.
    @Test func claimPassesARowTheAppHoldsAndWritesDoNotWaitForIt() async throws {
        let url = try await TestDatabase.create()
        let held = try await insertJob(url)
        let free = try await insertJob(url)
        let app = PostgresConnection(url: url, label: "app", logger: .init(label: "test"))
        try await app.withSession("hold a row") { session in
            try session.executeOutsideTransaction("BEGIN", operation: "begin")
            try session.query("SELECT id FROM video_processing WHERE id = $1 FOR UPDATE", [String(held)])
        }
        let limits = StatementLimits(statementTimeout: .seconds(10), lockTimeout: .milliseconds(300))
        let worker = PostgresConnection(url: url, label: "worker", logger: .init(label: "test"), limits: limits)
        let job = try await worker.withSession("claim") {
            try JobStore().claim($0, retryBase: 0, uploadWait: 3600, host: "h", pid: 1)
        }
        #expect(job?.id == free)
        let error = try await #require(throws: PostgresError.self) {
            try await worker.withSession("cancel the held job") {
                try $0.execute("UPDATE video_processing SET progress = 1 WHERE id = $1", [String(held)])
            }
        }
        #expect(error.sqlState == "55P03", "\(error.debugDescription)")
        await app.close()
        await worker.close()
    }

    /// A worker frozen (SIGSTOP, a paused VM) between a heartbeat's UPDATE and its COMMIT holds
    /// the job's row; rescue skips locked rows. The server ends a transaction idle for longer than
    /// a statement may run, so the row is free again and the job is rescued.
    @Test func aFrozenTransactionLetsGoOfItsRows() async throws {
        let url = try await TestDatabase.create()
        let id = try await insertJob(url)
        _ = try await TestDatabase.query(
            url,
            "UPDATE video_processing SET status = 'PROCESSING', \"updatedAt\" = now() - interval '1 hour' WHERE id = $1",
            [String(id)])
        let limits = StatementLimits(statementTimeout: .seconds(3), lockTimeout: .milliseconds(250))
        let frozen = PostgresConnection(
            url: url, label: "frozen", logger: .init(label: "test"), reconnectPatience: .zero, limits: limits)
        defer { Task { await frozen.close() } }
        let rescuer = PostgresConnection(url: url, label: "rescuer", logger: .init(label: "test"))
        defer { Task { await rescuer.close() } }
        let rescue = { @Sendable in
            try await rescuer.withSession("rescue") {
                try JobStore().rescueStale($0, staleAfter: 60, maxAttempts: 3, host: "h", pid: 1).map(\.id)
            }
        }
        // Connected before the freeze: the rescue inside it must be done well within the 3 s the
        // server lets the frozen transaction idle (on a loaded host a first connection took longer
        // than the 1.5 s this test once allowed).
        _ = try await rescuer.withSession("connect") { try JobStore().depth($0) }
        let passedBy = Box()
        let ended: Void? = try? await frozen.withSession("freeze in a transaction") { session in
            try session.transaction("heartbeat, then frozen") {
                try session.execute("UPDATE video_processing SET progress = 5 WHERE id = $1", [String(id)])
                // Frozen: rescue passes the row by while the session idles in its transaction.
                let semaphore = DispatchSemaphore(value: 0)
                Task {
                    passedBy.ids = try? await rescue()
                    semaphore.signal()
                }
                semaphore.wait()
                Thread.sleep(forTimeInterval: 4.5)
            }
        }
        #expect(passedBy.ids == [])
        #expect(ended == nil, "the server kept a transaction idle for 4.5 s")
        #expect(try await rescue() == [id])
    }

    /// `sslmode=verify-full` with the right CA connects over TLS (and `doctor` says so); with a CA
    /// that did not sign the server's certificate it fails at once, saying what to fix.
    @Test func tlsIsVerifiedAndAnUntrustedServerIsRefused() async throws {
        let cluster = try await onOwnThread { try TestDatabase.tlsCluster() }
        let trusted = PostgresConnection(
            url: cluster.url(rootCertificate: cluster.ca), label: "tls", logger: .init(label: "test"),
            reconnectPatience: .seconds(5))
        let transport = try await trusted.withSession("look") { $0.transport }
        #expect(transport.encrypted && transport.description.hasPrefix("TLSv1.3 ("), "\(transport)")
        let serverSees = try await trusted.withSession("ask the server") {
            try $0.query("SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").first?.text("ssl")
        }
        #expect(serverSees == "true")
        await trusted.close()

        let untrusting = PostgresConnection(
            url: cluster.url(rootCertificate: cluster.otherCA), label: "tls", logger: .init(label: "test"))
        let started = ContinuousClock.now
        let error = try await #require(throws: PostgresError.self) {
            try await untrusting.withSession("connect") { _ in true }
        }
        #expect(error.kind == .tls)
        #expect(error.description.contains("certificate verify failed"), "\(error)")
        #expect(error.description.contains("check that sslrootcert in DATABASE_URL names the CA"))
        #expect(ContinuousClock.now - started < .seconds(10), "not retried for the 30 s a lost server gets")

        let doctor = try await runProgramAsync(
            Fixtures.executable, ["doctor"],
            environment: [
                "PATH": "/usr/bin:/bin", "DATABASE_URL": cluster.url(rootCertificate: cluster.ca),
                "MEDIA_STORAGE_URL": try Fixtures.temporaryDirectory("store").absoluteString,
            ])
        let report = String(decoding: doctor.stdout, as: UTF8.self)
        #expect(report.contains("✔ tls               TLSv1.3 ("), "\(report)")
        #expect(report.contains("to localhost"))
    }
}

/// A value set on one thread and read on another, after a semaphore ordered them.
private final class Box: @unchecked Sendable {
    var ids: [Int]?
}
