/// A minimal Protocol Buffers wire-format writer (https://protobuf.dev/programming-guides/encoding/).
/// Fields are written in call order; there is no schema. Field numbers must be in 1...2^29-1
/// (a programmer error otherwise).
public struct ProtobufWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init() { bytes = [] }

    @inlinable static func checkField(_ field: Int) {
        precondition(field >= 1 && field <= ProtobufReader.maxFieldNumber, "protobuf field number out of range")
    }

    @usableFromInline mutating func tag(_ field: Int, _ wireType: UInt64) {
        Self.checkField(field)
        Varint.encode(UInt64(field) << 3 | wireType, into: &bytes)
    }

    /// Wire type 0. Also for bool, enum and non-negative int32/int64.
    public mutating func uint64(_ field: Int, _ v: UInt64) {
        tag(field, 0)
        Varint.encode(v, into: &bytes)
    }

    public mutating func bool(_ field: Int, _ v: Bool) { uint64(field, v ? 1 : 0) }

    /// Wire type 2, length-delimited.
    public mutating func bytes(_ field: Int, _ b: some Collection<UInt8>) {
        tag(field, 2)
        Varint.encode(UInt64(b.count), into: &bytes)
        bytes.append(contentsOf: b)
    }

    public mutating func string(_ field: Int, _ s: String) { bytes(field, s.utf8) }

    /// An embedded message (wire type 2).
    public mutating func message(_ field: Int, _ m: ProtobufWriter) { bytes(field, m.bytes) }

    /// Wire type 1, little-endian. Doubles via `bitPattern`.
    public mutating func fixed64(_ field: Int, _ v: UInt64) {
        tag(field, 1)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    /// Wire type 5, little-endian. Floats via `bitPattern`.
    public mutating func fixed32(_ field: Int, _ v: UInt32) {
        tag(field, 5)
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }
}

/// One decoded field. Length-delimited values are slices of the reader's input (no copy).
public enum ProtobufField: Sendable, Hashable {
    case varint(field: Int, value: UInt64)
    case fixed64(field: Int, value: UInt64)
    case bytes(field: Int, value: ArraySlice<UInt8>)
    case fixed32(field: Int, value: UInt32)

    public var field: Int {
        switch self {
        case .varint(let f, _), .fixed64(let f, _), .bytes(let f, _), .fixed32(let f, _): f
        }
    }

    /// The value of a wire-type-0 field (uint64, bool, enum), else `nil`.
    public var varintValue: UInt64? { if case .varint(_, let v) = self { v } else { nil } }

    /// The value of a length-delimited field (bytes, string, embedded message), else `nil`.
    public var bytesValue: ArraySlice<UInt8>? { if case .bytes(_, let v) = self { v } else { nil } }

    /// A length-delimited field as UTF-8 text; `nil` for other wire types or invalid UTF-8.
    public var stringValue: String? { bytesValue.flatMap { String(validating: $0, as: UTF8.self) } }
}

public enum ProtobufError: Error, Hashable, Sendable {
    /// The input ends inside a tag, a value, or a length-delimited field.
    case truncated
    /// Wire types 3/4 (groups, deprecated) and 6/7 (undefined).
    case badWireType(Int)
    /// Field number 0 or above 2^29-1.
    case badFieldNumber
    case varint(VarintError)
}

/// A pull parser over protobuf wire format. Never traps on any input; memory is bounded by the
/// input (length-delimited values are slices, lengths are checked against what remains).
///
/// Varints follow protobuf rules, not multiformats rules: up to 10 bytes (negative int64 are 10
/// bytes long), non-minimal encodings are accepted, bits beyond 64 are an `.overflow` error.
public struct ProtobufReader: Sendable {
    public static let maxFieldNumber = (1 << 29) - 1

    @usableFromInline var input: ArraySlice<UInt8>
    @usableFromInline var position: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        input = bytes
        position = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    /// True when all input has been consumed.
    public var isAtEnd: Bool { position >= input.endIndex }

    @usableFromInline mutating func readVarint() throws(ProtobufError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for n in 0..<10 {
            guard position < input.endIndex else { throw .truncated }
            let b = input[position]
            position &+= 1
            if n == 9 && b > 1 { throw .varint(.overflow) }
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift &+= 7
        }
        throw .varint(.overflow)
    }

    @usableFromInline mutating func readLittleEndian(_ count: Int) throws(ProtobufError) -> UInt64 {
        guard input.endIndex - position >= count else { throw .truncated }
        var v: UInt64 = 0
        for i in 0..<count { v |= UInt64(input[position + i]) << (8 * UInt64(i)) }
        position += count
        return v
    }

    /// The next field, or `nil` at a clean end of input. After an error the reader is left at an
    /// unspecified position; callers should stop.
    public mutating func next() throws(ProtobufError) -> ProtobufField? {
        guard position < input.endIndex else { return nil }
        let key = try readVarint()
        let wireType = Int(key & 7)
        let number = key >> 3
        guard number >= 1, number <= UInt64(Self.maxFieldNumber) else { throw .badFieldNumber }
        let field = Int(number)
        switch wireType {
        case 0:
            return .varint(field: field, value: try readVarint())
        case 1:
            return .fixed64(field: field, value: try readLittleEndian(8))
        case 2:
            let length = try readVarint()
            guard length <= UInt64(input.endIndex - position) else { throw .truncated }
            let end = position + Int(length)
            let value = input[position..<end]
            position = end
            return .bytes(field: field, value: value)
        case 5:
            return .fixed32(field: field, value: UInt32(truncatingIfNeeded: try readLittleEndian(4)))
        default:
            throw .badWireType(wireType)
        }
    }
}
