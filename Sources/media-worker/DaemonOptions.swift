import ArgumentParser
import Foundation
import Logging
import Observability
import Worker

/// The database, for every command that uses it: DATABASE_URL, or the flag, which wins.
struct DatabaseOptions: ParsableArguments {
    @Option(Settings.databaseURL) var databaseURL: String?

    /// `configuration` with the flag applied.
    func apply(to configuration: inout Configuration) {
        if let databaseURL { configuration.databaseURL = databaseURL }
    }
}

/// Settings shared by the commands that use the database and storage: each flag, named and
/// explained by its declaration in `Settings`, overrides its environment variable and is read
/// and checked exactly as the variable is.
struct DaemonOptions: ParsableArguments {
    @OptionGroup var database: DatabaseOptions

    @Option(Settings.storageURL) var storageURL: String?
    @Option(Settings.publicURL) var publicURL: String?
    @Option(Settings.concurrency) var concurrency: String?
    @Option(Settings.fastSlots) var fastSlots: String?
    @Option(Settings.pollInterval) var pollInterval: String?
    @Option(Settings.staleAfter) var staleAfter: String?
    @Option(Settings.maxAttempts) var maxAttempts: String?
    @Option(Settings.retryBase) var retryBase: String?
    @Option(Settings.shutdownGrace) var shutdownGrace: String?
    @Option(Settings.jobTimeout) var jobTimeout: String?
    @Option(Settings.metricsAddress) var metricsAddress: String?

    @Flag(name: .shortAndLong, help: "Log debug detail (same as \(Settings.logLevel.variable)=debug).")
    var verbose = false

    @Option(Settings.logFormat) var logFormat: LogFormat?

    /// The flags given, as the variables they override.
    private var overrides: [(setting: Setting, value: String)] {
        [
            (Settings.databaseURL, database.databaseURL), (Settings.storageURL, storageURL),
            (Settings.publicURL, publicURL), (Settings.concurrency, concurrency), (Settings.fastSlots, fastSlots),
            (Settings.pollInterval, pollInterval), (Settings.staleAfter, staleAfter),
            (Settings.maxAttempts, maxAttempts), (Settings.retryBase, retryBase),
            (Settings.shutdownGrace, shutdownGrace), (Settings.jobTimeout, jobTimeout),
            (Settings.metricsAddress, metricsAddress),
        ].compactMap { setting, value in value.map { (setting, $0) } }
    }

    /// The environment, overridden by flags, validated.
    func configuration() throws -> Configuration {
        let configuration = try environmentWithFlags()
        do {
            try configuration.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return configuration
    }

    /// The configuration the environment and the flags make; a bad flag is named as the flag.
    private func environmentWithFlags() throws -> Configuration {
        let overrides = overrides
        var environment = ProcessInfo.processInfo.environment
        for (setting, value) in overrides { environment[setting.variable] = value }
        do {
            return try Configuration(environment: environment)
        } catch .invalid(let variable, let value, let expected) {
            let flag = overrides.first { $0.setting.variable == variable }?.setting.flag
            let name = flag.map { "--\($0) " } ?? "\(variable)="
            throw ValidationError("\(name)\(value) is not \(expected)")
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// A logger on stderr at MEDIA_WORKER_LOG_LEVEL (info by default, debug with --verbose) that
    /// masks the configuration's secrets.
    func makeLogger(label: String, configuration: Configuration) -> Logger {
        makeStandardErrorLogger(
            label: label, verbose: verbose, defaultLevel: .info, format: logFormat, secrets: configuration.secrets)
    }
}

extension Option {
    /// The flag of `setting`, named and explained by its declaration.
    init<T: ExpressibleByArgument>(_ setting: Setting) where Value == T? {
        self.init(name: .customLong(setting.flag!), help: ArgumentHelp(setting.help))
    }
}
