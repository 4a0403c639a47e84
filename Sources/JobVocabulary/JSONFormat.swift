public import Foundation

/// The one form of JSON media-worker writes, everywhere (columns, child messages, `--json`, logs):
/// compact, keys sorted (so equal values give equal text), slashes left as they are.
public enum JSONFormat {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `value` as JSON text.
    public static func text(_ value: some Encodable) throws -> String {
        String(decoding: try encoder().encode(value), as: UTF8.self)
    }
}
