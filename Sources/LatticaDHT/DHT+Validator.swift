import LatticaCore

extension DHT {
    /// Ed25519 verification injected by the shell (libsodium lives outside this pure target).
    public typealias VerifyEd25519 = @Sendable (_ publicKey: [UInt8], _ message: [UInt8], _ signature: [UInt8]) -> Bool

    /// Our signed value for keys under `/lattica/` (see Docs/DHT.md, "Signed records"):
    /// protobuf {payload=1 bytes, seq=2 uint64, author=3 bytes (Ed25519 public key, 32),
    /// signature=4 bytes (64)}; the signature covers `signingBytes(key:seq:payload:)`.
    public struct SignedValue: Hashable, Sendable {
        public var payload: [UInt8]
        public var seq: UInt64
        public var author: [UInt8]
        public var signature: [UInt8]

        public init(payload: [UInt8], seq: UInt64, author: [UInt8], signature: [UInt8]) {
            self.payload = payload; self.seq = seq; self.author = author; self.signature = signature
        }

        /// Domain tag of the signed encoding.
        public static let domain: [UInt8] = Array("lattica-dht-record:v1".utf8)

        /// domain ‖ 0x00 ‖ u64be(|key|) ‖ key ‖ u64be(seq) ‖ u64be(|payload|) ‖ payload.
        public static func signingBytes(key: [UInt8], seq: UInt64, payload: [UInt8]) -> [UInt8] {
            func be(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }
            var out = domain
            out.append(0)
            out += be(UInt64(key.count)); out += key
            out += be(seq)
            out += be(UInt64(payload.count)); out += payload
            return out
        }

        public func encoded() -> [UInt8] {
            var w = ProtobufWriter()
            w.bytes(1, payload)
            w.uint64(2, seq)
            w.bytes(3, author)
            w.bytes(4, signature)
            return w.bytes
        }

        public static func decode(_ bytes: ArraySlice<UInt8>) -> SignedValue? {
            var r = ProtobufReader(bytes)
            var v = SignedValue(payload: [], seq: 0, author: [], signature: [])
            do {
                while let f = try r.next() {
                    switch f {
                    case .bytes(1, let b): v.payload = Array(b)
                    case .varint(2, let s): v.seq = s
                    case .bytes(3, let b): v.author = Array(b)
                    case .bytes(4, let b): v.signature = Array(b)
                    default: return nil  // strict: nothing else may be signed-around
                    }
                }
            } catch { return nil }
            guard v.author.count == 32, v.signature.count == 64 else { return nil }
            return v
        }

        /// Builds a signed value with a signing closure (e.g. `Ed25519PrivateKey.sign`).
        public static func make(key: [UInt8], payload: [UInt8], seq: UInt64, author: [UInt8], sign: ([UInt8]) -> [UInt8]) -> SignedValue {
            SignedValue(payload: payload, seq: seq, author: author, signature: sign(signingBytes(key: key, seq: seq, payload: payload)))
        }
    }

    /// Record validation by key namespace (kad-dht spec "Entry validation": `Validate` + `Select`).
    ///
    /// - `/pk/<peer id bytes>`: the value is a libp2p `PublicKey` protobuf whose PeerId is the key's.
    /// - `/lattica/…`: a `SignedValue`, signature verified with `verify`; a newer `seq` wins; a
    ///   stored record is only replaced by the same author (first author wins at each node).
    /// - anything else: accepted when `acceptUnknownNamespaces` (Lattica's rust DHT stores bare keys).
    public struct Validator: Sendable {
        public var verify: VerifyEd25519?
        public var acceptUnknownNamespaces: Bool

        public init(verify: VerifyEd25519?, acceptUnknownNamespaces: Bool = true) {
            self.verify = verify; self.acceptUnknownNamespaces = acceptUnknownNamespaces
        }

        static let pk = Array("/pk/".utf8)
        static let lattica = Array("/lattica/".utf8)

        public func validate(key: [UInt8], value: [UInt8]) -> RecordRejection? {
            if key.starts(with: Self.pk) { return validatePublicKey(peer: Array(key.dropFirst(Self.pk.count)), value: value) }
            if key.starts(with: Self.lattica) {
                guard let verify else { return .invalid("no signature verifier configured") }
                guard let sv = SignedValue.decode(value[...]) else { return .invalid("not a signed value") }
                guard verify(sv.author, SignedValue.signingBytes(key: key, seq: sv.seq, payload: sv.payload), sv.signature) else {
                    return .invalid("bad signature")
                }
                return nil
            }
            return acceptUnknownNamespaces ? nil : .invalid("unknown namespace")
        }

        private func validatePublicKey(peer: [UInt8], value: [UInt8]) -> RecordRejection? {
            // PublicKey {Type=1 varint, Data=2 bytes}: must parse and carry both fields.
            var r = ProtobufReader(value[...])
            var hasType = false, hasData = false
            do {
                while let f = try r.next() {
                    switch f {
                    case .varint(1, let t): hasType = t <= 3
                    case .bytes(2, _): hasData = true
                    default: return .invalid("public key: unexpected field")
                    }
                }
            } catch { return .invalid("public key: not a protobuf") }
            guard hasType, hasData else { return .invalid("public key: missing fields") }
            // PeerId rule (peer-ids spec): identity multihash if the encoded key is <= 42 bytes, else sha2-256.
            let derived: [UInt8] = value.count <= 42 ? [0x00, UInt8(value.count)] + value : [0x12, 0x20] + PureSHA256.hash(value)
            return derived == peer ? nil : .keyMismatch
        }

        /// Index of the best of several valid values (stable: ties go to the earliest).
        public func select(key: [UInt8], values: [[UInt8]]) -> Int {
            guard key.starts(with: Self.lattica), !values.isEmpty else { return 0 }
            var best = 0
            var bestValue = SignedValue.decode(values[0][...])
            for i in values.indices.dropFirst() {
                guard let v = SignedValue.decode(values[i][...]) else { continue }
                if let b = bestValue, !Self.isNewer(v, than: b) { continue }
                best = i; bestValue = v
            }
            return best
        }

        /// Whether `new` may replace the stored `old` value (both already valid).
        public func mayReplace(key: [UInt8], old: [UInt8], new: [UInt8]) -> RecordRejection? {
            guard key.starts(with: Self.lattica) else { return nil }
            guard let o = SignedValue.decode(old[...]), let n = SignedValue.decode(new[...]) else { return nil }
            if o.author != n.author { return .invalid("author differs from the stored record's") }
            if o == n { return nil }
            return Self.isNewer(n, than: o) ? nil : .notNewer
        }

        /// Higher seq wins; equal seq: the lexicographically larger signature (deterministic everywhere).
        static func isNewer(_ a: SignedValue, than b: SignedValue) -> Bool {
            if a.seq != b.seq { return a.seq > b.seq }
            return b.signature.lexicographicallyPrecedes(a.signature)
        }
    }
}
