import Foundation
import TestSupport
import Testing

/// The package's shape, read from `swift package dump-package`: the compiler, not review, keeps a
/// job's child away from the database and the store.
@Suite("The package's dependency graph", .oneAtATime)
struct PackageGraphTests {
    /// Target name → the targets and products it depends on directly.
    static func dependencies() throws -> [String: [String]] {
        let swift = ["/opt/swift/usr/bin/swift", "/usr/bin/swift", "/usr/local/bin/swift"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        let scratch = try Fixtures.temporaryDirectory("dump-package")
        let result = try runProgram(
            URL(fileURLWithPath: try #require(swift, "no swift toolchain")),
            ["package", "dump-package", "--package-path", Fixtures.root.path, "--scratch-path", scratch.path])
        #expect(result.status == 0, "\(result.stderr)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let targets = try #require(manifest["targets"] as? [[String: Any]])
        var graph: [String: [String]] = [:]
        for target in targets {
            let name = try #require(target["name"] as? String)
            let entries = target["dependencies"] as? [[String: [Any]]] ?? []
            graph[name] = entries.compactMap { entry in entry.values.first?.first as? String }
        }
        return graph
    }

    /// Everything `target` reaches, itself excluded.
    static func reach(_ target: String, in graph: [String: [String]]) -> Set<String> {
        var seen: Set<String> = []
        var next = graph[target] ?? []
        while let name = next.popLast() {
            if seen.insert(name).inserted { next += graph[name] ?? [] }
        }
        return seen
    }

    @Test func childNeverReachesTheDatabaseOrTheStore() throws {
        let graph = try Self.dependencies()
        #expect(Set(graph["JobChild"] ?? []) == ["Media", "JobVocabulary", "CLinux", "Logging"])
        let reached = Self.reach("JobChild", in: graph)
        for forbidden in ["Queue", "Storage", "Worker", "CLibPQ", "Observability", "AsyncHTTPClient"] {
            #expect(!reached.contains(forbidden), "JobChild reaches \(forbidden)")
        }
    }

    /// Dependencies point one way: the engine knows nothing of jobs' storage or queue, the queue
    /// nothing of media.
    @Test func dependenciesPointOneWay() throws {
        let graph = try Self.dependencies()
        #expect(!Self.reach("Media", in: graph).contains { ["Queue", "Storage", "Worker", "JobChild"].contains($0) })
        #expect(!Self.reach("Queue", in: graph).contains { ["Media", "Storage", "Worker", "JobChild"].contains($0) })
        #expect(Self.reach("Worker", in: graph).isSuperset(of: ["JobChild", "Queue", "Storage", "Media"]))
    }
}
