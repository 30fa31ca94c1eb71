import LatticaCore

extension Relay {
    /// The relay's (hop side's) limits. libp2p's defaults (128 KiB and 2 minutes per circuit) are
    /// far too small for models, so a circuit here may carry gigabytes for an hour; what bounds the
    /// relay is the number of reservations and circuits, per peer, per IP and in total.
    public struct HopSettings: Sendable, Equatable {
        public var maxReservations = 128
        /// Reservations from one IP address (many peer ids from one host are one client).
        public var maxReservationsPerIP = 8
        public var reservationTTL: Duration = .seconds(3600)
        /// A peer refreshing faster than this is refused (RESERVE floods).
        public var minRefreshInterval: Duration = .seconds(5)
        public var maxCircuits = 64
        /// Circuits with one peer as source or destination.
        public var maxCircuitsPerPeer = 8
        /// Per circuit, each direction.
        public var circuitBytes: UInt64 = 4 << 30
        public var circuitDuration: Duration = .seconds(3600)
        public init() {}

        public var limit: Limit {
            Limit(duration: UInt32(clamping: circuitDuration.components.seconds), data: circuitBytes)
        }
    }

    /// The relay's bookkeeping: who holds a reservation until when, which circuits are open.
    /// No I/O: the relay service asks it before it answers, and tells it what ended.
    public struct HopState: Sendable {
        public struct Reservation: Sendable, Equatable {
            public var expires: Instant
            public var ip: [UInt8]
            public var refreshed: Instant
        }

        public let settings: HopSettings
        public private(set) var reservations: [PeerId: Reservation] = [:]
        public private(set) var circuits: [Int: (src: PeerId, dst: PeerId, opened: Instant)] = [:]
        private var perPeer: [PeerId: Int] = [:]
        private var nextCircuit = 1

        public init(settings: HopSettings) { self.settings = settings }

        public enum Refusal: String, Error, Sendable {
            case tooManyReservations = "reservations_total"
            case tooManyFromIP = "reservations_per_ip"
            case refreshTooSoon = "refresh_rate"
            case relayedConnection = "over_relay"
            case noReservation = "no_reservation"
            case tooManyCircuits = "circuits_total"
            case tooManyCircuitsForPeer = "circuits_per_peer"
            case selfCircuit = "self"

            public var status: Status {
                switch self {
                case .tooManyReservations, .tooManyFromIP, .refreshTooSoon: .reservationRefused
                case .relayedConnection, .selfCircuit: .permissionDenied
                case .noReservation: .noReservation
                case .tooManyCircuits, .tooManyCircuitsForPeer: .resourceLimitExceeded
                }
            }
        }

        /// A RESERVE from `peer`, connected from `ip` (nil: over a relayed connection, refused).
        /// Returns when the reservation expires.
        public mutating func reserve(_ peer: PeerId, ip: [UInt8]?, now: Instant) -> Result<Instant, Refusal> {
            expire(now: now)
            guard let ip else { return .failure(.relayedConnection) }
            if let r = reservations[peer] {
                guard now - r.refreshed >= settings.minRefreshInterval else { return .failure(.refreshTooSoon) }
                let e = now + settings.reservationTTL
                reservations[peer] = Reservation(expires: e, ip: ip, refreshed: now)
                return .success(e)
            }
            guard reservations.count < settings.maxReservations else { return .failure(.tooManyReservations) }
            guard reservations.values.lazy.filter({ $0.ip == ip }).count < settings.maxReservationsPerIP else {
                return .failure(.tooManyFromIP)
            }
            let e = now + settings.reservationTTL
            reservations[peer] = Reservation(expires: e, ip: ip, refreshed: now)
            return .success(e)
        }

        /// The reservation ends with the peer's connection (the spec: valid while connected).
        public mutating func disconnected(_ peer: PeerId) { reservations.removeValue(forKey: peer) }

        public func hasReservation(_ peer: PeerId, now: Instant) -> Bool {
            reservations[peer].map { $0.expires > now } ?? false
        }

        /// A CONNECT from `src` (over a direct connection unless `relayed`) to `dst`. Returns the
        /// circuit's id; `close` it when either side ends.
        public mutating func openCircuit(from src: PeerId, to dst: PeerId, relayed: Bool, now: Instant) -> Result<Int, Refusal> {
            expire(now: now)
            guard !relayed else { return .failure(.relayedConnection) }
            guard src != dst else { return .failure(.selfCircuit) }
            guard hasReservation(dst, now: now) else { return .failure(.noReservation) }
            guard circuits.count < settings.maxCircuits else { return .failure(.tooManyCircuits) }
            guard perPeer[src, default: 0] < settings.maxCircuitsPerPeer, perPeer[dst, default: 0] < settings.maxCircuitsPerPeer else {
                return .failure(.tooManyCircuitsForPeer)
            }
            let id = nextCircuit
            nextCircuit += 1
            circuits[id] = (src, dst, now)
            perPeer[src, default: 0] += 1
            perPeer[dst, default: 0] += 1
            return .success(id)
        }

        public mutating func closeCircuit(_ id: Int) {
            guard let c = circuits.removeValue(forKey: id) else { return }
            for p in [c.src, c.dst] {
                perPeer[p, default: 1] -= 1
                if perPeer[p] == 0 { perPeer.removeValue(forKey: p) }
            }
        }

        public mutating func expire(now: Instant) {
            if reservations.contains(where: { $0.value.expires <= now }) {
                reservations = reservations.filter { $0.value.expires > now }
            }
        }
    }
}
