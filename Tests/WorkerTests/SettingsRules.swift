import Foundation
import TestSupport
import Testing
import Worker

/// Every setting is declared once (`Settings`): the reader, the flags and the Operations table are
/// made from the declarations, and these rules fail when something is written a second time.
@Suite("Settings rules")
struct SettingsRules {
    private func source(_ path: String) throws -> String {
        try String(contentsOf: Fixtures.root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func operationsTableIsTheDeclarations() throws {
        let article = try source("Sources/media-worker/Documentation.docc/Operations.md")
        let start = try #require(article.firstRange(of: "<!-- settings: made from"))
        let end = try #require(article.firstRange(of: "<!-- settings end -->"))
        let table = article[start.upperBound..<end.lowerBound].split(separator: "\n").dropFirst()
            .joined(separator: "\n")
        #expect(table == Settings.markdownTable, "paste into Operations.md:\n\(Settings.markdownTable)")
    }

    @Test func everyVariableIsDeclaredOnce() {
        let variables = Settings.all.flatMap(\.variables)
        #expect(Set(variables).count == variables.count)
        let flags = Settings.all.compactMap(\.flag)
        #expect(Set(flags).count == flags.count)
    }

    /// The daemon's own code names a variable only through its declaration.
    @Test func noVariableIsSpelledOutsideItsDeclaration() throws {
        let folders = ["Sources/Worker", "Sources/media-worker"]
        let names = Settings.all.flatMap(\.variables)
        for folder in folders {
            let root = Fixtures.root.appendingPathComponent(folder)
            let files = try #require(FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil))
            for case let file as URL in files
            where file.pathExtension == "swift" && file.lastPathComponent != "Settings.swift" {
                let code = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
                    .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
                for line in code {
                    for name in names where line.contains("\"\(name)\"") {
                        Issue.record("\(file.lastPathComponent) spells \(name): use Settings")
                    }
                }
            }
        }
    }

    /// Declared defaults are read exactly as the environment's values are.
    @Test func declaredDefaultsAreWhatTheReaderUses() throws {
        let configuration = try Configuration(
            environment: [
                Settings.databaseURL.variable: "postgresql:///app", Settings.storageURL.variable: "file:///m",
            ])
        let seconds: [(Setting, Double)] = [
            (Settings.staleAfter, configuration.staleAfter), (Settings.retryBase, configuration.retryBase),
            (Settings.shutdownGrace, configuration.shutdownGrace), (Settings.jobTimeout, configuration.jobTimeout),
            (Settings.uploadWait, configuration.uploadWait), (Settings.eraseAfter, configuration.eraseAfter),
            (Settings.sweepGrace, configuration.sweepGrace), (Settings.pieceSeconds, configuration.pieceSeconds),
            (Settings.reuseWait, configuration.reuseWait),
        ]
        for (setting, value) in seconds {
            #expect(setting.help.contains("(\(setting.variable); \(Int(value)))."), "\(setting.help)")
        }
        #expect(Settings.maxAttempts.help == "Attempts in all before FAILED (MEDIA_WORKER_MAX_ATTEMPTS; 3).")
        #expect(configuration.maxAttempts == 3)
    }

    /// A bad value names the variable (or, given as a flag, the flag) and what is expected.
    @Test func badValuesSayWhatIsExpected() {
        #expect(throws: ConfigurationError.invalid("MEDIA_WORKER_STALE_AFTER", "soon", "a number of seconds ≥ 0")) {
            try Configuration(environment: ["MEDIA_WORKER_STALE_AFTER": "soon"])
        }
        #expect(throws: ConfigurationError.invalid("MEDIA_WORKER_REUSE", "maybe", "on or off")) {
            try Configuration(environment: ["MEDIA_WORKER_REUSE": "maybe"])
        }
    }
}
