import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The local control API between `lattica` and `latticad`: newline-delimited JSON over a Unix socket
/// (`<data-dir>/control.sock`, mode 0600). Docs/OPERATIONS.md describes it; bump `version` when a
/// request or result changes incompatibly.
///
/// Request:  `{"v":1,"id":7,"method":"status","params":{...}}` + `\n`
/// Response: `{"v":1,"id":7,"ok":true,"result":{...}}` + `\n`
///       or  `{"v":1,"id":7,"ok":false,"error":{"code":"bad_request","message":"..."}}` + `\n`
public enum ControlAPI {
    public static let version = 1
    /// Longest request or response line accepted, in bytes.
    public static let maxLineBytes = 4 << 20
}

/// A JSON value, for parameters and results whose shape depends on the method.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var doubleValue: Double? { if case .number(let d) = self { d } else { nil } }
}

public struct ControlRequest: Codable, Sendable {
    public var v: Int
    public var id: UInt64
    public var method: String
    public var params: JSONValue?

    public init(id: UInt64, method: String, params: JSONValue? = nil) {
        self.v = ControlAPI.version; self.id = id; self.method = method; self.params = params
    }
}

public struct ControlErrorBody: Error, Codable, Sendable, Equatable {
    /// Machine-readable: `bad_request`, `unknown_method`, `unsupported_version`, `not_found`, `failed`.
    public var code: String
    public var message: String

    public init(code: String, message: String) { self.code = code; self.message = message }
}

public struct ControlResponse<Result: Codable & Sendable>: Codable, Sendable {
    public var v: Int
    public var id: UInt64
    public var ok: Bool
    public var result: Result?
    public var error: ControlErrorBody?

    public init(id: UInt64, result: Result) {
        v = ControlAPI.version; self.id = id; ok = true; self.result = result; error = nil
    }

    public init(id: UInt64, error: ControlErrorBody) {
        v = ControlAPI.version; self.id = id; ok = false; result = nil; self.error = error
    }
}

public extension JSONEncoder {
    /// The encoder for control API lines: compact, keys sorted (stable output for scripts).
    static var controlAPI: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

