public import LatticaCore
public import LatticaCrypto

extension Noise {
    public struct Settings: Sendable {
        /// Muxers advertised in `NoiseExtensions.stream_muxers`. Empty by default, so that muxer
        /// negotiation always happens with multistream-select (as with rust-libp2p).
        public var streamMuxers: [String] = []
        public init(streamMuxers: [String] = []) { self.streamMuxers = streamMuxers }
    }

    /// The result of a successful handshake.
    public struct Session: Sendable {
        public let remotePeer: PeerId
        public let remotePayload: Payload
        public let remoteStaticKey: [UInt8]
        /// The Noise handshake hash `h` (channel binding).
        public let handshakeHash: [UInt8]
        public var transport: Transport
        /// Transport-phase bytes that arrived together with the last handshake message.
        public let leftover: [UInt8]
    }

    public enum Directive: Sendable {
        case send([UInt8])
        case established(Session)
        case failed(Failure)
    }

    /// The libp2p Noise handshake for one connection. The initiator is the dialer; when it knows
    /// whom it dials (`expectedPeer`), any other identity is rejected.
    public struct Handshake: Sendable {
        public let isInitiator: Bool
        public let expectedPeer: PeerId?
        let identity: Ed25519PrivateKey
        let settings: Settings
        var xx: XXHandshake
        var buffer: [UInt8] = []
        var started = false
        public private(set) var isFinished = false
        /// Test hook: replaces our signed payload (bad-signature tests).
        var payloadOverride: [UInt8]?

        /// - Parameters:
        ///   - keys: the handshake's key material (static and ephemeral X25519 keys), drawn by the
        ///     shell (fresh from libsodium per connection) or from a seeded generator in a
        ///     simulation, so that a simulated run replays bit for bit.
        public init(initiator: Bool, identity: Ed25519PrivateKey, expectedPeer: PeerId? = nil,
                    settings: Settings = Settings(), keys: Noise.Keys) {
            self.isInitiator = initiator
            self.expectedPeer = initiator ? expectedPeer : nil
            self.identity = identity
            self.settings = settings
            self.xx = XXHandshake(initiator: initiator, staticKey: keys.staticKey, ephemeral: keys.ephemeralKey)
        }

        /// Initiator: message 1 (`e`, empty payload). Responder: nothing.
        public mutating func start() -> [Directive] {
            guard !started else { return [] }
            started = true
            guard isInitiator else { return [] }
            return write(payload: [])
        }

        public mutating func onBytes(_ bytes: some Collection<UInt8>) -> [Directive] {
            guard !isFinished else { return [] }
            var directives = start()
            buffer.append(contentsOf: bytes)
            var offset = 0
            while !isFinished, buffer.count - offset >= 2 {
                let length = Int(buffer[offset]) << 8 | Int(buffer[offset + 1])
                guard buffer.count - offset - 2 >= length else { break }
                let message = buffer[(offset + 2)..<(offset + 2 + length)]
                offset += 2 + length
                directives += process(message, leftover: buffer[offset...])
            }
            if isFinished { buffer = [] } else if offset > 0 { buffer.removeFirst(offset) }
            return directives
        }

        private mutating func fail(_ f: Failure) -> [Directive] {
            isFinished = true
            return [.failed(f)]
        }

        private mutating func write(payload: [UInt8]) -> [Directive] {
            do {
                let m = try xx.writeMessage(payload: payload)
                var frame: [UInt8] = [UInt8(m.count >> 8), UInt8(truncatingIfNeeded: m.count)]
                frame += m
                return [.send(frame)]
            } catch {
                return fail(error)
            }
        }

        private func signedPayload() -> [UInt8] {
            payloadOverride ?? Payload.signed(identity: identity, staticPublicKey: xx.s.publicKey,
                                              streamMuxers: settings.streamMuxers).encoded()
        }

        private mutating func process(_ message: ArraySlice<UInt8>, leftover: ArraySlice<UInt8>) -> [Directive] {
            guard !xx.isMyTurn else { return fail(.unexpectedMessage) }
            let payloadBytes: [UInt8]
            do { payloadBytes = try xx.readMessage(message) } catch { return fail(error) }
            if xx.messageIndex == 1 {
                // Responder got message 1: its payload is unauthenticated and ignored.
                return write(payload: signedPayload())
            }
            let payload: Payload
            let remote: PeerId
            do {
                payload = try Payload(decoding: payloadBytes[...])
                remote = try payload.verify(staticPublicKey: xx.rs!)
            } catch {
                return fail(error)
            }
            if let expectedPeer, expectedPeer != remote {
                return fail(.peerMismatch(expected: expectedPeer, actual: remote))
            }
            var directives: [Directive] = []
            if xx.messageIndex == 2 {
                directives = write(payload: signedPayload())
                if isFinished { return directives }
            }
            isFinished = true
            let keys = xx.split()
            let session = Session(remotePeer: remote, remotePayload: payload, remoteStaticKey: xx.rs!,
                                  handshakeHash: xx.symmetric.h,
                                  transport: Transport(sendKey: keys.send, receiveKey: keys.receive),
                                  leftover: Array(leftover))
            directives.append(.established(session))
            return directives
        }
    }
}
