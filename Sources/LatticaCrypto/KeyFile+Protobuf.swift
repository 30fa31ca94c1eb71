/// The few protobuf rules a key file needs: varint (wire type 0) and length-delimited (wire type 2)
/// fields. Never traps on any input.
/// TEMP until LatticaCore lands on main: then this becomes `LatticaCore.ProtobufReader`.
struct MiniProtobufReader {
    enum Field: Equatable {
        case varint(Int, UInt64)
        case bytes(Int, ArraySlice<UInt8>)
    }

    enum Failure: Error, Equatable {
        case truncated
        case badVarint
        case badWireType(Int)
        case badFieldNumber

        var reason: String {
            switch self {
            case .truncated: "truncated"
            case .badVarint: "malformed varint"
            case .badWireType(let t): "unsupported wire type \(t)"
            case .badFieldNumber: "bad field number"
            }
        }
    }

    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    /// The next field, or nil at a clean end.
    mutating func next() throws(Failure) -> Field? {
        guard position < bytes.endIndex else { return nil }
        let tag = try varint()
        let number = tag >> 3
        guard number >= 1, number <= 0x1FFF_FFFF else { throw .badFieldNumber }
        switch tag & 7 {
        case 0:
            return .varint(Int(number), try varint())
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.endIndex - position) else { throw .truncated }
            let start = position
            position += Int(length)
            return .bytes(Int(number), bytes[start..<position])
        default:
            throw .badWireType(Int(tag & 7))
        }
    }

    private mutating func varint() throws(Failure) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw .truncated }
            let byte = bytes[position]
            position += 1
            guard shift < 64, shift != 63 || byte & 0x7E == 0 else { throw .badVarint }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }
}
