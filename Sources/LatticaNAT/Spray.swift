import LatticaCore

/// Birthday hole punching (`/lattica/punch/1.0.0`, ours): for the pair DCUtR cannot punch, one
/// side behind an endpoint-independent mapping that filters by address and port (E), the other
/// behind a mapping that depends on the destination (S, a "symmetric" NAT). S's SYN leaves its NAT
/// from a port nobody can know, and E's NAT drops it unless E sent to exactly that port before.
///
/// So E opens many holes at once: it sends `holes` SYNs from its listening port to distinct
/// random ports of S's IP (dropped by S's NAT, but each leaves a conntrack entry on E's NAT that
/// lets that one remote port in), and S then sends `probes` SYNs from as many local ports to E's
/// mapped address. S's NAT maps each to a random port; every one that lands on a hole reaches E's
/// listener. With `holes` = h, `probes` = m and the NAT's port range r, the chance that at least
/// one lands is 1 − (1 − h/r)^m ≈ 1 − e^(−hm/r): 98% for h = 1024, m = 256, r = 64,512 (Linux's
/// `--random-fully` range 1024–65535).
///
/// The offering side (B, the side that accepted the relayed connection, as the circuit comes up;
/// either side once STUN classified its NAT later) sends an OFFER with its NAT's mapping and
/// filtering behaviour (from STUN) and its addresses; the other answers with its own OFFER. When
/// `plan` gives one side the holes and the other the probes, the offering side sends GO and both
/// act on a schedule anchored at the receipt of GO (the offering side waits half the measured
/// round trip); otherwise it closes the stream and DCUtR runs as before. A stays the Noise
/// initiator of the punched connection. Wire format: Docs/WIRE-NAT.md.
public enum Spray {
    public static let protocolID = "/lattica/punch/1.0.0"
    public static let version: UInt8 = 1
    public static let maxMessageLength = 128
    public static let maxAddresses = 8
    /// The port range a randomising NAT allocates from (Linux: 1024–65535 for source ports ≥ 1024).
    public static let portRange: ClosedRange<UInt16> = 1024...65535

    public struct Settings: Sendable, Equatable {
        public var holes = 1024
        public var probes = 256
        /// E sends its SYNs in batches and holds each socket `holdMs`, through S's probes and
        /// their SYN retransmits (1 s, 3 s): S's SYN must meet the hole's own socket (a
        /// simultaneous open). Once that socket is gone, E's listener would answer with a
        /// SYN-ACK of a fresh sequence number, which the conntrack entry the hole's SYN left does
        /// not match (Linux's TCP window tracking calls it INVALID and the firewall drops it).
        public var batch = 128
        public var batchIntervalMs = 25
        public var holdMs = 4000
        /// How long S's probes wait for the handshake (SYN retransmits at 1 s and 3 s included).
        public var probeTimeoutMs = 3500
        /// Extra wait after E's spray before S probes.
        public var marginMs = 50
        public init() {}

        /// How long E's spray takes from its first SYN to its last.
        public var sprayMs: Int { (max(holes, 1) - 1) / max(batch, 1) * batchIntervalMs }

        /// The chance that at least one probe lands on a hole, for a NAT allocating uniformly
        /// from `portRange`.
        public var successProbability: Double {
            let r = Double(Int(Spray.portRange.upperBound) - Int(Spray.portRange.lowerBound) + 1)
            let h = min(Double(holes), r)
            return 1 - _pow(1 - h / r, Double(probes))
        }
    }

    /// What a side does in the spray.
    public enum Role: Sendable, Equatable {
        /// Open `holes` mappings towards the peer's IP (we are E).
        case holes
        /// Send `probes` SYNs to the peer's address (we are S).
        case probes
    }

    static func mapsIndependently(_ b: NAT.Behaviour) -> Bool { b == .endpointIndependent || b == .none }
    static func mapsPerDestination(_ b: NAT.Behaviour) -> Bool { b == .addressDependent || b == .addressAndPortDependent }

    /// Our role, or nil when a spray does not apply: it needs one side that maps independently
    /// of the destination but filters by port (or is not known to filter less), and one side
    /// known to map per destination. Two "symmetric" sides cannot meet this way (E's holes would
    /// each get a port of their own), and every other pair is DCUtR's.
    public static func plan(mine: Offer, theirs: Offer) -> Role? {
        func opensHoles(_ o: Offer) -> Bool {
            mapsIndependently(o.mapping) && (o.filtering == .addressAndPortDependent || o.filtering == .unknown) && o.mapping != .none
        }
        if opensHoles(mine) && mapsPerDestination(theirs.mapping) { return .holes }
        if mapsPerDestination(mine.mapping) && opensHoles(theirs) { return .probes }
        return nil
    }

    /// `holes` distinct random ports from `portRange`.
    public static func holePorts(_ count: Int, using rng: inout some RandomNumberGenerator) -> [UInt16] {
        let n = min(count, Int(portRange.upperBound) - Int(portRange.lowerBound) + 1)
        var seen = Set<UInt16>(minimumCapacity: n)
        var out: [UInt16] = []
        out.reserveCapacity(n)
        while out.count < n {
            let p = UInt16.random(in: portRange, using: &rng)
            if seen.insert(p).inserted { out.append(p) }
        }
        return out
    }

    /// A side's NAT behaviour and IPv4 endpoints (for E: where its listening port is mapped; for
    /// S: the IP its SYNs come from).
    public struct Offer: Sendable, Equatable {
        public var mapping: NAT.Behaviour
        public var filtering: NAT.Behaviour
        public var endpoints: [NAT.Endpoint]
        public init(mapping: NAT.Behaviour, filtering: NAT.Behaviour, endpoints: [NAT.Endpoint]) {
            self.mapping = mapping; self.filtering = filtering; self.endpoints = endpoints
        }
    }

    public enum Message: Sendable, Equatable {
        case offer(Offer)
        case go

        static let behaviourCodes: [NAT.Behaviour] = [.unknown, .none, .endpointIndependent, .addressDependent, .addressAndPortDependent]

        public func encoded() -> [UInt8] {
            switch self {
            case .go:
                return [Spray.version, 2]
            case .offer(let o):
                var out: [UInt8] = [Spray.version, 1, code(o.mapping), code(o.filtering)]
                let v4 = o.endpoints.filter { $0.ip.count == 4 }.prefix(Spray.maxAddresses)
                out.append(UInt8(v4.count))
                for e in v4 { out += e.ip; out.append(UInt8(e.port >> 8)); out.append(UInt8(e.port & 0xff)) }
                return out
            }
        }

        func code(_ b: NAT.Behaviour) -> UInt8 { UInt8(Self.behaviourCodes.firstIndex(of: b) ?? 0) }

        public func framed() -> [UInt8] { FramedReader.frame(encoded()) }

        public init(decoding b: [UInt8]) throws(DecodeError) {
            guard b.count >= 2 else { throw .truncated }
            guard b[0] == Spray.version else { throw .version(b[0]) }
            switch b[1] {
            case 2:
                guard b.count == 2 else { throw .length }
                self = .go
            case 1:
                guard b.count >= 5 else { throw .truncated }
                guard Int(b[2]) < Self.behaviourCodes.count, Int(b[3]) < Self.behaviourCodes.count else { throw .behaviour }
                let n = Int(b[4])
                guard n <= Spray.maxAddresses else { throw .tooManyAddresses }
                guard b.count == 5 + 6 * n else { throw .length }
                var eps: [NAT.Endpoint] = []
                for i in 0..<n {
                    let o = 5 + 6 * i
                    let port = UInt16(b[o + 4]) << 8 | UInt16(b[o + 5])
                    guard port != 0 else { throw .port }
                    eps.append(NAT.Endpoint(ip: Array(b[o..<(o + 4)]), port: port))
                }
                self = .offer(Offer(mapping: Self.behaviourCodes[Int(b[2])], filtering: Self.behaviourCodes[Int(b[3])], endpoints: eps))
            default:
                throw .type(b[1])
            }
        }
    }

    public enum DecodeError: Error, Equatable, Sendable {
        case truncated, length, version(UInt8), type(UInt8), behaviour, tooManyAddresses, port
    }
}

@inline(__always) func _pow(_ x: Double, _ n: Double) -> Double {
    // x^n for x in [0, 1], n a small whole number (no Foundation in this target).
    var result = 1.0, base = x, e = Int(n)
    while e > 0 {
        if e & 1 == 1 { result *= base }
        base *= base
        e >>= 1
    }
    return result
}
