import Foundation
import Queue
import Testing

@testable import Storage
@testable import Worker

/// How the audit judges each stored object against one snapshot of the rows: a pure rule, tested
/// without storage or a database.
@Suite("Storage audit rules")
struct StorageAuditRules {
    static let token = "2026-12-07 01:42:10.123456"
    static let run = "20261207014210123456"
    static let old = "2026-12-07 01:40:00.5"

    func object(_ key: String, bytes: Int64 = 10) -> StoredObject {
        StoredObject(key: key, bytes: bytes, modified: Date(timeIntervalSince1970: 0))
    }

    /// Job 1 completed twice (the second run's outputs live, the first's replaced); job 2 runs
    /// now; job 3's upload was deleted; job 4's row is gone; job 5 is a forward sharing job 1's
    /// video; job 6 has popular-video work running.
    var references: JobStore.StorageReferences {
        var references = JobStore.StorageReferences()
        references.jobKeys = [
            "media-worker/jobs/1/\(Self.run)/video.mp4": ([1, 5], true),
            "media-worker/jobs/1/\(Self.run)/poster.jpg": ([1], true),
            "media-worker/jobs/3/\(Self.run)/video.mp4": ([3], false),
            "media-worker/jobs/1/\(Self.run)/preview.mp4": ([1], true),
        ]
        references.jobKeys["media-worker/jobs/6/variant-abc/video_av1.mp4"] = ([6, 7], true)
        references.uploadKeys = ["media-worker/jobs/4/\(Self.run)/video.mp4": [40]]
        references.running = [2: Self.token]
        references.variantWork = [6: ["def"]]
        references.jobs = [1: true, 2: true, 3: false, 5: true, 6: true]
        references.unreferencedFor = ["media-worker/jobs/1/20261207014000/video.mp4": 4000]
        return references
    }

    @Test(arguments: [
        ("media-worker/jobs/1/\(run)/video.mp4", StorageAudit.Verdict.referenced),
        ("media-worker/jobs/6/variant-abc/video_av1.mp4", .referenced),
        ("media-worker/jobs/2/\(run)/video.mp4", .inFlight),
        ("media-worker/jobs/2/\(run)/pieces/3-1a2b3c4d.mp4", .inFlight),
        ("media-worker/jobs/6/variant-def/video_av1.mp4", .inFlight),
        ("media-worker/jobs/2/20261207013000/video.mp4", .unreferenced(.replaced)),
        ("media-worker/jobs/1/20261207014000/video.mp4", .unreferenced(.replaced)),
        ("media-worker/jobs/1/20261207014000/pieces/0-00000000.mp4", .unreferenced(.piece)),
        ("media-worker/jobs/3/\(run)/video.mp4", .unreferenced(.uploadDeleted)),
        ("media-worker/jobs/4/\(run)/video.mp4", .unreferenced(.jobDeleted)),
        ("media-worker/jobs/2/video.mp4", .inFlight),
        ("media-worker/jobs/1/video.mp4", .unreferenced(.replaced)),
        ("media-worker/jobs/x/y.mp4", .unreferenced(.replaced)),
    ])
    func verdicts(_ key: String, _ verdict: StorageAudit.Verdict) {
        #expect(StorageAudit.verdict(of: key, references) == verdict, "\(key)")
    }

    /// Erased and piece objects go at the first sweep; replaced ones after the grace period,
    /// counted from when a sweep first saw them unreferenced; missing objects are reported.
    @Test func removalWaitsForTheGraceOnlyForReplacedObjects() {
        let audit = StorageAudit(
            objects: [
                object("media-worker/jobs/1/\(Self.run)/video.mp4"),
                object("media-worker/jobs/1/20261207014000/video.mp4"),
                object("media-worker/jobs/1/20261207014100/poster.jpg"),
                object("media-worker/jobs/3/\(Self.run)/video.mp4"),
                object("media-worker/jobs/1/20261207014000/pieces/0-00000000.mp4"),
                object("media-worker/jobs/6/variant-abc/video_av1.mp4"),
            ], references: references)
        #expect(audit.unreferenced.count == 4)
        #expect(
            Set(audit.removable(grace: 3600).map(\.object.key)) == [
                "media-worker/jobs/1/20261207014000/video.mp4", "media-worker/jobs/3/\(Self.run)/video.mp4",
                "media-worker/jobs/1/20261207014000/pieces/0-00000000.mp4",
            ])
        #expect(audit.removable(grace: 0).count == 4)
        #expect(
            audit.unlisted.map(\.key) == [
                "media-worker/jobs/1/\(Self.run)/poster.jpg", "media-worker/jobs/1/\(Self.run)/preview.mp4",
            ])
        #expect(audit.unlisted.first?.jobs == [1])
    }

    /// Keys are made per run: a run's folder is its claim token's digits, so two claims of one job
    /// never share a key; a key says whose it is.
    @Test func keysAreOwnedByTheirRun() {
        let first = OutputKeys.output(jobId: 7, token: Self.old, role: .video)
        let second = OutputKeys.output(jobId: 7, token: Self.token, role: .video)
        #expect(first == "media-worker/jobs/7/202612070140005/video.mp4" && first != second)
        #expect(OutputKeys.owner(of: second)! == (7, Self.run))
        #expect(
            OutputKeys.piece(jobId: 7, token: Self.token, index: 2, claim: "1A2B3C4D-0000")
                == "media-worker/jobs/7/\(Self.run)/pieces/2-1a2b3c4d.mp4")
        #expect(
            OutputKeys.variant(jobId: 7, claim: "ABC", role: .videoAv1)
                == "media-worker/jobs/7/variant-abc/video_av1.mp4")
    }
}
