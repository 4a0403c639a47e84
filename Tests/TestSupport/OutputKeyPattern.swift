import Foundation

/// Whether `text` (a storage key or a URL) ends in a key of a run of job `job` for `file`:
/// `media-worker/jobs/<job>/<run>/<file>`, the run being the claim's token in digits.
public func endsInRunKey(_ text: String?, job: Int, file: String) -> Bool {
    guard let text else { return false }
    let pattern = ".*media-worker/jobs/\(job)/[0-9]+/\(NSRegularExpression.escapedPattern(for: file))"
    return text.wholeMatch(of: try! Regex(pattern)) != nil
}

/// The role → key object of a job row's `outputStorageKeys` text.
public func storageKeys(_ text: String?) -> [String: String] {
    guard let text, let data = text.data(using: .utf8) else { return [:] }
    return (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
}
