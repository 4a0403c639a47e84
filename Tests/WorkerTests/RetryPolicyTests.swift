import Foundation
import Media
import Observability
import Storage
import TestSupport
import Testing

@testable import Queue
@testable import Worker

@Suite("Retries")
struct RetryPolicyTests {
    /// `crashed` and `timeout` are what a crafted input causes at will: retried once, never more,
    /// while a storage failure keeps its attempts.
    @Test(arguments: [
        (FailureCode.crashed, 1, JobStatus.pending), (.crashed, 2, .failed), (.timeout, 2, .failed),
        (.storage, 2, .pending), (.corruptInput, 1, .failed),
    ])
    func failureOnAttempt(_ code: FailureCode, _ attempt: Int, _ expected: JobStatus) async throws {
        let url = try await TestDatabase.create()
        let connection = PostgresConnection(url: url, label: "t", logger: .init(label: "test"))
        defer { Task { await connection.close() } }
        let store = JobStore()
        let job = try #require(
            try await connection.withSession("claim") { session in
                let ids = try store.enqueue(
                    session, userId: 1, storageKey: "uploads/\(UUID().uuidString).mp4", storageUrl: "file:///x",
                    fileName: "x.mp4", mimeType: "video/mp4", fileSize: 10, processingType: .metadata,
                    qualityProfile: nil)
                try session.execute(
                    "UPDATE video_processing SET \"retryCount\" = $2 WHERE \"id\" = $1",
                    [String(ids.jobId), String(attempt - 1)])
                return try store.claim(session, retryBase: 0, uploadWait: 3600, host: "h", pid: 1, jobId: ids.jobId)
            })
        let storage = try Fixtures.temporaryDirectory("store")
        let configuration = try Configuration(
            environment: [
                "DATABASE_URL": url, "MEDIA_STORAGE_URL": storage.absoluteString, "MEDIA_WORKER_MAX_ATTEMPTS": "3",
            ])
        let context = WorkerContext(
            configuration: configuration, database: connection, storage: LocalStorage(root: storage, publicBase: nil),
            logger: .init(label: "test"), identity: WorkerIdentity(host: "h", pid: 1))
        let run = Run(job: job, context: context, onFailure: { _, _ in })
        _ = try await run.fail(JobFailure(code, "test"))
        let row = try #require(
            try await TestDatabase.query(
                url, "SELECT \"status\"::text AS s FROM video_processing WHERE id = $1", [String(job.id)]
            ).first)
        #expect(try row.require("s", as: String.self) == expected.rawValue)
    }
}
