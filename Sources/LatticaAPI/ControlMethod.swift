/// A typed control method: its name on the wire, its params and its result, shared by `latticad`
/// (which registers a handler) and `lattica` (which calls it). Params and results are Codable
/// structs with snake_case keys on the wire.
public protocol ControlMethod: Sendable {
    associatedtype Params: ControlParams
    associatedtype Result: Codable & Sendable
    static var name: String { get }
}

/// The params of a control method. The daemon decodes them strictly: an unknown field, a wrong
/// type, or a number outside its range is a `bad_request` naming the field (and the allowed range),
/// checked before any conversion, so no request can trap the daemon.
public protocol ControlParams: Codable, Sendable {
    associatedtype CodingKeys: CodingKey & CaseIterable
    /// Allowed ranges of integer fields, by wire name (quoted in errors, also for decoding errors).
    static var ranges: [String: ClosedRange<Int>] { get }
    /// Longest accepted string per field, by wire name; others get `ControlLimits.maxString`.
    static var maxLengths: [String: Int] { get }
    /// Checks what the types cannot say (ranges, formats); throws a `bad_request` naming the field.
    func validate() throws(ControlErrorBody)
}

public extension ControlParams {
    static var ranges: [String: ClosedRange<Int>] { [:] }
    static var maxLengths: [String: Int] { [:] }
    func validate() throws(ControlErrorBody) {}

    static var fieldNames: [String] { CodingKeys.allCases.map(\.stringValue) }

    /// Throws unless `value` (when present) is inside the range declared for `field`.
    func check(_ field: String, _ value: Int?) throws(ControlErrorBody) {
        guard let value, let r = Self.ranges[field] else { return }
        guard r.contains(value) else { throw ControlErrorBody.outOfRange(field, value, r) }
    }

    /// Throws unless `value` is non-empty (required strings).
    func require(_ field: String, _ value: String) throws(ControlErrorBody) {
        guard !value.isEmpty else { throw ControlErrorBody(code: "bad_request", message: "'\(field)' must not be empty") }
    }
}

public enum ControlLimits {
    /// Longest string field accepted unless a method says otherwise.
    public static let maxString = 4096
}

public extension ControlErrorBody {
    static func outOfRange(_ field: String, _ value: some CustomStringConvertible, _ r: ClosedRange<Int>) -> ControlErrorBody {
        ControlErrorBody(code: "bad_request", message: "'\(field)' is \(value); allowed: \(r.lowerBound)...\(r.upperBound)")
    }
    static func badRequest(_ message: String) -> ControlErrorBody { ControlErrorBody(code: "bad_request", message: message) }
}

/// Params of methods that take none (`{}` or absent).
public struct NoParams: ControlParams, Equatable {
    public enum CodingKeys: CodingKey, CaseIterable {
        public static var allCases: [CodingKeys] { [] }
        public var stringValue: String { "" }
        public var intValue: Int? { nil }
        public init?(stringValue: String) { nil }
        public init?(intValue: Int) { nil }
    }
    public init() {}
    public init(from decoder: any Decoder) throws {}
    public func encode(to encoder: any Encoder) throws { _ = encoder.container(keyedBy: CodingKeys.self) }
}
