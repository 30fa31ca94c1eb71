import LatticaCore

extension PCP {
    public enum Directive: Sendable, Equatable {
        /// Send these bytes to the server's port 5351.
        case send([UInt8])
        /// Call `onTimer` at this instant (replaces any earlier request).
        case scheduleTimer(at: Instant)
        /// The server maps `externalIP:externalPort` to our port for `lifetime` seconds.
        case mapped(externalIP: [UInt8], externalPort: UInt16, lifetime: UInt32)
        /// The mapping is gone (expired without renewal, or deleted by `stop`).
        case unmapped
        /// A datagram that was not a valid answer to the request in flight (counted by the shell).
        case rejected(DecodeError)
        case gaveUp(GiveUpReason)
    }

    public enum GiveUpReason: Sendable, Equatable {
        case noAnswer
        /// The server speaks another version (0: NAT-PMP only): fall back to NAT-PMP.
        case unsupportedVersion(UInt8)
        /// An RFC 6887 §7.4 result code.
        case refused(UInt8)
    }

    /// One TCP port mapping over PCP MAP, kept alive: map, renew at half the granted lifetime
    /// (same nonce, RFC 6887 §11.2.1), delete (lifetime 0) on stop. Retransmission follows the
    /// NAT-PMP client's schedule (250 ms doubling, 4 tries = 3.75 s) rather than RFC 6887's
    /// IRT of 3 s, so that the fallback to NAT-PMP comes within seconds where no PCP server is.
    public struct Client: Sendable {
        public let internalPort: UInt16
        public let clientIP: [UInt8]
        public let nonce: [UInt8]
        public let settings: NATPMP.Settings
        private(set) var lease: MappingLease
        private(set) public var externalIP: [UInt8] = []
        private(set) public var externalPort: UInt16 = 0
        private(set) public var lifetime: UInt32 = 0

        /// `clientIP`: our address on the gateway's network (4 bytes); `nonce`: 12 random bytes
        /// drawn by the shell (the instance does not draw randomness itself).
        public init(internalPort: UInt16, clientIP: [UInt8], nonce: [UInt8], settings: NATPMP.Settings = .init()) {
            precondition(nonce.count == 12, "PCP nonce is 12 bytes")
            self.internalPort = internalPort; self.clientIP = clientIP; self.nonce = nonce; self.settings = settings
            lease = MappingLease(initialTimeout: settings.initialTimeout, maxTries: settings.tries)
        }

        public var isMapped: Bool { lease.isMapped }

        public mutating func start(now: Instant) -> [Directive] {
            guard lease.phase == .idle else { return [] }
            let step = lease.request(now: now)
            return directives(step)
        }

        public mutating func onDatagram(_ bytes: [UInt8], now: Instant) -> [Directive] {
            let renewing: Bool
            switch lease.phase {
            case .requesting: renewing = false
            case .renewing: renewing = true
            default: return []   // nothing in flight: a late duplicate
            }
            switch PCP.decode(bytes, nonce: nonce, internalPort: internalPort) {
            case .failure(let e):
                return [.rejected(e)]
            case .success(.unsupportedVersion(let v)):
                if renewing { return keep() }
                lease.finish()
                return [.gaveUp(.unsupportedVersion(v))]
            case .success(.map(let m)):
                guard m.resultCode == ResultCode.success, m.lifetime > 0, m.externalPort != 0, m.externalIP.count == 4 else {
                    if renewing { return keep() }
                    lease.finish()
                    return [.gaveUp(.refused(m.resultCode))]
                }
                externalIP = m.externalIP
                externalPort = m.externalPort
                lifetime = m.lifetime
                let renewAt = lease.granted(lifetime: m.lifetime, now: now)
                return [.mapped(externalIP: m.externalIP, externalPort: m.externalPort, lifetime: m.lifetime), .scheduleTimer(at: renewAt)]
            }
        }

        public mutating func onTimer(now: Instant) -> [Directive] {
            // the step first: `directives` must read the lease after it moved
            let step = lease.onTimer(now: now)
            return directives(step)
        }

        /// Deletes a mapping we hold (MAP with lifetime 0 and the same nonce, RFC 6887 §15) and stops.
        public mutating func stop(now: Instant) -> [Directive] {
            let held = lease.isMapped
            lease.finish()
            guard held else { return [] }
            return [.send(request(lifetime: 0)), .unmapped]
        }

        /// The server refused or stopped answering a renewal: keep the mapping until it expires.
        private mutating func keep() -> [Directive] {
            lease.keepUntilExpiry().map { [.scheduleTimer(at: $0)] } ?? []
        }

        private func directives(_ step: MappingLease.Step) -> [Directive] {
            switch step {
            case .nothing: []
            case .wait(let t): [.scheduleTimer(at: t)]
            case .send(let t): [.send(request(lifetime: settings.lifetime)), .scheduleTimer(at: t)]
            case .gaveUp: [.gaveUp(.noAnswer)]
            case .expired: [.unmapped]
            }
        }

        private func request(lifetime: UInt32) -> [UInt8] {
            PCP.mapRequest(nonce: nonce, clientIP: clientIP, internalPort: internalPort,
                           suggestedPort: externalPort != 0 ? externalPort : internalPort,
                           suggestedIP: externalIP, lifetime: lifetime)
        }
    }
}
