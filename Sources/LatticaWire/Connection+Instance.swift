public import LatticaCore
public import LatticaCrypto

extension Connection {
    public struct Instance: Sendable {
        enum Phase: Sendable {
            case securityNegotiation(Multistream.Instance)
            case handshake(Noise.Handshake)
            case muxerNegotiation(Multistream.Instance)
            case open
            case closed(CloseReason)
        }

        struct StreamSlot: Sendable {
            var negotiation: Multistream.Instance?
            var protocolID: String?
            let inbound: Bool
            /// Outbound with one proposal: writes go out right behind it (rust's V1Lazy).
            var optimistic: Bool
            /// Bytes fed to multistream-select, returned to yamux once negotiation ends.
            var negotiationBytes = 0
            var pingResponder: Ping.Responder?
        }

        public let role: Role
        public let settings: Settings
        /// What inbound streams may negotiate (computed once).
        let inboundProtocols: [String]
        let identity: Ed25519PrivateKey
        var phase: Phase
        var startedAt: Instant?
        var transport: Noise.Transport?
        var yamux: Yamux.Instance
        var streams: [StreamID: StreamSlot] = [:]
        public private(set) var remotePeer: PeerId?
        public private(set) var remotePayload: Noise.Payload?
        /// Encrypted (or, before Noise, raw) bytes for the socket, collected during one call.
        var raw: [UInt8] = []
        var events: [Directive] = []

        /// `noiseKeys`: the Noise handshake's key material, an input like time: the shell draws it
        /// from libsodium per connection; a simulation derives it from its seed.
        public init(role: Role, identity: Ed25519PrivateKey, settings: Settings, rng: SeededRandom, noiseKeys: Noise.Keys) {
            self.role = role
            self.settings = settings
            self.inboundProtocols = Self.inboundProtocols(settings)
            self.identity = identity
            var rng = rng
            let isDialer: Bool
            switch role {
            case .dialer: isDialer = true
                phase = .securityNegotiation(Multistream.Instance(dialing: [Noise.protocolID], settings: settings.multistream))
            case .listener: isDialer = false
                phase = .securityNegotiation(Multistream.Instance(listening: [Noise.protocolID], settings: settings.multistream))
            }
            yamux = Yamux.Instance(role: isDialer ? .client : .server, settings: settings.yamux, rng: rng.fork(), noiseFramed: true)
            pendingKeys = noiseKeys
        }
        var pendingKeys: Noise.Keys?

        public var isDialer: Bool { if case .dialer = role { true } else { false } }
        public var isEstablished: Bool { if case .open = phase { true } else { false } }
        public var isClosed: Bool { if case .closed = phase { true } else { false } }
        public var closeReason: CloseReason? { if case .closed(let r) = phase { r } else { nil } }
        public var streamCount: Int { streams.count }
        public var yamuxMetrics: Yamux.Metrics { yamux.metrics }
        public var rtt: Duration? { yamux.rtt }
        /// The protocol a stream agreed on, if it has.
        public func protocolID(of id: StreamID) -> String? { streams[id]?.protocolID }

        /// When to call `onTimer` next.
        public var nextDeadline: Instant? {
            switch phase {
            case .closed: return nil
            case .open: return yamux.nextDeadline
            default: return startedAt.map { $0 + settings.handshakeTimeout }
            }
        }

        /// `nextDeadline` and `streamCount` at once. Mutating only so that a shell holding the
        /// instance in a class property reads it in place (a getter call copies the whole value).
        public mutating func timerState() -> (deadline: Instant?, streams: Int) {
            (nextDeadline, streams.count)
        }

        /// Starts the connection: the dialer proposes `/noise`, the listener sends its header.
        /// (`onBytes` starts it implicitly if the shell did not.)
        public mutating func start(now: Instant) -> [Directive] {
            begin(now: now)
            return flush()
        }

        mutating func begin(now: Instant) {
            guard startedAt == nil else { return }
            startedAt = now
            guard case .securityNegotiation(var ms) = phase else { return }
            let d = ms.start()
            phase = .securityNegotiation(ms)
            handleSecurityNegotiation(d, now: now)
        }

        /// Raw bytes read from the socket.
        public mutating func onBytes(_ bytes: consuming [UInt8], now: Instant) -> [Directive] {
            begin(now: now)
            feedRaw(bytes, now: now)
            return flush()
        }

        /// Raw bytes the caller does not own (a read buffer, valid only during the call). Once the
        /// secure channel is up they are decrypted straight out of it (`Noise.Transport.decrypt(copying:)`);
        /// before, they are copied and handled as by `onBytes(_:now:)`.
        public mutating func onBytes(copying bytes: UnsafeRawBufferPointer, now: Instant) -> [Directive] {
            switch phase {
            case .muxerNegotiation, .open:
                guard var t = transport else { preconditionFailure("Connection: no transport after handshake") }
                transport = nil
                let result = t.decrypt(copying: bytes)
                transport = t
                switch result {
                case .failure(let f): close(.transportFailed(f))
                case .success(let plaintexts): for p in plaintexts where !isClosed { feedPlain(p, now: now) }
                }
                return flush()
            default:
                return onBytes(Array(bytes), now: now)
            }
        }

        /// The peer closed its side of the TCP connection.
        public mutating func onEndOfInput(now: Instant) -> [Directive] {
            if !isClosed { close(.remoteClosed) }
            return flush()
        }

        public mutating func onTimer(now: Instant) -> [Directive] {
            switch phase {
            case .closed: break
            case .open: absorb(yamux.onTimer(now: now), now: now)
            default:
                if let s = startedAt, now >= s + settings.handshakeTimeout { close(.handshakeTimeout) }
            }
            return flush()
        }

        /// Closes the connection (GoAway when the muxer is up).
        public mutating func close(now: Instant) -> [Directive] {
            if case .open = phase { absorb(yamux.goAway(.normal, now: now), now: now) }
            if !isClosed { close(.local) }
            return flush()
        }

        // MARK: internals

        mutating func flush() -> [Directive] {
            sealMuxerOutput()
            var out: [Directive] = []
            if !raw.isEmpty {
                out.reserveCapacity(events.count + 1)
                out.append(.send(raw))
                raw = []
            }
            if !events.isEmpty {
                out += events
                events.removeAll(keepingCapacity: true)
            }
            return out
        }

        mutating func close(_ reason: CloseReason) {
            guard !isClosed else { return }
            sealMuxerOutput()  // a GoAway, and what came before it, still goes out
            guard !isClosed else { return }  // sealing failed and closed it already
            phase = .closed(reason)
            streams = [:]
            events.append(.closed(reason))
        }

        mutating func feedRaw(_ bytes: consuming [UInt8], now: Instant) {
            switch phase {
            case .securityNegotiation(var ms):
                let d = ms.onBytes(bytes)
                phase = .securityNegotiation(ms)
                handleSecurityNegotiation(d, now: now)
            case .handshake(var hs):
                let d = hs.onBytes(bytes)
                phase = .handshake(hs)
                handleHandshake(d, now: now)
            case .muxerNegotiation, .open:
                guard var t = transport else { preconditionFailure("Connection: no transport after handshake") }
                transport = nil
                let result = t.decrypt(bytes)
                transport = t
                switch result {
                case .failure(let f): close(.transportFailed(f))
                case .success(let plaintexts): for p in plaintexts where !isClosed { feedPlain(p, now: now) }
                }
            case .closed:
                break
            }
        }

        mutating func handleSecurityNegotiation(_ ds: [Multistream.Directive], now: Instant) {
            for d in ds {
                switch d {
                case .send(let b): raw += b
                case .failed(let f): close(.securityNegotiationFailed(f))
                case .negotiated(_, let leftover):
                    var expected: PeerId?
                    if case .dialer(let p) = role { expected = p }
                    var hs = Noise.Handshake(initiator: isDialer, identity: identity, expectedPeer: expected,
                                             settings: settings.noise, keys: pendingKeys!)
                    pendingKeys = nil
                    let first = hs.start()
                    phase = .handshake(hs)
                    handleHandshake(first, now: now)
                    if !leftover.isEmpty, !isClosed { feedRaw(leftover, now: now) }
                }
            }
        }

        mutating func handleHandshake(_ ds: [Noise.Directive], now: Instant) {
            for d in ds {
                switch d {
                case .send(let b): raw += b
                case .failed(let f): close(.handshakeFailed(f))
                case .established(let session):
                    remotePeer = session.remotePeer
                    remotePayload = session.remotePayload
                    transport = session.transport
                    var ms = isDialer
                        ? Multistream.Instance(dialing: [Yamux.protocolID], settings: settings.multistream)
                        : Multistream.Instance(listening: [Yamux.protocolID], settings: settings.multistream)
                    let first = ms.start()
                    phase = .muxerNegotiation(ms)
                    handleMuxerNegotiation(first, now: now)
                    if !session.leftover.isEmpty, !isClosed { feedRaw(session.leftover, now: now) }
                }
            }
        }

        mutating func handleMuxerNegotiation(_ ds: [Multistream.Directive], now: Instant) {
            for d in ds {
                switch d {
                case .send(let b): sendPlain(b[...])
                case .failed(let f): close(.muxerNegotiationFailed(f))
                case .negotiated(_, let leftover):
                    phase = .open
                    events.append(.established(remotePeer: remotePeer!))
                    absorb(yamux.start(now: now), now: now)
                    if !leftover.isEmpty, !isClosed { feedPlain(leftover[...], now: now) }
                }
            }
        }

        /// Decrypted bytes: to the muxer negotiation or to yamux.
        mutating func feedPlain(_ plain: ArraySlice<UInt8>, now: Instant) {
            switch phase {
            case .muxerNegotiation(var ms):
                let d = ms.onBytes(plain)
                phase = .muxerNegotiation(ms)
                handleMuxerNegotiation(d, now: now)
            case .open:
                absorb(yamux.onBytes(plain, now: now), now: now)
            default:
                break
            }
        }

        /// Encrypts plaintext for the socket.
        mutating func sendPlain(_ bytes: ArraySlice<UInt8>) {
            guard !bytes.isEmpty, transport != nil else { return }
            raw.reserve(additional: bytes.count + (bytes.count / Noise.maxPlaintextLength + 1) * (2 + Noise.tagLength))
            if !transport!.encrypt(bytes, into: &raw) { close(.transportFailed(.nonceExhausted)) }
        }
    }
}
