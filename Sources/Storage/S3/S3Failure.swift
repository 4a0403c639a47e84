import Foundation
import NIOHTTP1

/// Why a request to the object store failed, in words an operator can act on. Never carries a
/// credential: S3's error documents name the access key id at most.
enum S3Failure: Error, Sendable, CustomStringConvertible {
    /// No HTTP answer: connection refused or reset, timeout, TLS failure.
    case transport(String)
    /// The store answered with an error status and (usually) an XML error document.
    case service(status: Int, code: String, message: String, bucketRegion: String?)

    init(status: Int, document: String, headers: HTTPHeaders) {
        let code = Self.element("Code", in: document) ?? Self.codeOfBareStatus(status)
        self = .service(
            status: status, code: code, message: Self.element("Message", in: document) ?? "",
            bucketRegion: headers.first(name: "x-amz-bucket-region") ?? Self.element("Region", in: document))
    }

    /// Worth another attempt: the store was busy, broken or unreachable, not the request wrong.
    var isRetryable: Bool {
        switch self {
        case .transport: true
        case .service(let status, let code, _, _):
            status >= 500 || status == 429 || ["SlowDown", "RequestTimeout", "InternalError"].contains(code)
        }
    }

    /// The object or bucket does not exist.
    var isNoSuchKey: Bool {
        if case .service(404, "NoSuchKey", _, _) = self { return true }
        if case .service(404, "NotFound", _, _) = self { return true }
        return false
    }

    var description: String {
        switch self {
        case .transport(let reason): return "cannot reach the object store: \(reason)"
        case .service(let status, let code, let message, let bucketRegion):
            let detail = message.isEmpty ? "" : " (\(message))"
            switch code {
            case "InvalidAccessKeyId":
                return "the store does not know AWS_ACCESS_KEY_ID (\(code)); check the access key"
            case "SignatureDoesNotMatch":
                return "the store rejected the signature (\(code)); check AWS_SECRET_ACCESS_KEY"
            case "ExpiredToken", "TokenRefreshRequired", "InvalidToken":
                return "the session token was refused (\(code)); renew AWS_SESSION_TOKEN"
            case "RequestTimeTooSkewed":
                return "this host's clock is too far from the store's (\(code)); fix the time (NTP)"
            case "AccessDenied":
                return "access denied (\(code)); the credentials need s3:GetObject, s3:PutObject, s3:DeleteObject and "
                    + "s3:ListBucket on the bucket\(detail)"
            case "NoSuchBucket":
                return "the bucket does not exist (\(code)); check the bucket name and the endpoint"
            case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException",
                "Moved":
                let region = bucketRegion.map { "; the bucket is in \($0): set region=\($0) in MEDIA_STORAGE_URL" }
                return "wrong region (\(code))\(region ?? "; set region= in MEDIA_STORAGE_URL to the bucket's region")"
            default:
                return "the store answered HTTP \(status) \(code)\(detail)"
            }
        }
    }

    /// HEAD answers and some proxies have no error document.
    private static func codeOfBareStatus(_ status: Int) -> String {
        switch status {
        case 301: "Moved"
        case 403: "AccessDenied"
        case 404: "NotFound"
        case 429: "SlowDown"
        case 503: "ServiceUnavailable"
        default: "HTTP\(status)"
        }
    }

    /// The text of the first `<name>` element of a small XML document, entities decoded. S3's
    /// documents are flat enough that this is all the XML the client needs.
    static func element(_ name: String, in document: String) -> String? {
        elements(name, in: document).first
    }

    /// The texts of every `<name>` element, in order, entities decoded unless `decode` is false
    /// (elements of that name do not nest in S3's documents).
    static func elements(_ name: String, in document: String, decode: Bool = true) -> [String] {
        var found: [String] = []
        var rest = document[...]
        while let start = rest.range(of: "<\(name)>"),
            let end = rest.range(of: "</\(name)>", range: start.upperBound..<rest.endIndex)
        {
            let text = String(rest[start.upperBound..<end.lowerBound])
            found.append(decode ? decoded(text) : text)
            rest = rest[end.upperBound...]
        }
        return found
    }

    private static func decoded(_ text: String) -> String {
        text
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Retries with capped exponential backoff and full jitter: attempt n waits a random time in
/// `0...min(cap, base·2ⁿ)`. Only failures `S3Failure.isRetryable` says are worth it.
public struct S3RetryPolicy: Sendable {
    public var attempts: Int
    public var baseDelay: Double
    public var maxDelay: Double

    public init(attempts: Int = 5, baseDelay: Double = 0.2, maxDelay: Double = 5) {
        self.attempts = attempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    func run<T>(_ operation: () async throws(S3Failure) -> T) async throws(S3Failure) -> T {
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch {
                attempt += 1
                guard error.isRetryable, attempt < attempts, !Task.isCancelled else { throw error }
                try? await Task.sleep(for: .seconds(delay(afterAttempt: attempt)))
            }
        }
    }

    func delay(afterAttempt attempt: Int) -> Double {
        Double.random(in: 0...min(maxDelay, baseDelay * Double(1 << min(attempt, 20))))
    }
}
