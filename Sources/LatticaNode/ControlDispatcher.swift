import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import Metrics

/// Turns one control-API request line into one response line. Transport-free, so malformed
/// requests are tested without a socket. Every request is counted by method and result in
/// `lattica_control_requests_total`.
public struct ControlDispatcher: Sendable {
    /// A registered method: gets the whole request line (its params are decoded by the typed
    /// wrapper made in `register`), returns the result to encode.
    typealias Handler = @Sendable (_ line: [UInt8], _ params: JSONValue?) async throws -> any Encodable & Sendable

    private var handlers: [String: Handler] = [:]
    /// The wire names of every method's params fields (for `lattica` help and the control fuzz).
    public private(set) var fields: [String: [String]] = [:]

    public init() {}

    /// Registers a typed method. Its params are decoded strictly (unknown fields, wrong types,
    /// over-long strings and out-of-range numbers are `bad_request` errors naming the field) and
    /// validated before `body` runs; `body` throws `ControlErrorBody` for a clean error answer.
    public mutating func register<M: ControlMethod>(_ m: M.Type, _ body: @escaping @Sendable (M.Params) async throws -> M.Result) {
        precondition(handlers[M.name] == nil, "control method \(M.name) registered twice")
        fields[M.name] = M.Params.fieldNames
        handlers[M.name] = { line, raw in
            let params = try Self.decodeParams(M.Params.self, line: line, raw: raw)
            return try await body(params)
        }
    }

    /// Strict decoding of a method's params; throws `bad_request` naming the field.
    static func decodeParams<P: ControlParams>(_ p: P.Type, line: [UInt8], raw: JSONValue?) throws(ControlErrorBody) -> P {
        let fields: [String: JSONValue]
        switch raw {
        case nil, .null?: fields = [:]
        case .object(let o)?: fields = o
        default: throw .badRequest("'params' must be an object")
        }
        let known = Set(P.fieldNames)
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            let list = P.fieldNames.isEmpty ? "none" : P.fieldNames.joined(separator: ", ")
            throw .badRequest("unknown field '\(unknown.prefix(64))'; fields: \(list)")
        }
        for (k, v) in fields {
            if case .string(let s) = v {
                let limit = P.maxLengths[k] ?? ControlLimits.maxString
                if s.utf8.count > limit { throw .badRequest("'\(k)' has \(s.utf8.count) bytes; at most \(limit)") }
            }
        }
        // Integer fields are range-checked on the JSON number itself, before any conversion.
        for (k, r) in P.ranges {
            switch fields[k] {
            case nil, .null?: continue
            case .number(let d)?:
                guard d >= Double(r.lowerBound), d <= Double(r.upperBound) else {
                    let shown = abs(d) < 1e15 && d.rounded() == d ? "\(Int(d))" : "\(d)"
                    throw ControlErrorBody.outOfRange(k, shown, r)
                }
                guard d.rounded() == d else { throw .badRequest("'\(k)' must be an integer in \(r.lowerBound)...\(r.upperBound)") }
            default: throw .badRequest("'\(k)' must be an integer in \(r.lowerBound)...\(r.upperBound)")
            }
        }
        let params: P
        do {
            params = try JSONDecoder().decode(ParamsEnvelope<P>.self, from: Data(line)).params ?? JSONDecoder().decode(P.self, from: Data("{}".utf8))
        } catch {
            throw Self.describe(error, P.self)
        }
        try params.validate()
        return params
    }

    static func describe<P: ControlParams>(_ e: any Error, _ p: P.Type) -> ControlErrorBody {
        func field(_ path: [any CodingKey]) -> String {
            path.map(\.stringValue).filter { $0 != "params" }.joined(separator: ".")
        }
        let f: String, what: String
        switch e {
        case DecodingError.keyNotFound(let k, _): return .badRequest("missing field '\(k.stringValue)'")
        case DecodingError.valueNotFound(_, let c): f = field(c.codingPath); what = "must not be null"
        case DecodingError.typeMismatch(let t, let c): f = field(c.codingPath); what = "has the wrong type (expected \(t))"
        case DecodingError.dataCorrupted(let c): f = field(c.codingPath); what = "is malformed"
        default: return .badRequest("params: \(e)")
        }
        if let r = P.ranges[f] { return .badRequest("'\(f)' must be an integer in \(r.lowerBound)...\(r.upperBound)") }
        return .badRequest(f.isEmpty ? "params \(what)" : "'\(f)' \(what)")
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
            // The metric's method label comes from the client: only a known method names a series.
            return respond(method: handlers[request.method] == nil ? "unknown" : request.method, id: request.id, error: ControlErrorBody(
                code: "unsupported_version", message: "control API version \(request.v) is not supported (this daemon speaks \(ControlAPI.version))"))
        }
        guard let h = handlers[request.method] else {
            return respond(method: "unknown", id: request.id, error: ControlErrorBody(
                code: "unknown_method", message: "unknown method '\(request.method.prefix(64))'; known: \(methods.joined(separator: ", "))"))
        }
        do {
            let result = try await h(Array(line), request.params)
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



private struct IdOnly: Decodable { var id: UInt64 }

private struct ParamsEnvelope<P: Decodable>: Decodable { var params: P? }

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
