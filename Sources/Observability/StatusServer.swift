public import Foundation
import Hummingbird
public import Logging
public import Prometheus
public import ServiceLifecycle

/// Whether the daemon is well, as `/healthz` and `/readyz` report it.
public struct Health: Sendable, Equatable {
    /// The main loop runs and the database answered recently.
    public var live: Bool
    /// Start-up checks passed and the worker is taking jobs (not stopping).
    public var ready: Bool
    /// One line saying why, for people reading the endpoint.
    public var detail: String

    public init(live: Bool, ready: Bool, detail: String) {
        self.live = live
        self.ready = ready
        self.detail = detail
    }
}

/// The metrics and health endpoints (`MEDIA_WORKER_METRICS_ADDR`) on Hummingbird: `GET /metrics`
/// (Prometheus text format), `GET /healthz` and `GET /readyz` (200 or 503, with a one-line reason),
/// and, read-only, `GET /status` (a page for people) and `GET /status.json` (what it draws).
public struct StatusServer: Service {
    /// The queue page and its data.
    public struct QueuePage: Sendable {
        public var html: String
        /// The JSON the page draws, or nil when it cannot be had (the database is away).
        public var json: @Sendable () async -> Data?

        public init(html: String, json: @escaping @Sendable () async -> Data?) {
            self.html = html
            self.json = json
        }
    }

    private let host: String
    private let port: Int
    private let registry: PrometheusCollectorRegistry
    private let health: @Sendable () -> Health
    private let status: QueuePage?
    private let logger: Logger

    public init(
        address: String, registry: PrometheusCollectorRegistry, logger: Logger, status: QueuePage? = nil,
        health: @escaping @Sendable () -> Health
    ) throws(StatusServerError) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port), colon != address.startIndex
        else { throw .badAddress(address) }
        self.host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
        self.registry = registry
        self.health = health
        self.status = status
        self.logger = logger
    }

    public func run() async throws {
        let router = Router()
        router.get("metrics") { [registry] _, _ -> Response in
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("healthz") { [health] _, _ -> Response in
            let state = health()
            return Self.text(state.live ? .ok : .serviceUnavailable, state.detail)
        }
        router.get("readyz") { [health] _, _ -> Response in
            let state = health()
            return Self.text(state.ready ? .ok : .serviceUnavailable, state.detail)
        }
        if let status {
            router.get("status") { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(string: status.html)))
            }
            router.get("status.json") { _, _ -> Response in
                guard let data = await status.json() else {
                    return Self.text(.serviceUnavailable, "the database does not answer")
                }
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
            }
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "media-worker"),
            logger: logger)
        logger.info("metrics and health endpoints listening", metadata: ["address": "\(host):\(port)"])
        try await app.run()
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
    }
}

/// `MEDIA_WORKER_METRICS_ADDR` that is not `host:port`.
public enum StatusServerError: Error, Sendable, CustomStringConvertible {
    case badAddress(String)

    public var description: String {
        switch self {
        case .badAddress(let address):
            "MEDIA_WORKER_METRICS_ADDR=\(address.debugDescription) is not host:port (e.g. 127.0.0.1:9464)"
        }
    }
}
