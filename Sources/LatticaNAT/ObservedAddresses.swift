import LatticaCore

extension NAT {
    /// Confirms the addresses other peers see us at (identify's `observedAddr`) before we advertise
    /// them. One peer's word is worth nothing: a peer can claim we are anywhere. An address is
    /// confirmed when at least `minPeers` distinct peers, from at least `minNetworks` distinct
    /// networks (/24 for IPv4, /48 for IPv6, of the address *we* see them at), reported it within
    /// `window`, each on a connection we dialed (on a connection the peer dialed, it reports the
    /// address it chose to dial).
    ///
    /// Each report votes for two candidates: the observed address itself, only when its port is one
    /// of our listen ports (a dial that reused the listen port, a NAT that kept it), and the observed
    /// IP with each listen port (the address inbound dials would use if the NAT maps
    /// endpoint-independently or forwards the port). A port we never listened on is never a
    /// candidate: it is the ephemeral port of one outbound connection, or a lie.
    ///
    /// Bounded: one vote per peer (a new report replaces the peer's previous one), at most
    /// `maxVoters` votes (the oldest goes first), votes older than `window` expire. Pure: time is
    /// an input.
    public struct ObservedAddresses: Sendable {
        public struct Settings: Sendable {
            public var minPeers = 3
            public var minNetworks = 2
            public var window: Duration = .seconds(30 * 60)
            public var maxVoters = 256
            public init() {}
        }

        /// Why a report did not vote (`lattica_nat_observed_rejected_total{reason}`).
        public enum Rejection: String, Sendable, CaseIterable {
            /// Reported on a connection the peer dialed.
            case inbound
            /// Reported over a relayed connection, or about a relayed address.
            case relayed
            /// Not `/ip4|ip6/…/tcp/…`.
            case unsupported
            /// Unspecified, multicast, or loopback reported by a peer that is not on loopback.
            case badScope = "bad_scope"
            /// The observed port is none of our listen ports (still votes for the IP; counted).
            case foreignPort = "foreign_port"
            /// IPv4 observed from an IPv6 peer or the reverse.
            case familyMismatch = "family_mismatch"
        }

        struct Vote: Sendable {
            var candidates: [Endpoint]
            var network: [UInt8]
            var at: Instant
        }

        public let settings: Settings
        public private(set) var listenPorts: [UInt16] = []
        var votes: [PeerId: Vote] = [:]

        public init(settings: Settings = Settings()) { self.settings = settings }

        /// Our TCP listen ports (what a dial to us must reach).
        public mutating func setListenPorts(_ ports: [UInt16]) {
            listenPorts = Array(Set(ports)).sorted()
        }

        /// `peer` says it sees us at `observed`, on a connection to `peerAddr` (the peer's address
        /// as we see it) that we dialed (`outbound`) or it dialed. Returns the rejections (empty:
        /// the report voted for everything it could; `.foreignPort` alone: it voted for the IP).
        @discardableResult
        public mutating func onObserved(_ observed: Multiaddr, by peer: PeerId, peerAddr: Multiaddr?, outbound: Bool,
                                        now: Instant) -> [Rejection] {
            guard outbound else { return [.inbound] }
            if observed.natIsRelayed || (peerAddr?.natIsRelayed ?? false) { return [.relayed] }
            guard let ep = Endpoint(multiaddr: observed) else { return [.unsupported] }
            guard let remote = peerAddr.flatMap({ Endpoint(multiaddr: $0) }) else { return [.unsupported] }
            if ep.isIPv4 != remote.isIPv4 { return [.familyMismatch] }
            if ep.isUnspecified || ep.isMulticast || (ep.isLoopback && !remote.isLoopback) { return [.badScope] }
            var rejections: [Rejection] = []
            var candidates: [Endpoint] = []
            if listenPorts.contains(ep.port) { candidates.append(ep) } else { rejections.append(.foreignPort) }
            for p in listenPorts where p != ep.port { candidates.append(Endpoint(ip: ep.ip, port: p)) }
            guard !candidates.isEmpty else { return rejections }
            if votes[peer] == nil, votes.count >= settings.maxVoters,
               let oldest = votes.min(by: { $0.value.at < $1.value.at })?.key {
                votes.removeValue(forKey: oldest)
            }
            votes[peer] = Vote(candidates: candidates, network: remote.network, at: now)
            return rejections
        }

        /// Votes outlive the peer's connection (the NAT mapping does too) and expire by age only;
        /// `forget` drops the vote of a peer found misbehaving.
        public mutating func forget(_ peer: PeerId) { votes.removeValue(forKey: peer) }

        /// Drops votes older than the window.
        public mutating func expire(now: Instant) {
            votes = votes.filter { now - $0.value.at <= settings.window }
        }

        /// The confirmed addresses, most supported first (ties in address order).
        public func confirmed(now: Instant) -> [Multiaddr] {
            var peers: [Endpoint: Int] = [:]
            var networks: [Endpoint: Set<[UInt8]>] = [:]
            for v in votes.values where now - v.at <= settings.window {
                for c in v.candidates {
                    peers[c, default: 0] += 1
                    networks[c, default: []].insert(v.network)
                }
            }
            return peers.filter { $0.value >= settings.minPeers && networks[$0.key]!.count >= settings.minNetworks }
                .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.description < $1.key.description }
                .map { $0.key.multiaddr() }
        }

        /// The addresses reported but not (yet) confirmed: candidates for AutoNAT to test.
        public func candidates(now: Instant) -> [Multiaddr] {
            var seen: [Endpoint] = []
            for v in votes.values.sorted(by: { $0.at > $1.at }) where now - v.at <= settings.window {
                for c in v.candidates where !seen.contains(c) { seen.append(c) }
            }
            return seen.prefix(16).map { $0.multiaddr() }
        }

        public var voterCount: Int { votes.count }
    }
}
