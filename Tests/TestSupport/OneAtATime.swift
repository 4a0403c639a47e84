public import Testing

/// For suites whose tests block their thread with media work (synchronous `MediaProcessor.run`,
/// `runProgram`): such tests run one at a time. Swift Testing runs them on the cooperative pool,
/// which has one thread per core (two here); two of them at once would leave none for the async
/// tests' timers and waits, and a daemon test would see its job "never get going".
public struct OneAtATime: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        await ThreadHolders.shared.acquire()
        do {
            try await function()
        } catch {
            await ThreadHolders.shared.release()
            throw error
        }
        await ThreadHolders.shared.release()
    }
}

extension Trait where Self == OneAtATime {
    /// The suite's tests block a thread: run them one at a time (see `OneAtATime`).
    public static var oneAtATime: Self { OneAtATime() }
}

/// The one permit `OneAtATime` tests share, handed out in the order asked for.
private actor ThreadHolders {
    static let shared = ThreadHolders()
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            held = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
