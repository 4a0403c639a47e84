import Foundation
import Queue

/// The inputs of the long videos this worker encodes pieces of for another worker's coordinator:
/// each fetched once per run of its job and shared by the pieces taken here (each piece used to
/// fetch the whole input), in a private folder of its own that their children also write in.
/// It is removed `linger` after the last of those pieces ended (the next piece of a run is
/// usually claimed within a second), when the worker stops, or, after a crash, by the next
/// worker's `WorkFolder.removeAbandoned`. A failed fetch is not kept: the next piece fetches anew.
actor PieceInputs {
    /// One borrowed input; give it back with `giveBack(_:)`.
    struct Borrowed: Sendable {
        let claim: JobClaim
        let folder: WorkFolder
        var input: URL { folder.url.appendingPathComponent("input") }
    }

    private struct Entry {
        let folder: WorkFolder
        let fetched: Task<Void, any Error>
        var users = 1
        /// Counts borrows, so an expiry scheduled before the last one does nothing.
        var borrows = 1
    }

    private var entries: [JobClaim: Entry] = [:]
    private let linger: Duration

    init(linger: Duration = .seconds(30)) { self.linger = linger }

    /// The input of `claim`'s run, in a folder of its own under `parent`: fetched into it by
    /// `fetch` for the first piece, waited for by the pieces that come while it is fetched.
    /// Throws what `fetch` threw, or the folder's error when it cannot be made.
    func borrow(
        _ claim: JobClaim, in parent: String, fetch: @escaping @Sendable (URL) async throws -> Void
    ) async throws -> Borrowed {
        let entry: Entry
        if var known = entries[claim] {
            known.users += 1
            known.borrows += 1
            entries[claim] = known
            entry = known
        } else {
            let folder = try WorkFolder(in: parent, kind: "piece-\(claim.id)")
            let input = folder.url.appendingPathComponent("input")
            entry = Entry(folder: folder, fetched: Task { try await fetch(input) })
            entries[claim] = entry
        }
        do {
            try await entry.fetched.value
        } catch {
            if entries[claim]?.folder === entry.folder {
                entries[claim] = nil
                entry.folder.remove()
            }
            throw error
        }
        return Borrowed(claim: claim, folder: entry.folder)
    }

    /// Ends one piece's use of `borrowed` (from a `defer`: the bookkeeping runs on the actor soon
    /// after).
    nonisolated func giveBack(_ borrowed: Borrowed) {
        Task { await self.release(borrowed) }
    }

    /// Removes every input (the worker stops; its pieces have ended).
    func removeAll() {
        for entry in entries.values { entry.folder.remove() }
        entries = [:]
    }

    /// How many inputs are held (for the tests).
    var count: Int { entries.count }

    private func release(_ borrowed: Borrowed) {
        guard var entry = entries[borrowed.claim], entry.folder === borrowed.folder else { return }
        entry.users -= 1
        entries[borrowed.claim] = entry
        guard entry.users == 0 else { return }
        let (claim, borrows, linger) = (borrowed.claim, entry.borrows, linger)
        Task {
            try? await Task.sleep(for: linger)
            self.expire(claim, folder: borrowed.folder, borrows: borrows)
        }
    }

    private func expire(_ claim: JobClaim, folder: WorkFolder, borrows: Int) {
        guard let entry = entries[claim], entry.folder === folder, entry.users == 0, entry.borrows == borrows
        else { return }
        entries[claim] = nil
        folder.remove()
    }
}
