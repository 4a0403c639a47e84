import Foundation
import Logging
import Observability
import TestSupport
import Testing

/// Collects written lines, for log handler tests.
final class Lines: @unchecked Sendable {
    // @unchecked: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    var all: [String] { lock.withLock { lines } }
    func append(_ line: String) { lock.withLock { lines.append(line) } }
}

@Suite("Log lines")
struct LogLineRules {
    func logger(_ format: LogFormat, journald: Bool = false, secrets: [String] = []) -> (Logger, Lines) {
        let lines = Lines()
        var logger = Logger(label: "test") { _ in
            LineLogHandler(level: .info, format: format, journald: journald, secrets: secrets) { lines.append($0) }
        }
        logger[metadataKey: "attempt"] = "2"
        logger[metadataKey: "job"] = "12"
        logger[metadataKey: "type"] = "COMPRESSION"
        return (logger, lines)
    }

    @Test func logfmtPutsTheJobFirstAndQuotesWhatNeedsIt() throws {
        let (logger, lines) = logger(.logfmt)
        logger.warning("job failed", metadata: ["error": "corrupt_input: bad \"moov\"\nbox", "bytes": "42"])
        logger.debug("not shown at info")
        #expect(lines.all.count == 1)
        let line = try #require(lines.all.first)
        #expect(line.hasPrefix("time=20"))
        #expect(
            line.hasSuffix(
                #"level=warning msg="job failed" job=12 type=COMPRESSION attempt=2 bytes=42 error="corrupt_input: bad \"moov\"\nbox""#
            ))
        #expect(!line.contains("\n"))
    }

    @Test func jsonLinesParse() throws {
        let (logger, lines) = logger(.json)
        logger.info("job ended", metadata: ["outcome": "completed"])
        let line = try #require(lines.all.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["msg"] == "job ended")
        #expect(object["level"] == "info")
        #expect(object["job"] == "12" && object["type"] == "COMPRESSION" && object["attempt"] == "2")
        #expect(object["outcome"] == "completed")
        #expect(object["time"] != nil)
    }

    @Test func journaldGetsPrioritiesAndNoTimestamp() throws {
        let (logger, lines) = logger(.logfmt, journald: true)
        logger.error("storage unusable")
        logger.info("job started")
        #expect(lines.all[0].hasPrefix("<3>level=error msg=\"storage unusable\""))
        #expect(lines.all[1].hasPrefix("<6>level=info"))
        #expect(!lines.all.joined().contains("time="))
    }

    @Test func secretsAreMaskedWhereverTheyAppear() throws {
        let (logger, lines) = logger(.logfmt, secrets: ["hunter2hunter2", "wJalrXUtnFEMI"])
        logger.error("connect failed for postgresql://bob:hunter2hunter2@db", metadata: ["key": "x-wJalrXUtnFEMI-y"])
        let line = try #require(lines.all.first)
        #expect(!line.contains("hunter2hunter2") && !line.contains("wJalrXUtnFEMI"))
        #expect(line.contains("bob:***@db") && line.contains("x-***-y"))
    }

    @Test func shortSecretsAreMaskedToo() throws {
        let (logger, lines) = logger(.logfmt, secrets: ["pw1"])
        logger.error("connect failed for postgresql://bob:pw1@db")
        #expect(try #require(lines.all.first).contains("bob:***@db"))
    }
}

@Suite("sd_notify")
struct SystemdNotifierTests {
    @Test func sendsDatagramsToTheNotifySocket() async throws {
        let listener = try DatagramListener()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "2000000"])
        #expect(notifier.isEnabled)
        #expect(notifier.watchdogInterval == .seconds(1))
        notifier.ready(status: "0 running")
        notifier.watchdog()
        notifier.stopping(status: "stopping", extend: .seconds(45))
        #expect(await listener.wait(timeout: 5) { $0.hasPrefix("STOPPING=1") })
        let messages = listener.messages
        #expect(messages.count == 3)
        #expect(messages[0].hasPrefix("READY=1\nSTATUS=0 running\nMAINPID="))
        #expect(messages[1] == "WATCHDOG=1")
        #expect(messages[2] == "STOPPING=1\nSTATUS=stopping\nEXTEND_TIMEOUT_USEC=45000000")
    }

    @Test func silentWithoutASocketAndWatchdogOnlyForThisProcess() {
        let none = SystemdNotifier(environment: [:])
        #expect(!none.isEnabled && none.watchdogInterval == nil)
        none.ready(status: "nobody listens")
        let other = SystemdNotifier(environment: ["WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"])
        #expect(other.watchdogInterval == nil)
    }
}
