import LatticaCore

extension NATPMP {
    public struct Settings: Sendable, Equatable {
        /// Requested lifetime of the mapping, seconds (RFC 6886 recommends 7200).
        public var lifetime: UInt32 = 7200
        /// First retransmission timeout; doubled after every try (RFC 6886 §3.1 starts at 250 ms).
        public var initialTimeout: Duration = .milliseconds(250)
        /// Tries per request before giving up. RFC 6886 allows 9 (64 s); a node where no router
        /// answers must give up fast: 4 tries are 250 + 500 + 1000 + 2000 ms = 3.75 s.
        public var tries = 4

        public init(lifetime: UInt32 = 7200, initialTimeout: Duration = .milliseconds(250), tries: Int = 4) {
            self.lifetime = lifetime; self.initialTimeout = initialTimeout; self.tries = tries
        }
    }

    public enum Directive: Sendable, Equatable {
        /// Send these bytes to the gateway's port 5351.
        case send([UInt8])
        /// Call `onTimer` at this instant (replaces any earlier request).
        case scheduleTimer(at: Instant)
        /// The router maps `externalIP:externalPort` to our port, for `lifetime` seconds.
        case mapped(externalIP: [UInt8], externalPort: UInt16, lifetime: UInt32)
        /// The mapping is gone (expired without renewal, or deleted by `stop`).
        case unmapped
        /// No usable answer: `noAnswer` (no NAT-PMP router), or `refused(code)`.
        case gaveUp(GiveUpReason)
    }

    public enum GiveUpReason: Sendable, Equatable {
        case noAnswer
        case refused(UInt16)
    }

    /// One TCP (or UDP) port mapping, kept alive: ask the external address, map, renew at half
    /// the granted lifetime, delete on stop. An answer that is not for the request in flight is
    /// ignored (counted by the shell through `ignored`).
    public struct Client: Sendable {
        enum Phase: Sendable, Equatable {
            case idle
            case askingAddress
            case mapping
            case mapped(renewAt: Instant, expiresAt: Instant)
            case renewing(expiresAt: Instant)
            case done
        }

        public let proto: Proto
        public let internalPort: UInt16
        public let settings: Settings
        private(set) var phase: Phase = .idle
        private var tries = 0
        private var deadline = Instant.zero
        private(set) public var externalIP: [UInt8] = []
        private(set) public var externalPort: UInt16 = 0
        /// Datagrams that were not an answer to the request in flight.
        private(set) public var ignored = 0

        public init(proto: Proto = .tcp, internalPort: UInt16, settings: Settings = Settings()) {
            self.proto = proto; self.internalPort = internalPort; self.settings = settings
        }

        public var isMapped: Bool {
            switch phase { case .mapped, .renewing: true; default: false }
        }

        public mutating func start(now: Instant) -> [Directive] {
            guard phase == .idle else { return [] }
            phase = .askingAddress
            return transmit(now: now, first: true)
        }

        public mutating func onDatagram(_ bytes: [UInt8], now: Instant) -> [Directive] {
            guard let r = NATPMP.decode(bytes) else { ignored += 1; return [] }
            switch (phase, r) {
            case (.askingAddress, .externalAddress(_, let ip)):
                externalIP = ip
                phase = .mapping
                return transmit(now: now, first: true)
            case (.mapping, .mapping(let p, _, let internalPort, let ext, let life)),
                 (.renewing, .mapping(let p, _, let internalPort, let ext, let life)):
                guard p == proto, internalPort == self.internalPort else { ignored += 1; return [] }
                guard life > 0, ext != 0 else { phase = .done; return [.gaveUp(.refused(0))] }
                externalPort = ext
                let lifetime = Duration.seconds(Int64(life))
                let renewAt = now + lifetime / 2
                phase = .mapped(renewAt: renewAt, expiresAt: now + lifetime)
                return [.mapped(externalIP: externalIP, externalPort: ext, lifetime: life), .scheduleTimer(at: renewAt)]
            case (.askingAddress, .failure(0, let code)), (.mapping, .failure(proto.rawValue, let code)):
                phase = .done
                return [.gaveUp(.refused(code))]
            case (.renewing(let expiresAt), .failure(proto.rawValue, _)):
                // keep what we have until it expires; then it is gone
                phase = .mapped(renewAt: expiresAt, expiresAt: expiresAt)
                return [.scheduleTimer(at: expiresAt)]
            default:
                ignored += 1
                return []
            }
        }

        public mutating func onTimer(now: Instant) -> [Directive] {
            switch phase {
            case .askingAddress, .mapping:
                guard now >= deadline else { return [.scheduleTimer(at: deadline)] }
                if tries >= settings.tries { phase = .done; return [.gaveUp(.noAnswer)] }
                return transmit(now: now, first: false)
            case .renewing(let expiresAt):
                if now >= expiresAt { phase = .done; return [.unmapped] }
                guard now >= deadline else { return [.scheduleTimer(at: deadline)] }
                if tries >= settings.tries {
                    // the router stopped answering: retry at the next renewal time, or lose it
                    phase = .mapped(renewAt: expiresAt, expiresAt: expiresAt)
                    return [.scheduleTimer(at: expiresAt)]
                }
                return transmit(now: now, first: false)
            case .mapped(let renewAt, let expiresAt):
                if now >= expiresAt { phase = .done; return [.unmapped] }
                guard now >= renewAt else { return [.scheduleTimer(at: renewAt)] }
                phase = .renewing(expiresAt: expiresAt)
                return transmit(now: now, first: true)
            case .idle, .done:
                return []
            }
        }

        /// Deletes a mapping we hold (lifetime 0, RFC 6886 §3.4) and stops.
        public mutating func stop(now: Instant) -> [Directive] {
            let held = isMapped
            phase = .done
            guard held else { return [] }
            return [.send(NATPMP.mappingRequest(proto, internalPort: internalPort, externalPort: 0, lifetime: 0)), .unmapped]
        }

        private mutating func transmit(now: Instant, first: Bool) -> [Directive] {
            tries = first ? 1 : tries + 1
            let timeout = settings.initialTimeout * (1 << (tries - 1))
            deadline = now + timeout
            let bytes: [UInt8]
            switch phase {
            case .askingAddress: bytes = NATPMP.externalAddressRequest()
            default:
                let suggested = externalPort != 0 ? externalPort : internalPort
                bytes = NATPMP.mappingRequest(proto, internalPort: internalPort, externalPort: suggested, lifetime: settings.lifetime)
            }
            return [.send(bytes), .scheduleTimer(at: deadline)]
        }
    }
}
