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
        public let proto: Proto
        public let internalPort: UInt16
        public let settings: Settings
        private(set) var lease: MappingLease
        /// The request in flight while `lease` is requesting: the external address (first), then the mapping.
        private var askingAddress = false
        private(set) public var externalIP: [UInt8] = []
        private(set) public var externalPort: UInt16 = 0
        /// Datagrams that were not an answer to the request in flight.
        private(set) public var ignored = 0

        public init(proto: Proto = .tcp, internalPort: UInt16, settings: Settings = Settings()) {
            self.proto = proto; self.internalPort = internalPort; self.settings = settings
            lease = MappingLease(initialTimeout: settings.initialTimeout, maxTries: settings.tries)
        }

        public var isMapped: Bool { lease.isMapped }

        public mutating func start(now: Instant) -> [Directive] {
            guard lease.phase == .idle else { return [] }
            askingAddress = true
            let step = lease.request(now: now)
            return directives(step)
        }

        public mutating func onDatagram(_ bytes: [UInt8], now: Instant) -> [Directive] {
            guard let r = NATPMP.decode(bytes) else { ignored += 1; return [] }
            switch (lease.phase, r) {
            case (.requesting, .externalAddress(_, let ip)) where askingAddress:
                externalIP = ip
                askingAddress = false
                let step = lease.request(now: now)
            return directives(step)
            case (.requesting, .mapping(let p, _, let internalPort, let ext, let life)) where !askingAddress,
                 (.renewing, .mapping(let p, _, let internalPort, let ext, let life)):
                guard p == proto, internalPort == self.internalPort else { ignored += 1; return [] }
                guard life > 0, ext != 0 else { lease.finish(); return [.gaveUp(.refused(0))] }
                externalPort = ext
                let renewAt = lease.granted(lifetime: life, now: now)
                return [.mapped(externalIP: externalIP, externalPort: ext, lifetime: life), .scheduleTimer(at: renewAt)]
            case (.requesting, .failure(0, let code)) where askingAddress,
                 (.requesting, .failure(proto.rawValue, let code)) where !askingAddress:
                lease.finish()
                return [.gaveUp(.refused(code))]
            case (.renewing, .failure(proto.rawValue, _)):
                // keep what we have until it expires; then it is gone
                return lease.keepUntilExpiry().map { [.scheduleTimer(at: $0)] } ?? []
            default:
                ignored += 1
                return []
            }
        }

        public mutating func onTimer(now: Instant) -> [Directive] {
            // the step first: `directives` must read the lease after it moved
            let step = lease.onTimer(now: now)
            return directives(step)
        }

        /// Deletes a mapping we hold (lifetime 0, RFC 6886 §3.4) and stops.
        public mutating func stop(now: Instant) -> [Directive] {
            let held = lease.isMapped
            lease.finish()
            guard held else { return [] }
            return [.send(NATPMP.mappingRequest(proto, internalPort: internalPort, externalPort: 0, lifetime: 0)), .unmapped]
        }

        private func directives(_ step: MappingLease.Step) -> [Directive] {
            switch step {
            case .nothing: return []
            case .wait(let t): return [.scheduleTimer(at: t)]
            case .gaveUp: return [.gaveUp(.noAnswer)]
            case .expired: return [.unmapped]
            case .send(let t):
                let bytes: [UInt8]
                if lease.phase == .requesting && askingAddress {
                    bytes = NATPMP.externalAddressRequest()
                } else {
                    let suggested = externalPort != 0 ? externalPort : internalPort
                    bytes = NATPMP.mappingRequest(proto, internalPort: internalPort, externalPort: suggested, lifetime: settings.lifetime)
                }
                return [.send(bytes), .scheduleTimer(at: t)]
            }
        }
    }
}
