import Foundation
import Media
public import Testing

/// FFmpeg's libraries print on stderr at their default level (every x264 encode a dozen lines of
/// statistics, every edit list a warning): megabytes over the suite, which drown what failed. The
/// daemon and its children silence them at start-up; the tests, which run media work in their own
/// process, do so the first time a media or daemon suite runs.
private let ffmpegQuiet: Void = FFmpegLog.setLevel(.quiet)

/// For suites whose tests block their thread with media work (synchronous `MediaProcessor.run`,
/// `runProgram`): such tests run one at a time, on a thread of their own. Swift Testing would run
/// them on the cooperative pool, which has one thread per core (two here): while one blocked it,
/// every async test in the process (timers, waits, daemons' deadlines) shared the other.
public struct OneAtATime: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        ffmpegQuiet
        try await withTaskExecutorPreference(BlockingThread.shared) {
            try await Permits.blocking.holding(function)
        }
    }
}

/// The one thread the blocking tests run on (they run one at a time), apart from the cooperative
/// pool, at nice 19: the priority of the daemon's encode children, so the media work these tests
/// run in-process (and the encoder threads and programs it starts, which inherit it) shares the
/// CPU fairly with the encodes of the daemons other tests start, instead of starving them (at
/// nice 0 it took 70 times their share: a long video's pieces then took minutes each).
private final class BlockingThread: TaskExecutor, @unchecked Sendable {
    static let shared = BlockingThread()
    /// Guards `jobs`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init() {
        let thread = Thread { [self] in
            _ = nice(19)  // Linux: this thread only
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.name = "media-worker-tests.blocking"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }
}

/// For suites whose tests start daemons and encodes (async, but each a few CPU seconds of child
/// processes): at most three run at once (`MEDIA_WORKER_TEST_WIDTH`), so on a small machine their
/// time limits (a job that must get going within 30 s, a stop within 15 s) measure media-worker,
/// not how many other tests happened to run beside them.
public struct Heavy: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        ffmpegQuiet
        try await Permits.heavy.holding(function)
    }
}

extension Trait where Self == OneAtATime {
    /// The suite's tests block a thread: run them one at a time (see `OneAtATime`).
    public static var oneAtATime: Self { OneAtATime() }
}

extension Trait where Self == Heavy {
    /// The suite's tests run daemons and encodes: a few at a time (see `Heavy`).
    public static var heavy: Self { Heavy() }
}

/// A number of permits, handed out in the order asked for.
private actor Permits {
    static let blocking = Permits(count: 1)
    static let heavy = Permits(
        count: Int(ProcessInfo.processInfo.environment["MEDIA_WORKER_TEST_WIDTH"] ?? "") ?? 3)

    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = max(1, count) }

    func holding(_ body: @Sendable () async throws -> Void) async throws {
        await acquire()
        do {
            try await body()
        } catch {
            release()
            throw error
        }
        release()
    }

    private func acquire() async {
        guard free == 0 else {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty {
            free += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
