extension DHT {
    /// "Lattica mode" value wrapping, byte-compatible with the Rust Lattica DHT: the record value is
    /// bincode 1.x `ValueWithTime { value: Vec<u8>, expiration_time: f64 }` (u64 little-endian length,
    /// the bytes, f64 little-endian), and `value` holds a Python pickle.
    ///
    /// We write a pickle (protocol 4) of a plain `bytes` object exactly as CPython does and read
    /// back only that exact shape. Any other pickle is handed out as raw bytes: a pickle is NEVER
    /// evaluated here (unpickling untrusted data executes code).
    public enum LatticaValue {
        public enum Payload: Hashable, Sendable {
            /// The pickle was exactly `pickle.dumps(b"...", protocol=4)`: here are the bytes.
            case bytes([UInt8])
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
            switch p[i] {
            case 0x43:
                guard i + 1 < p.count else { return nil }
                n = Int(p[i + 1]); i += 2
            case 0x42:
                guard i + 5 <= p.count else { return nil }
                n = Int(readLE(p, i + 1, 4)); i += 5
                guard n >= 256 else { return nil }
            default: return nil
            }
            guard n <= p.count - i, p.count - i - n == 2, p[i + n] == 0x94, p[i + n + 1] == 0x2E else { return nil }
            guard framed == (n < frameSizeTarget) else { return nil }
            return Array(p[i..<(i + n)])
        }

        /// bincode `ValueWithTime` around `pickleBytes(value)`.
        public static func encode(value: [UInt8], expirationTime: Double) -> [UInt8] {
            wrap(inner: pickleBytes(value), expirationTime: expirationTime)
        }

        /// bincode `ValueWithTime` around arbitrary inner bytes.
        public static func wrap(inner: [UInt8], expirationTime: Double) -> [UInt8] {
            le(UInt64(inner.count), 8) + inner + le(expirationTime.bitPattern, 8)
        }

        /// Unwraps `ValueWithTime` (exact length required); nil if the outer wrapping is malformed.
        public static func decode(_ bytes: [UInt8]) -> (payload: Payload, expirationTime: Double)? {
            guard bytes.count >= 16 else { return nil }
            let n = readLE(bytes, 0, 8)
            guard n == UInt64(bytes.count - 16) else { return nil }
            let inner = Array(bytes[8..<(8 + Int(n))])
            let t = Double(bitPattern: readLE(bytes, 8 + Int(n), 8))
            if let b = unpickleBytes(inner) { return (.bytes(b), t) }
            return (.raw(inner), t)
        }

        static func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
        static func readLE(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for j in 0..<n { v |= UInt64(b[at + j]) << (8 * UInt64(j)) }
            return v
        }
    }
}
