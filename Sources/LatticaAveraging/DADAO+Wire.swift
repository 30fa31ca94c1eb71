public import LatticaCore

extension DADAO {
    /// `/lattica/dadao/1.0.0` (ours, Docs/WIRE.md §DADAO): one gossip exchange per stream, in the
    /// swarm's length-prefixed request/response framing (one message each way).
    ///
    ///     request: u8 version (1) | uvarint run length | run (UTF-8, ≤ 128 bytes) | uvarint count | count × f64 LE
    ///     answer:  u8 version (1) | u8 status | uvarint count | count × f64 LE
    ///
    /// The request carries the initiator's Y + Z; the answer (status 0) the answerer's, after it
    /// applied the exchange on its side. Status 1 = unknown run, 2 = not ready (its DADAO state
    /// does not exist yet), 3 = refused (the request's payload had the wrong dimension or a
    /// NaN/Inf: nothing applied), 4 = busy (in an exchange of its own: try another member);
    /// count is 0 then. f64 on the wire: both ends compute
    /// w = (Y+Z)_i − (Y+Z)_j from the same bits, so the exchange conserves what the ODE conserves.
    public enum Wire {
        public static let protocolID = "/lattica/dadao/1.0.0"
        public static let version: UInt8 = 1
        /// Largest payload dimension (2 MiB of f64): DADAO is for convex models with few parameters.
        public static let maxDimension = 1 << 18
        public static let maxRunLength = 128
        /// Upper bound of a request or answer in bytes (the swarm's per-message limit).
        public static let maxMessageBytes = 1 + 10 + maxRunLength + 10 + 8 * maxDimension

        public enum Status: UInt8, Sendable { case payload = 0, unknownRun = 1, notReady = 2, refused = 3, busy = 4 }

        public struct Request: Hashable, Sendable {
            public var run: String
            public var payload: [Double]
            public init(run: String, payload: [Double]) { self.run = run; self.payload = payload }
        }

        public struct Answer: Hashable, Sendable {
            public var status: Status
            public var payload: [Double]
            public init(status: Status, payload: [Double] = []) { self.status = status; self.payload = payload }
        }

        public enum DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
            case truncated(String)
            case badVersion(UInt8)
            case badStatus(UInt8)
            case tooLong(String)
            case trailingBytes
            case badRun
            /// A payload with a count that is not the one expected (answers: the run's dimension).
            case wrongCount(got: Int, expected: Int)

            public var description: String {
                switch self {
                case .truncated(let w): "truncated \(w)"
                case .badVersion(let v): "version \(v), expected \(Wire.version)"
                case .badStatus(let s): "unknown status \(s)"
                case .tooLong(let w): "\(w) too long"
                case .trailingBytes: "trailing bytes"
                case .badRun: "run id is not UTF-8"
                case .wrongCount(let g, let e): "payload of \(g) values, expected \(e)"
                }
            }
        }

        public static func encode(_ r: Request) -> [UInt8] {
            let run = Array(r.run.utf8)
            var out: [UInt8] = [version]
            out.reserveCapacity(24 + run.count + 8 * r.payload.count)
            out += Varint.encoded(UInt64(run.count))
            out += run
            appendPayload(r.payload, to: &out)
            return out
        }

        public static func encode(_ a: Answer) -> [UInt8] {
            var out: [UInt8] = [version, a.status.rawValue]
            out.reserveCapacity(12 + 8 * a.payload.count)
            appendPayload(a.status == .payload ? a.payload : [], to: &out)
            return out
        }

        /// Any payload count up to `maxDimension` is decoded (the shell checks it against the run's
        /// dimension and counts a mismatch as its own reason); values are not checked here.
        public static func decodeRequest(_ b: [UInt8]) throws(DecodeError) -> Request {
            guard b.count >= 1 else { throw .truncated("version") }
            guard b[0] == version else { throw .badVersion(b[0]) }
            var i = 1
            let n = try uvarint(b, &i, "run length")
            guard n <= UInt64(maxRunLength) else { throw .tooLong("run") }
            guard b.count - i >= Int(n) else { throw .truncated("run") }
            guard let run = String(validating: b[i..<(i + Int(n))], as: UTF8.self) else { throw .badRun }
            i += Int(n)
            let payload = try decodePayload(b, &i, expected: nil)
            return Request(run: run, payload: payload)
        }

        /// `expectedCount`: the run's dimension; a payload answer of any other count is refused
        /// before a value is read.
        public static func decodeAnswer(_ b: [UInt8], expectedCount: Int) throws(DecodeError) -> Answer {
            guard b.count >= 2 else { throw .truncated("header") }
            guard b[0] == version else { throw .badVersion(b[0]) }
            guard let status = Status(rawValue: b[1]) else { throw .badStatus(b[1]) }
            var i = 2
            let payload = try decodePayload(b, &i, expected: status == .payload ? expectedCount : 0)
            return Answer(status: status, payload: payload)
        }

        static func appendPayload(_ p: [Double], to out: inout [UInt8]) {
            out += Varint.encoded(UInt64(p.count))
            for v in p { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }

        static func decodePayload(_ b: [UInt8], _ i: inout Int, expected: Int?) throws(DecodeError) -> [Double] {
            let count = try uvarint(b, &i, "count")
            guard count <= UInt64(maxDimension) else { throw .tooLong("payload") }
            if let expected, count != UInt64(expected) { throw .wrongCount(got: Int(count), expected: expected) }
            let n = Int(count)
            guard b.count - i == 8 * n else { throw b.count - i < 8 * n ? .truncated("payload") : .trailingBytes }
            var out = [Double](repeating: 0, count: n)
            for k in 0..<n {
                var bits: UInt64 = 0
                for j in 0..<8 { bits |= UInt64(b[i + 8 * k + j]) << (8 * UInt64(j)) }
                out[k] = Double(bitPattern: bits)
            }
            i += 8 * n
            return out
        }

        /// Averaging.Wire's uvarint reader, with this protocol's errors.
        static func uvarint(_ b: [UInt8], _ i: inout Int, _ what: String) throws(DecodeError) -> UInt64 {
            do { return try Averaging.Wire.uvarint(b, &i, what) } catch {
                if case .truncated = error { throw .truncated(what) }
                throw .tooLong(what)
            }
        }
    }
}
