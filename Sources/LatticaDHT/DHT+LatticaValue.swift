extension DHT {
    /// "Lattica mode" value wrapping, byte-compatible with the Rust Lattica DHT: the record value is
    /// bincode 2 (`config::standard()`) `ValueWithTime { value: Vec<u8>, expiration_time: f64 }`:
    /// a bincode varint length (< 251: one byte; else `fb` u16, `fc` u32, `fd` u64, little-endian),
    /// the bytes, then the f64 as 8 bytes little-endian; `value` holds a Python pickle
    /// (verified against a real Lattica 1.0.21 store, Docs/INTEROP.md).
    ///
    /// We write a pickle (protocol 4) of a plain `bytes` object exactly as CPython does and read
    /// back only that exact shape. Any other pickle is handed out as raw bytes: a pickle is NEVER
    /// evaluated here (unpickling untrusted data executes code).
    public enum LatticaValue {
        public enum Payload: Hashable, Sendable {
            /// The pickle was exactly `pickle.dumps(b"...", protocol=4)`: here are the bytes.
            case bytes([UInt8])
            /// The pickle was exactly `pickle.dumps("...", protocol=4)` (what Lattica's Python API
            /// stores for a `str`): here is its UTF-8.
            case text([UInt8])
            /// Some other pickle (or not a pickle): the raw inner value, not interpreted.
            case raw([UInt8])
        }

        /// CPython frames pickle data below 64 KiB (`FRAME_SIZE_TARGET`); larger bytes are written unframed.
        static let frameSizeTarget = 64 * 1024

        /// `pickle.dumps(data, protocol=4)`:
        /// `80 04` [`95` u64le(frame length)] (`43` u8 len | `42` u32le len) data `94` `2e`.
        public static func pickleBytes(_ data: [UInt8]) -> [UInt8] {
            var body: [UInt8] = []
            if data.count < 256 {
                body = [0x43, UInt8(data.count)]
            } else {
                body = [0x42] + le(UInt64(data.count), 4)
            }
            var out: [UInt8] = [0x80, 0x04]
            if data.count < frameSizeTarget {
                let frameLength = body.count + data.count + 2
                out += [0x95] + le(UInt64(frameLength), 8)
            }
            out += body
            out += data
            out += [0x94, 0x2E]
            return out
        }

        /// The bytes inside `pickleBytes` output, or nil for any other shape.
        public static func unpickleBytes(_ p: [UInt8]) -> [UInt8]? {
            guard let (isText, b) = unpickleSimple(p), !isText else { return nil }
            return b
        }

        /// The payload of a protocol-4 pickle that is exactly one `bytes` (`C`/`B` opcodes) or one
        /// `str` (`8c`/`X` opcodes) object, framed as CPython frames it; nil for any other shape.
        /// Only these byte patterns are recognised; nothing is ever evaluated.
        public static func unpickleSimple(_ p: [UInt8]) -> (isText: Bool, payload: [UInt8])? {
            guard p.count >= 6, p[0] == 0x80, p[1] == 0x04 else { return nil }
            var i = 2
            var framed = false
            if p[i] == 0x95 {
                guard p.count >= i + 9 else { return nil }
                let frameLength = readLE(p, i + 1, 8)
                guard frameLength == UInt64(p.count - i - 9) else { return nil }
                i += 9
                framed = true
            }
            guard i < p.count else { return nil }
            let n: Int
            var isText = false
            switch p[i] {
            case 0x43, 0x8C:  // SHORT_BINBYTES, SHORT_BINUNICODE: 1-byte length
                guard i + 1 < p.count else { return nil }
                isText = p[i] == 0x8C
                n = Int(p[i + 1]); i += 2
            case 0x42, 0x58:  // BINBYTES, BINUNICODE: 4-byte length
                guard i + 5 <= p.count else { return nil }
                isText = p[i] == 0x58
                n = Int(readLE(p, i + 1, 4)); i += 5
                guard n >= 256 else { return nil }
            default: return nil
            }
            guard n <= p.count - i, p.count - i - n == 2, p[i + n] == 0x94, p[i + n + 1] == 0x2E else { return nil }
            guard framed == (n < frameSizeTarget) else { return nil }
            let payload = Array(p[i..<(i + n)])
            if isText, String(validating: payload, as: UTF8.self) == nil { return nil }
            return (isText, payload)
        }

        /// bincode `ValueWithTime` around `pickleBytes(value)`.
        public static func encode(value: [UInt8], expirationTime: Double) -> [UInt8] {
            wrap(inner: pickleBytes(value), expirationTime: expirationTime)
        }

        /// bincode `ValueWithTime` around arbitrary inner bytes.
        public static func wrap(inner: [UInt8], expirationTime: Double) -> [UInt8] {
            bincodeVarint(UInt64(inner.count)) + inner + le(expirationTime.bitPattern, 8)
        }

        /// bincode 2 standard-config varint.
        static func bincodeVarint(_ v: UInt64) -> [UInt8] {
            switch v {
            case 0..<251: [UInt8(v)]
            case 251...0xFFFF: [0xFB] + le(v, 2)
            case 0x1_0000...0xFFFF_FFFF: [0xFC] + le(v, 4)
            default: [0xFD] + le(v, 8)
            }
        }

        /// (value, bytes used), or nil when truncated or not minimal.
        static func readBincodeVarint(_ b: [UInt8]) -> (UInt64, Int)? {
            guard let first = b.first else { return nil }
            switch first {
            case 0..<251: return (UInt64(first), 1)
            case 0xFB: guard b.count >= 3 else { return nil }; let v = readLE(b, 1, 2); return v >= 251 ? (v, 3) : nil
            case 0xFC: guard b.count >= 5 else { return nil }; let v = readLE(b, 1, 4); return v > 0xFFFF ? (v, 5) : nil
            case 0xFD: guard b.count >= 9 else { return nil }; let v = readLE(b, 1, 8); return v > 0xFFFF_FFFF ? (v, 9) : nil
            default: return nil
            }
        }

        /// Unwraps `ValueWithTime` (exact length required); nil if the outer wrapping is malformed.
        public static func decode(_ bytes: [UInt8]) -> (payload: Payload, expirationTime: Double)? {
            guard let (n, used) = readBincodeVarint(bytes), n <= UInt64(bytes.count), Int(n) + used + 8 == bytes.count else { return nil }
            let inner = Array(bytes[used..<(used + Int(n))])
            let t = Double(bitPattern: readLE(bytes, used + Int(n), 8))
            switch unpickleSimple(inner) {
            case (false, let b)?: return (.bytes(b), t)
            case (true, let s)?: return (.text(s), t)
            case nil: return (.raw(inner), t)
            }
        }

        static func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
        static func readLE(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for j in 0..<n { v |= UInt64(b[at + j]) << (8 * UInt64(j)) }
            return v
        }
    }
}
