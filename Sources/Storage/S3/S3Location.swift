public import Foundation

/// Where the bucket is, parsed from `s3://BUCKET[/PREFIX]?endpoint=…&region=…&pathStyle=…`.
public struct S3Location: Sendable, Equatable {
    /// The region when neither the URL nor `AWS_REGION`/`AWS_DEFAULT_REGION` names one.
    public static let defaultRegion = "us-east-1"
    public let bucket: String
    /// Prepended to every key with a `/` (empty for none).
    public let prefix: String
    public let region: String
    /// Scheme, host and port of the service, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://127.0.0.1:9000`.
    public let endpoint: URL
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. The default for a
    /// custom endpoint (MinIO, Ceph and most others expect it), off for AWS.
    public let pathStyle: Bool

    /// Parses a storage URL; `environment` gives `AWS_REGION` / `AWS_DEFAULT_REGION` when the URL
    /// has no `region=`.
    public init(url text: String, environment: [String: String] = [:]) throws(S3LocationError) {
        guard let components = URLComponents(string: text), components.scheme == "s3",
            let bucket = components.host, !bucket.isEmpty
        else { throw .malformed("expected s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME&pathStyle=true]") }
        guard bucket.range(of: #"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"#, options: .regularExpression) != nil else {
            throw .malformed("\(bucket.debugDescription) is not a valid bucket name (3–63 of a-z, 0-9, '.', '-')")
        }
        guard components.user == nil, components.password == nil else {
            throw .malformed("credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        var options: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard ["endpoint", "region", "pathStyle"].contains(item.name) else {
                throw .malformed("unknown option \(item.name.debugDescription) (known: endpoint, region, pathStyle)")
            }
            options[item.name] = item.value ?? ""
        }
        let region =
            options["region"] ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? Self.defaultRegion
        guard region.range(of: #"^[a-z0-9\-]+$"#, options: .regularExpression) != nil else {
            throw .malformed("region \(region.debugDescription) is not a region name such as eu-west-1")
        }
        let endpoint: URL
        if let custom = options["endpoint"] {
            guard let url = URL(string: custom), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
                url.user == nil, url.path.isEmpty || url.path == "/", url.query == nil
            else { throw .malformed("endpoint \(custom.debugDescription) is not an http(s)://host[:port] URL") }
            endpoint = URL(string: "\(url.scheme!)://\(url.host!)\(url.port.map { ":\($0)" } ?? "")")!
        } else {
            endpoint = URL(string: "https://s3.\(region).amazonaws.com")!
        }
        switch options["pathStyle"] {
        case nil: pathStyle = options["endpoint"] != nil || bucket.contains(".")
        case "true": pathStyle = true
        case "false": pathStyle = false
        case let other?: throw .malformed("pathStyle=\(other) is not true or false")
        }
        self.bucket = bucket
        self.prefix = components.path.split(separator: "/").joined(separator: "/")
        self.region = region
        self.endpoint = endpoint
    }

    /// The object key of a storage key (the prefix added).
    public func objectKey(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix)/\(key)" }

    /// Host header and URI-encoded path of an object (or of the bucket when `objectKey` is empty).
    public func address(of objectKey: String) -> (host: String, path: String) {
        let encodedKey = SigV4Signer.uriEncode(objectKey, encodeSlash: false)
        let port = endpoint.port.map { ":\($0)" } ?? ""
        if pathStyle {
            return ("\(endpoint.host!)\(port)", objectKey.isEmpty ? "/\(bucket)" : "/\(bucket)/\(encodedKey)")
        }
        return ("\(bucket).\(endpoint.host!)\(port)", "/\(encodedKey)")
    }

    /// The full URL of an object.
    public func url(of objectKey: String) -> String {
        let (host, path) = address(of: objectKey)
        return "\(endpoint.scheme!)://\(host)\(path)"
    }

    /// For logs: the bucket, prefix, endpoint and region (no secret lives in the URL).
    public var description: String {
        "s3://\(bucket)\(prefix.isEmpty ? "" : "/\(prefix)") (endpoint \(endpoint.absoluteString), region \(region)"
            + (pathStyle ? ", path-style)" : ")")
    }
}

/// A storage URL that does not describe a bucket.
public enum S3LocationError: Error, Sendable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "MEDIA_STORAGE_URL: \(reason)"
        }
    }
}
