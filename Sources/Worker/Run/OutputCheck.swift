import Foundation
import Media

/// Checks an output a job's child says it wrote before the daemon uploads it: the child parsed a
/// stranger's file and may have been subverted, so a name that leaves the folder, a symbolic link
/// (to `/etc/shadow`, to another job's input) or a size other than reported is refused.
enum OutputCheck {
    /// What is wrong with `output` in `directory`, or nil when it is a plain file there.
    static func problem(with output: OutputFile, in directory: URL) -> String? {
        let name = output.path
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            return "the name \(name.debugDescription) is not a file name"
        }
        var status = stat()
        guard lstat(directory.appendingPathComponent(name).path, &status) == 0 else {
            return "\(name) is missing (\(String(cString: strerror(errno))))"
        }
        guard status.st_mode & S_IFMT == S_IFREG else { return "\(name) is not a regular file" }
        guard status.st_nlink == 1 else { return "\(name) has other names (hard links)" }
        guard Int(status.st_size) == output.bytes else {
            return "\(name) has \(status.st_size) bytes, the report says \(output.bytes)"
        }
        return nil
    }
}
