import Foundation
import LatticaAPI
import Metrics

/// Turns one control-API request line into one response line. Transport-free, so malformed
/// requests are tested without a socket. Every request is counted by method and result in
/// `lattica_control_requests_total`.
public struct ControlDispatcher: Sendable {
    public typealias Handler = @Sendable (JSONValue?) async throws -> any Encodable & Sendable

    private var handlers: [String: Handler] = [:]

    public init() {}

    /// Registers `method`; a handler throws `ControlErrorBody` for a clean error answer.
    public mutating func register(_ method: String, _ handler: @escaping Handler) {
        handlers[method] = handler
    }

    public var methods: [String] { handlers.keys.sorted() }

    public func handle(line: some Collection<UInt8>) async -> [UInt8] {
        let request: ControlRequest
        do {
            request = try JSONDecoder().decode(ControlRequest.self, from: Data(line))
        } catch {
            return respond(method: "invalid", id: Self.bestEffortId(line),
                           error: ControlErrorBody(code: "bad_request", message: "request is not a valid control request: \(Self.short(error))"))
        }
        guard request.v == ControlAPI.version else {
            return respond(method: request.method, id: request.id, error: ControlErrorBody(
                code: "unsupported_version", message: "control API version \(request.v) is not supported (this daemon speaks \(ControlAPI.version))"))
        }
        guard let h = handlers[request.method] else {
            return respond(method: "unknown", id: request.id, error: ControlErrorBody(
                code: "unknown_method", message: "unknown method '\(request.method.prefix(64))'; known: \(methods.joined(separator: ", "))"))
        }
        do {
            let result = try await h(request.params)
            Counter(label: "lattica_control_requests_total", dimensions: [("method", request.method), ("result", "ok")]).increment()
            return Self.encodeLine(AnyEncodableResponse(id: request.id, result: result))
        } catch let e as ControlErrorBody {
            return respond(method: request.method, id: request.id, error: e)
        } catch {
            return respond(method: request.method, id: request.id, error: ControlErrorBody(code: "failed", message: "\(error)"))
        }
    }

    private func respond(method: String, id: UInt64, error: ControlErrorBody) -> [UInt8] {
        Counter(label: "lattica_control_requests_total", dimensions: [("method", method), ("result", error.code)]).increment()
        return Self.encodeLine(ControlResponse<JSONValue>(id: id, error: error))
    }

    static func encodeLine(_ v: some Encodable) -> [UInt8] {
        var out = (try? JSONEncoder.controlAPI.encode(v)).map(Array.init) ?? Array(#"{"ok":false,"v":1,"id":0}"#.utf8)
        out.append(UInt8(ascii: "\n"))
        return out
    }

    static func bestEffortId(_ line: some Collection<UInt8>) -> UInt64 {
        return (try? JSONDecoder().decode(IdOnly.self, from: Data(line)))?.id ?? 0
    }

    static func short(_ e: any Error) -> String {
        switch e {
        case DecodingError.keyNotFound(let k, _): "missing field '\(k.stringValue)'"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            "wrong type for '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted: "malformed JSON"
        default: "\(e)"
        }
    }
}

extension ControlErrorBody: Error {}

private struct IdOnly: Decodable { var id: UInt64 }

private struct AnyEncodableResponse: Encodable {
    var id: UInt64
    var result: any Encodable & Sendable

    enum CodingKeys: String, CodingKey { case v, id, ok, result }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ControlAPI.version, forKey: .v)
        try c.encode(id, forKey: .id)
        try c.encode(true, forKey: .ok)
        try c.encode(result, forKey: .result)
    }
}
