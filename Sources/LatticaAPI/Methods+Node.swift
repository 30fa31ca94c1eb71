/// The control methods of the node itself and of its built-in services (swarm, ping, DHT).
/// Docs/OPERATIONS.md lists them with their params and results.
public enum Methods {
    public enum Status: ControlMethod {
        public static let name = "status"
        public typealias Params = NoParams
        public typealias Result = StatusResult
    }

    public enum Peers: ControlMethod {
        public static let name = "peers"
        public typealias Params = NoParams
        public typealias Result = PeersResult
    }

    public enum Connect: ControlMethod {
        public static let name = "connect"
        public typealias Result = ConnectResult
        public struct Params: ControlParams, Equatable {
            /// `/ip4/…/tcp/…/p2p/<peer id>` (the `/p2p/` part checks the identity), a circuit
            /// `…/p2p/<relay>/p2p-circuit/p2p/<peer id>`, or a bare peer id (found through the DHT).
            public var addr: String
            public enum CodingKeys: String, CodingKey, CaseIterable { case addr }
            public init(addr: String) { self.addr = addr }
            public func validate() throws(ControlErrorBody) { try require("addr", addr) }
        }
    }

    public enum Ping: ControlMethod {
        public static let name = "ping"
        public typealias Result = PingResult
        public struct Params: ControlParams, Equatable {
            /// A connected peer id, or a multiaddr with `/p2p/` to dial first.
            public var peer: String
            public var count: Int?
            public enum CodingKeys: String, CodingKey, CaseIterable { case peer, count }
            public static let ranges = ["count": 1...100]
            public init(peer: String, count: Int? = nil) { self.peer = peer; self.count = count }
            public func validate() throws(ControlErrorBody) { try require("peer", peer); try check("count", count) }
        }
    }
}

/// `status`: who the daemon is and where it listens.
public struct StatusResult: Codable, Sendable, Equatable {
    public var peerId: String
    public var listenAddrs: [String]
    public var version: String
    public var uptimeSeconds: Double
    public var agentVersion: String
    public var dataDir: String
    public var metricsAddr: String?
    public var connectedPeers: Int
    /// The services running, in start order.
    public var services: [String]

    enum CodingKeys: String, CodingKey {
        case peerId = "peer_id", listenAddrs = "listen_addrs", version, uptimeSeconds = "uptime_s"
        case agentVersion = "agent_version", dataDir = "data_dir", metricsAddr = "metrics_addr"
        case connectedPeers = "connected_peers", services
    }

    public init(peerId: String, listenAddrs: [String], version: String, uptimeSeconds: Double, agentVersion: String,
                dataDir: String, metricsAddr: String?, connectedPeers: Int, services: [String]) {
        self.peerId = peerId; self.listenAddrs = listenAddrs; self.version = version; self.uptimeSeconds = uptimeSeconds
        self.agentVersion = agentVersion; self.dataDir = dataDir; self.metricsAddr = metricsAddr
        self.connectedPeers = connectedPeers; self.services = services
    }
}

/// One connected peer in `peers`.
public struct PeerEntry: Codable, Sendable, Equatable {
    public var peerId: String
    /// The remote address of the connection.
    public var addr: String
    /// `inbound` or `outbound`.
    public var direction: String
    public var rttMs: Double?
    public var agent: String
    public var protocolVersion: String
    public var protocols: [String]
    public var connectedSeconds: Double
    /// `direct` (our own TCP connection to the peer) or `relayed` (a circuit through `via`).
    public var transport: String
    /// The relay's peer id, for a relayed connection.
    public var via: String?
    /// How the connection came about: `dial`, `accept`, `relay` (a circuit), `dcutr` or `spray`
    /// (a hole punch, DCUtR's or the birthday punch, that replaced a circuit).
    public var establishedBy: String

    enum CodingKeys: String, CodingKey {
        case peerId = "peer_id", addr, direction, rttMs = "rtt_ms", agent, protocolVersion = "protocol_version"
        case protocols, connectedSeconds = "connected_s", transport, via, establishedBy = "established_by"
    }

    public init(peerId: String, addr: String, direction: String, rttMs: Double?, agent: String,
                protocolVersion: String, protocols: [String], connectedSeconds: Double,
                transport: String = "direct", via: String? = nil, establishedBy: String = "dial") {
        self.peerId = peerId; self.addr = addr; self.direction = direction; self.rttMs = rttMs
        self.agent = agent; self.protocolVersion = protocolVersion; self.protocols = protocols; self.connectedSeconds = connectedSeconds
        self.transport = transport; self.via = via; self.establishedBy = establishedBy
    }
}

/// `peers`: the connected peers.
public struct PeersResult: Codable, Sendable, Equatable {
    public var peers: [PeerEntry]
    public init(peers: [PeerEntry]) { self.peers = peers }
}

/// `connect`: the peer we are now connected to.
public struct ConnectResult: Codable, Sendable, Equatable {
    public var peerId: String
    enum CodingKeys: String, CodingKey { case peerId = "peer_id" }
    public init(peerId: String) { self.peerId = peerId }
}

/// `ping`: round-trip times in milliseconds.
public struct PingResult: Codable, Sendable, Equatable {
    public var peerId: String
    public var rttsMs: [Double]
    enum CodingKeys: String, CodingKey { case peerId = "peer_id", rttsMs = "rtts_ms" }
    public init(peerId: String, rttsMs: [Double]) { self.peerId = peerId; self.rttsMs = rttsMs }
}
