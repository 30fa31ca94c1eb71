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
        enum Phase: Sendable, Equatable {
            case idle
            case mapping
            case mapped(renewAt: Instant, expiresAt: Instant)
            case renewing(expiresAt: Instant)
            case done
        }

        public let internalPort: UInt16
        public let clientIP: [UInt8]
        public let nonce: [UInt8]
        public let settings: NATPMP.Settings
        private(set) var phase: Phase = .idle
        private var tries = 0
        private var deadline = Instant.zero
        private(set) public var externalIP: [UInt8] = []
        private(set) public var externalPort: UInt16 = 0
        private(set) public var lifetime: UInt32 = 0

        /// `clientIP`: our address on the gateway's network (4 bytes); `nonce`: 12 random bytes
        /// drawn by the shell (the instance does not draw randomness itself).
        public init(internalPort: UInt16, clientIP: [UInt8], nonce: [UInt8], settings: NATPMP.Settings = .init()) {
            precondition(nonce.count == 12, "PCP nonce is 12 bytes")
            self.internalPort = internalPort; self.clientIP = clientIP; self.nonce = nonce; self.settings = settings
        }

        public var isMapped: Bool {
            switch phase { case .mapped, .renewing: true; default: false }
        }

        public mutating func start(now: Instant) -> [Directive] {
            guard phase == .idle else { return [] }
            phase = .mapping
            return transmit(now: now, first: true)
        }

        public mutating func onDatagram(_ bytes: [UInt8], now: Instant) -> [Directive] {
            switch phase {
            case .mapping, .renewing: break
            default: return []   // nothing in flight: a late duplicate
            }
            let answer: Answer
            switch PCP.decode(bytes, nonce: nonce, internalPort: internalPort) {
            case .failure(let e): return [.rejected(e)]
            case .success(let a): answer = a
            }
            switch (phase, answer) {
            case (.mapping, .unsupportedVersion(let v)):
                phase = .done
                return [.gaveUp(.unsupportedVersion(v))]
            case (.mapping, .map(let m)) where m.resultCode != ResultCode.success:
                phase = .done
                return [.gaveUp(.refused(m.resultCode))]
            case (.mapping, .map(let m)), (.renewing, .map(let m)):
                guard m.resultCode == ResultCode.success, m.lifetime > 0, m.externalPort != 0, m.externalIP.count == 4 else {
                    if case .renewing(let expiresAt) = phase { return keepUntil(expiresAt) }
                    phase = .done
                    return [.gaveUp(.refused(m.resultCode))]
                }
                externalIP = m.externalIP
                externalPort = m.externalPort
                lifetime = m.lifetime
                let life = Duration.seconds(Int64(m.lifetime))
                let renewAt = now + life / 2
                phase = .mapped(renewAt: renewAt, expiresAt: now + life)
                return [.mapped(externalIP: m.externalIP, externalPort: m.externalPort, lifetime: m.lifetime), .scheduleTimer(at: renewAt)]
            case (.renewing(let expiresAt), .unsupportedVersion):
                return keepUntil(expiresAt)
            default:
                return []
            }
        }

        public mutating func onTimer(now: Instant) -> [Directive] {
            switch phase {
            case .mapping:
                guard now >= deadline else { return [.scheduleTimer(at: deadline)] }
                if tries >= settings.tries { phase = .done; return [.gaveUp(.noAnswer)] }
                return transmit(now: now, first: false)
            case .renewing(let expiresAt):
                if now >= expiresAt { phase = .done; return [.unmapped] }
                guard now >= deadline else { return [.scheduleTimer(at: deadline)] }
                if tries >= settings.tries { return keepUntil(expiresAt) }
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

        /// Deletes a mapping we hold (MAP with lifetime 0 and the same nonce, RFC 6887 §15) and stops.
        public mutating func stop(now: Instant) -> [Directive] {
            let held = isMapped
            phase = .done
            guard held else { return [] }
            return [.send(request(lifetime: 0)), .unmapped]
        }

        /// The server refused or stopped answering a renewal: keep the mapping until it expires.
        private mutating func keepUntil(_ expiresAt: Instant) -> [Directive] {
            phase = .mapped(renewAt: expiresAt, expiresAt: expiresAt)
            return [.scheduleTimer(at: expiresAt)]
        }

        private func request(lifetime: UInt32) -> [UInt8] {
            PCP.mapRequest(nonce: nonce, clientIP: clientIP, internalPort: internalPort,
                           suggestedPort: externalPort != 0 ? externalPort : internalPort,
                           suggestedIP: externalIP, lifetime: lifetime)
        }

        private mutating func transmit(now: Instant, first: Bool) -> [Directive] {
            tries = first ? 1 : tries + 1
            deadline = now + settings.initialTimeout * (1 << (tries - 1))
            return [.send(request(lifetime: settings.lifetime)), .scheduleTimer(at: deadline)]
        }
    }
}
