import LatticaAPI
import LatticaCore
import Metrics

/// echo (`/lattica/echo/1.0.0`, ours): the smallest complete service, and the example of
/// Docs/ARCHITECTURE.md "How to add a protocol". One request and one response per stream (the
/// swarm's length-prefixed framing, Docs/WIRE.md); the response is the request's bytes. Operators
/// use it to measure a round trip at the level protocol handlers see (`echo` control method),
/// where `ping` measures the muxer's.
///
/// Config `[echo]`: `enabled` (default true; false stops answering), `max_bytes` (largest request
/// answered, default 64 KiB). Metrics: `lattica_echo_requests_total{result}`.
final class EchoService: NodeService, @unchecked Sendable {
    static let name = "echo"
    static let protocolID = "/lattica/echo/1.0.0"

    struct Settings: Equatable {
        var enabled = true
        var maxBytes = 64 << 10
    }

    let swarm: Swarm
    let settings: Settings

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> Settings {
        var r = section, s = Settings()
        if let v = try r.bool("enabled") { s.enabled = v }
        if let v = try r.int("max_bytes", range: 1...(4 << 20)) { s.maxBytes = v }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        swarm = context.swarm
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        if settings.enabled {
            let answered = Counter(label: "lattica_echo_requests_total", dimensions: [("result", "answered")])
            swarm.handleRequests(Self.protocolID, maxBytes: settings.maxBytes) { _, request, respond in
                answered.increment()
                respond(request)
            }
        }
        let ctx = context, limit = settings.maxBytes
        context.method(Echo.self) { p in
            let peer: PeerId
            do { peer = try PeerId(string: p.peer) } catch { throw ControlErrorBody.badRequest("'peer' is not a peer id") }
            let payload = Array(p.payload.utf8)
            guard payload.count <= limit else { throw ControlErrorBody.badRequest("'payload' has \(payload.count) bytes; at most \(limit)") }
            var rtts: [Double] = []
            for _ in 0..<(p.count ?? 1) {
                let t0 = ContinuousClock.now
                let back: [UInt8]
                do {
                    back = try await ctx.onLoop { done in ctx.swarm.request(peer, Self.protocolID, payload, timeout: .seconds(10)) { done($0) } }
                } catch let e as ControlErrorBody { throw e } catch { throw ControlErrorBody(code: "failed", message: "\(error)") }
                guard back == payload else { throw ControlErrorBody(code: "failed", message: "the echo did not match what was sent") }
                rtts.append((ContinuousClock.now - t0).secondsDouble * 1000)
            }
            return EchoResult(peerId: peer.description, rttsMs: rtts)
        }
    }

    /// `echo`: sends `payload` to `peer` `count` times and checks each answer.
    enum Echo: ControlMethod {
        static let name = "echo"
        typealias Result = EchoResult
        struct Params: ControlParams {
            var peer: String
            var payload: String
            var count: Int?
            enum CodingKeys: String, CodingKey, CaseIterable { case peer, payload, count }
            static let ranges = ["count": 1...1000]
            static let maxLengths = ["payload": 4 << 20]
            /// Non-empty: an empty response means "no answer" in the request framing.
            func validate() throws(ControlErrorBody) { try require("peer", peer); try require("payload", payload); try check("count", count) }
        }
    }

    struct EchoResult: Codable, Sendable {
        var peerId: String
        var rttsMs: [Double]
        enum CodingKeys: String, CodingKey { case peerId = "peer_id", rttsMs = "rtts_ms" }
    }
}
