public import LatticaCore
public import LatticaCrypto

/// noise-libp2p (`/noise`): Noise_XX_25519_ChaChaPoly_SHA256 with a signed identity payload.
/// Spec: https://github.com/libp2p/specs/blob/master/noise/README.md and the Noise spec rev 34
/// (https://noiseprotocol.org/noise.html). Byte layout: Docs/WIRE.md.
///
/// Every Noise message on the wire is `u16be(length) || message`, length <= 65535. Handshake
/// payloads (messages 2 and 3) are the protobuf `NoiseHandshakePayload`; transport messages are
/// ChaCha20-Poly1305 ciphertexts (plaintext <= 65519 bytes) with a 64-bit counter nonce.
public enum Noise {
    public static let protocolID = "/noise"
    public static let protocolName = "Noise_XX_25519_ChaChaPoly_SHA256"
    public static let signaturePrefix = Array("noise-libp2p-static-key:".utf8)
    public static let maxMessageLength = 65535
    public static let tagLength = 16
    public static let maxPlaintextLength = maxMessageLength - tagLength

    public enum Failure: Error, Hashable, Sendable {
        /// A handshake message shorter than its pattern requires.
        case truncatedMessage
        /// AEAD authentication failed (tampering or wrong keys).
        case decryptionFailed
        /// A DH with the peer's key gave the all-zero output (low-order point).
        case weakKey
        /// The handshake payload is not a valid `NoiseHandshakePayload`.
        case malformedPayload
        /// The identity key type is not supported (only Ed25519).
        case unsupportedKeyType
        /// The identity signature over the static key does not verify.
        case badSignature
        /// The dialer expected a different peer.
        case peerMismatch(expected: PeerId, actual: PeerId)
        /// Bytes arrived that the handshake did not expect (e.g. before its turn).
        case unexpectedMessage
        /// 2^64 - 1 messages in one direction: the connection must close (Noise §5.1).
        case nonceExhausted
    }

    /// The libp2p handshake payload (`NoiseHandshakePayload`, fields 1, 2 and 4).
    public struct Payload: Hashable, Sendable {
        /// Protobuf-encoded libp2p `PublicKey`.
        public var identityKey: [UInt8]
        public var identitySignature: [UInt8]
        /// `NoiseExtensions.stream_muxers` (field 2 of field 4), for early muxer negotiation.
        public var streamMuxers: [String]

        public init(identityKey: [UInt8], identitySignature: [UInt8], streamMuxers: [String] = []) {
            self.identityKey = identityKey
            self.identitySignature = identitySignature
            self.streamMuxers = streamMuxers
        }

        public func encoded() -> [UInt8] {
            var w = ProtobufWriter()
            w.bytes(1, identityKey)
            w.bytes(2, identitySignature)
            if !streamMuxers.isEmpty {
                var ext = ProtobufWriter()
                for m in streamMuxers { ext.string(2, m) }
                w.message(4, ext)
            }
            return w.bytes
        }

        /// Decodes; unknown fields are skipped, at most 64 muxer names of <= 256 bytes are kept.
        public init(decoding bytes: ArraySlice<UInt8>) throws(Failure) {
            var key: [UInt8]?, sig: [UInt8]?
            var muxers: [String] = []
            var r = ProtobufReader(bytes)
            do {
                while let f = try r.next() {
                    switch f {
                    case .bytes(1, let v): key = Array(v)
                    case .bytes(2, let v): sig = Array(v)
                    case .bytes(4, let v):
                        var e = ProtobufReader(v)
                        while let g = try e.next() {
                            if case .bytes(2, let m) = g {
                                guard muxers.count < 64, m.count <= 256,
                                      let s = String(validating: m, as: UTF8.self) else { throw Failure.malformedPayload }
                                muxers.append(s)
                            }
                        }
                    default: break
                    }
                }
            } catch {
                throw .malformedPayload
            }
            guard let key, let sig else { throw .malformedPayload }
            self.init(identityKey: key, identitySignature: sig, streamMuxers: muxers)
        }

        /// The payload proving that `identity` owns the Noise static key `staticPublicKey`.
        public static func signed(identity: Ed25519PrivateKey, staticPublicKey: [UInt8], streamMuxers: [String] = []) -> Payload {
            let proto = PublicKeyProto(type: .ed25519, data: identity.publicKey.bytes)
            return Payload(identityKey: proto.encoded(),
                           identitySignature: identity.sign(Noise.signaturePrefix + staticPublicKey),
                           streamMuxers: streamMuxers)
        }

        /// Checks the signature over the remote static key; returns the remote peer id.
        public func verify(staticPublicKey: [UInt8]) throws(Failure) -> PeerId {
            let proto: PublicKeyProto
            do { proto = try PublicKeyProto(decoding: identityKey[...]) } catch { throw .malformedPayload }
            guard proto.type == .ed25519 else { throw .unsupportedKeyType }
            let key: Ed25519PublicKey
            do { key = try Ed25519PublicKey(bytes: proto.data) } catch { throw .malformedPayload }
            guard key.isValidSignature(identitySignature, for: Noise.signaturePrefix + staticPublicKey) else {
                throw .badSignature
            }
            return PeerId(publicKey: proto)
        }
    }
}

extension Noise {
    /// The X25519 key material of one handshake. It is an input of the handshake, never drawn by
    /// it: the libuv shell draws fresh keys from libsodium for each connection
    /// (`X25519PrivateKey.generate()`), a simulation derives them from its seed (`seeded`).
    public struct Keys: Sendable {
        public var staticKey: X25519PrivateKey
        public var ephemeralKey: X25519PrivateKey

        public init(staticKey: X25519PrivateKey, ephemeralKey: X25519PrivateKey) {
            self.staticKey = staticKey
            self.ephemeralKey = ephemeralKey
        }

        /// Keys from a seeded generator: deterministic, for simulations and tests only.
        public static func seeded(_ rng: inout SeededRandom) -> Keys {
            func key() -> X25519PrivateKey {
                var b = [UInt8](repeating: 0, count: 32)
                for i in stride(from: 0, to: 32, by: 8) {
                    var v = rng.next()
                    for j in 0..<8 { b[i + j] = UInt8(truncatingIfNeeded: v); v >>= 8 }
                }
                // Any 32 bytes are a valid X25519 scalar (clamped by the scalar multiplication).
                return try! X25519PrivateKey(bytes: b)
            }
            return Keys(staticKey: key(), ephemeralKey: key())
        }
    }
}
