public import LatticaCore

extension DADAO {
    /// A node's DADAO state as the daemon saves it (`<data-dir>/runs/<run>/dadao.state`, ours,
    /// Docs/WIRE.md "DADAO state file"), so that a node killed with `kill -9` resumes where it was
    /// instead of at x0 and t = 0. Little endian throughout; 88 + 48·d bytes:
    ///
    ///     0   4  magic "LDAS"            4  u16 version (1)       6  u16 0
    ///     8   u32 dimension d (1 … 2^18) 12 u32 0
    ///     16  f64 L                      24 f64 μ
    ///     32  f64 time: the DADAO time of the state (its last event, in time units)
    ///     40  i64 wall start: UNIX time in ns of this node's run time 0
    ///     48  u64 gradients  56 u64 exchanges  64 u64 failures  72 u64 refused
    ///     80  6·d × f64: X, X̃, Y, Ỹ, Z, Z̃
    ///     80 + 48·d  u64 FNV-1a-64 of every byte before it
    ///
    /// Pure: `encode` and `decode` do no I/O (the daemon writes a temporary file and renames it).
    public struct Snapshot: Hashable, Sendable {
        public var L: Double, mu: Double
        public var time: Double
        public var wallStartNanoseconds: Int64
        public var gradients: Int, gossips: Int, failures: Int, rejected: Int
        /// Rows X, X̃, Y, Ỹ, Z, Z̃.
        public var state: [[Double]]
        public var dimension: Int { state.first?.count ?? 0 }

        public init(L: Double, mu: Double, time: Double, wallStartNanoseconds: Int64,
                    gradients: Int = 0, gossips: Int = 0, failures: Int = 0, rejected: Int = 0, state: [[Double]]) {
            self.L = L; self.mu = mu; self.time = time; self.wallStartNanoseconds = wallStartNanoseconds
            self.gradients = gradients; self.gossips = gossips; self.failures = failures; self.rejected = rejected
            self.state = state
        }
    }

    public enum StateFile {
        public static let magic: [UInt8] = Array("LDAS".utf8)
        public static let version: UInt16 = 1
        public static let headerBytes = 80

        public static func size(dimension d: Int) -> Int { headerBytes + 48 * d + 8 }

        public enum DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
            case truncated(Int)
            case badMagic
            case badVersion(UInt16)
            case badDimension(Int)
            case wrongSize(got: Int, expected: Int)
            case wrongDimension(got: Int, expected: Int)
            case badChecksum
            case badValues(String)

            /// The label of `lattica_train_dadao_state_errors_total{reason}`.
            public var reason: String {
                switch self {
                case .truncated, .wrongSize: "truncated"
                case .badMagic, .badVersion: "format"
                case .badDimension, .wrongDimension: "dimension"
                case .badChecksum: "checksum"
                case .badValues: "values"
                }
            }

            public var description: String {
                switch self {
                case .truncated(let n): "truncated: \(n) bytes, shorter than the \(StateFile.headerBytes)-byte header"
                case .badMagic: "not a DADAO state file (magic is not LDAS)"
                case .badVersion(let v): "version \(v), this daemon reads \(StateFile.version)"
                case .badDimension(let d): "dimension \(d) out of 1...\(Wire.maxDimension)"
                case .wrongSize(let g, let e): "\(g) bytes, a state of its dimension has \(e) (truncated or padded)"
                case .wrongDimension(let g, let e): "a state of dimension \(g), the run's model has \(e)"
                case .badChecksum: "checksum mismatch (a corrupt file)"
                case .badValues(let w): "bad values: \(w)"
                }
            }
        }

        /// FNV-1a, 64 bits.
        public static func checksum(_ b: some Collection<UInt8>) -> UInt64 {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for x in b { h = (h ^ UInt64(x)) &* 0x0000_0100_0000_01B3 }
            return h
        }

        public static func encode(_ s: Snapshot) -> [UInt8] {
            precondition(s.state.count == 6 && s.state.allSatisfy { $0.count == s.dimension }, "a DADAO state is six vectors of one dimension")
            var out: [UInt8] = []
            out.reserveCapacity(size(dimension: s.dimension))
            func u64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
            func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
            out += magic
            out += [UInt8(truncatingIfNeeded: version), UInt8(truncatingIfNeeded: version >> 8), 0, 0]
            u32(UInt32(s.dimension)); u32(0)
            u64(s.L.bitPattern); u64(s.mu.bitPattern); u64(s.time.bitPattern)
            u64(UInt64(bitPattern: s.wallStartNanoseconds))
            for c in [s.gradients, s.gossips, s.failures, s.rejected] { u64(UInt64(max(0, c))) }
            for row in s.state { for v in row { u64(v.bitPattern) } }
            u64(checksum(out))
            return out
        }

        /// The snapshot in `b`; `expectedDimension` (the run's model) when known. Never traps.
        public static func decode(_ b: [UInt8], expectedDimension: Int? = nil) throws(DecodeError) -> Snapshot {
            guard b.count >= headerBytes else { throw .truncated(b.count) }
            func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
            func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) } }
            guard Array(b[0..<4]) == magic else { throw .badMagic }
            let v = UInt16(b[4]) | UInt16(b[5]) << 8
            guard v == version else { throw .badVersion(v) }
            let d = Int(u32(8))
            guard (1...Wire.maxDimension).contains(d) else { throw .badDimension(d) }
            guard b.count == size(dimension: d) else { throw .wrongSize(got: b.count, expected: size(dimension: d)) }
            guard checksum(b[0..<(b.count - 8)]) == u64(b.count - 8) else { throw .badChecksum }
            if let e = expectedDimension, e != d { throw .wrongDimension(got: d, expected: e) }
            let L = Double(bitPattern: u64(16)), mu = Double(bitPattern: u64(24)), time = Double(bitPattern: u64(32))
            guard L.isFinite, mu.isFinite, mu > 0, L >= mu else { throw .badValues("L \(L), μ \(mu)") }
            guard time.isFinite, time >= 0 else { throw .badValues("time \(time)") }
            var counters: [Int] = []
            for i in 0..<4 {
                let c = u64(48 + 8 * i)
                guard c <= UInt64(Int32.max) else { throw .badValues("counter \(c)") }
                counters.append(Int(c))
            }
            var state: [[Double]] = []
            state.reserveCapacity(6)
            for r in 0..<6 {
                let base = headerBytes + 8 * d * r
                let row = (0..<d).map { Double(bitPattern: u64(base + 8 * $0)) }
                guard row.allSatisfy(\.isFinite) else { throw .badValues("NaN or Inf in row \(r)") }
                state.append(row)
            }
            return Snapshot(L: L, mu: mu, time: time, wallStartNanoseconds: Int64(bitPattern: u64(40)),
                            gradients: counters[0], gossips: counters[1], failures: counters[2], rejected: counters[3], state: state)
        }
    }
}

extension DADAO.Instance {
    /// An instance resumed from a saved state (`DADAO.StateFile`) of the same dimension.
    public init(restoring state: [[Double]], lastEvent: Instant, constants: DADAO.Constants) {
        precondition(state.count == 6 && state.allSatisfy { $0.count == state[0].count }, "a DADAO state is six vectors of one dimension")
        self.init(initial: state[0], constants: constants, now: lastEvent)
        self.restore(state)
    }

    /// The snapshot of this instance's state (at its last event).
    public func snapshot(wallStartNanoseconds: Int64) -> DADAO.Snapshot {
        DADAO.Snapshot(L: constants.L, mu: constants.mu, time: lastEvent.seconds, wallStartNanoseconds: wallStartNanoseconds, state: state)
    }
}
