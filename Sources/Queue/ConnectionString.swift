import CLibPQ

/// What media-worker knows of a libpq connection string (a URI, `postgresql://user:secret@host/db`,
/// or `key=value` pairs): how to show it without its password, which secrets it holds, and whether
/// libpq can parse it. libpq's own parse errors quote the string, password and all, so they are
/// never shown as they come.
public enum ConnectionString {
    /// `url` with any password replaced by `***`.
    public static func redacted(_ url: String) -> String {
        var text = url
        if let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].lastIndex(of: "@") {
            let credentials = text[scheme.upperBound..<at]
            if let colon = credentials.firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        return text.replacing(/password\s*=\s*('[^']*'?|\S+)/) { _ in "password=***" }
            .replacing(/([?&]password=)[^&]*/) { "\($0.1)***" }
    }

    /// The passwords `url` holds, however malformed it is: what log lines and messages must mask.
    public static func secrets(in url: String) -> [String] {
        var found: [String] = []
        if let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@"),
            let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        {
            found.append(String(url[url.index(after: colon)..<at]))
        }
        for match in url.matches(of: /password\s*=\s*('[^']*'?|[^&\s]+)/) {
            found.append(String(match.1).trimmingCharacters(in: ["'"]))
        }
        return found.filter { !$0.isEmpty }
    }

    /// Why libpq cannot parse `url`, with every secret removed, or nil when it can.
    public static func problem(_ url: String) -> String? {
        var message: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &message) else {
            let text = message.map { String(cString: $0) } ?? "it cannot be parsed"
            PQfreemem(message)
            return masked(text, url: url)
        }
        PQconninfoFree(options)
        return nil
    }

    /// `text` (a libpq message about `url`) with the string and its secrets removed.
    static func masked(_ text: String, url: String) -> String {
        var text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if !url.isEmpty { text = text.replacing(url, with: redacted(url)) }
        for secret in secrets(in: url) { text = text.replacing(secret, with: "***") }
        return text
    }
}
