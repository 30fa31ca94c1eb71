/// `nat.status`: what the node knows of its own reachability (Docs/OPERATIONS.md, `lattica nat`).
extension Methods {
    public enum NATStatus: ControlMethod {
        public static let name = "nat.status"
        public typealias Params = NoParams
        public typealias Result = NATStatusResult
    }
}

/// The node's reachability, as `lattica nat` shows it. Every service that knows a part fills it in
/// (reachability: AutoNAT and observed addresses; NAT type: STUN; port mappings: UPnP/NAT-PMP;
/// reservations: the relay client).
public struct NATStatusResult: Codable, Sendable, Equatable {
    /// `public`, `private` or `unknown`.
    public var reachability: String
    /// RFC 4787 mapping behaviour: `endpoint-independent`, `address-dependent`,
    /// `address-and-port-dependent`, `none` (no NAT) or `unknown`.
    public var mapping: String
    /// RFC 4787 filtering behaviour, same words.
    public var filtering: String
    /// Addresses other peers confirm they see us at (identify observed addresses, AutoNAT, STUN).
    public var mappedAddrs: [String]
    /// The addresses we advertise (listen, confirmed external, mapped, relayed).
    public var advertisedAddrs: [String]
    public var portMappings: [PortMappingEntry]
    public var relayReservations: [RelayReservationEntry]
    /// The DHT's mode: `server` (answers queries: we are reachable) or `client`.
    public var dhtMode: String

    enum CodingKeys: String, CodingKey {
        case reachability, mapping, filtering, mappedAddrs = "mapped_addrs", advertisedAddrs = "advertised_addrs"
        case portMappings = "port_mappings", relayReservations = "relay_reservations", dhtMode = "dht_mode"
    }

    public init(reachability: String = "unknown", mapping: String = "unknown", filtering: String = "unknown",
                mappedAddrs: [String] = [], advertisedAddrs: [String] = [], portMappings: [PortMappingEntry] = [],
                relayReservations: [RelayReservationEntry] = [], dhtMode: String = "server") {
        self.reachability = reachability; self.mapping = mapping; self.filtering = filtering
        self.mappedAddrs = mappedAddrs; self.advertisedAddrs = advertisedAddrs; self.portMappings = portMappings
        self.relayReservations = relayReservations; self.dhtMode = dhtMode
    }
}

/// One port mapping a router granted us.
public struct PortMappingEntry: Codable, Sendable, Equatable {
    /// `upnp`, `nat-pmp` or `pcp`.
    public var method: String
    public var internalAddr: String
    public var externalAddr: String
    public var lifetimeSeconds: Double

    enum CodingKeys: String, CodingKey {
        case method, internalAddr = "internal_addr", externalAddr = "external_addr", lifetimeSeconds = "lifetime_s"
    }

    public init(method: String, internalAddr: String, externalAddr: String, lifetimeSeconds: Double) {
        self.method = method; self.internalAddr = internalAddr; self.externalAddr = externalAddr; self.lifetimeSeconds = lifetimeSeconds
    }
}

/// One reservation we hold on a relay.
public struct RelayReservationEntry: Codable, Sendable, Equatable {
    public var relay: String
    /// Our `/p2p-circuit` addresses through it.
    public var addrs: [String]
    public var expiresInSeconds: Double

    enum CodingKeys: String, CodingKey { case relay, addrs, expiresInSeconds = "expires_in_s" }

    public init(relay: String, addrs: [String], expiresInSeconds: Double) {
        self.relay = relay; self.addrs = addrs; self.expiresInSeconds = expiresInSeconds
    }
}
