import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The S3 server of the tests: moto with SigV4 checking on, behind a fault-injecting proxy
/// (`Tests/Scripts/s3-test-server.py`). One per test process, started on first use; it exits with
/// the test process.
public struct S3TestServer: Sendable {
    public let endpoint: String
    public let bucket: String
    public let region: String
    public let accessKeyId: String
    public let secretAccessKey: String

    /// The running server, started on first use (about 3 s, waited for on a dispatch thread so
    /// other tests keep running).
    public static func shared() async throws -> S3TestServer {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: started) }
        }
    }

    private static let started: Result<S3TestServer, TestSupportError> = {
        let script = Fixtures.root.appendingPathComponent("Tests/Scripts/s3-test-server.py")
        let log: URL
        do {
            log = try Fixtures.temporaryDirectory("s3-server").appendingPathComponent("server.log")
            _ = try BackgroundProgram(
                URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path],
                environment: ProcessInfo.processInfo.environment, log: log)
        } catch {
            return .failure(TestSupportError("could not start \(script.path): \(error)"))
        }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("{\"endpoint\"") }),
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            {
                return .success(
                    S3TestServer(
                        endpoint: object["endpoint"]!, bucket: object["bucket"]!, region: object["region"]!,
                        accessKeyId: object["accessKeyId"]!, secretAccessKey: object["secretAccessKey"]!))
            }
            if text.contains("Traceback") || text.contains("No module named") {
                return .failure(TestSupportError("the S3 test server failed (pip install 'moto[server]'?):\n\(text)"))
            }
            usleep(100_000)
        }
        return .failure(TestSupportError("the S3 test server did not start within 60 s"))
    }()

    /// `MEDIA_STORAGE_URL` for this server under `prefix`.
    public func storageURL(prefix: String) -> String {
        "s3://\(bucket)/\(prefix)?endpoint=\(endpoint)&region=\(region)"
    }

    /// The variables a media-worker process needs to use this server.
    public var credentialEnvironment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKeyId, "AWS_SECRET_ACCESS_KEY": secretAccessKey]
    }

    /// A fault the proxy injects into requests whose request line contains `match`.
    public enum Fault: Sendable {
        /// Forward the response but cut the connection after `after` body bytes.
        case cut(after: Int)
        /// Answer with this status and S3 error code instead of forwarding.
        case status(Int, code: String)
    }

    /// Injects `fault` into the next `times` requests matching `match` (e.g. `GET /bucket/key`).
    public func inject(_ fault: Fault, match: String, times: Int = 1) async throws {
        var rule: [String: Any] = ["match": match, "times": times]
        switch fault {
        case .cut(let after): rule.merge(["kind": "cut", "after": after]) { $1 }
        case .status(let status, let code): rule.merge(["kind": "status", "status": status, "code": code]) { $1 }
        }
        _ = try await control("POST", body: try JSONSerialization.data(withJSONObject: rule))
    }

    /// Request lines the proxy saw (since the last `forgetRequests`) that contain `text`.
    public func requests(containing text: String) async throws -> [String] {
        let state = try await control("GET", body: nil)
        let requests = (try JSONSerialization.jsonObject(with: state) as? [String: Any])?["requests"] as? [String]
        return (requests ?? []).filter { $0.contains(text) }
    }

    private func control(_ method: String, body: Data?) async throws -> Data {
        var request = URLRequest(url: URL(string: "\(endpoint)/__faults__")!)
        request.httpMethod = method
        request.httpBody = body
        return try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, _, error in
                if let data {
                    continuation.resume(returning: data)
                } else {
                    continuation.resume(throwing: error ?? TestSupportError("no answer from the S3 test proxy"))
                }
            }.resume()
        }
    }
}
