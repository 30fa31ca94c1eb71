public import LatticaCore

/// The libp2p Kademlia DHT (kad-dht spec, rust-libp2p `protocols/kad` semantics) as a sans-I/O
/// protocol: `DHT.Instance` takes events with `now` passed in and returns `DHT.Directive`s for a
/// shell (libuv, or the simulator) to carry out. See Docs/DHT.md.
public enum DHT {
    /// Identifies one outbound request (one stream: request → response).
    public struct RequestID: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var raw: UInt64
        public init(_ raw: UInt64) { self.raw = raw }
        public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
        public var description: String { "req#\(raw)" }
    }

    /// Identifies one inbound request; chosen by the shell, echoed in `.respond`.
    public struct InboundID: Hashable, Sendable {
        public var raw: UInt64
        public init(_ raw: UInt64) { self.raw = raw }
    }

    /// Identifies one query (lookup, get, put, provide, bootstrap).
    public struct QueryID: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var raw: UInt64
        public init(_ raw: UInt64) { self.raw = raw }
        public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
        public var description: String { "query#\(raw)" }
    }

    /// Timers the instance asks the shell for; the shell calls `onTimer(_:now:)` when they fire.
    /// Stale timers are harmless: the instance ignores a timer whose subject is gone.
    public enum TimerID: Hashable, Sendable {
        case requestTimeout(RequestID)
        case queryTimeout(QueryID)
        /// Periodic routing-table refresh (self lookup + stale buckets).
        case refresh
        /// Retry of a bootstrap that reached nobody (exponential backoff).
        case bootstrapRetry
        /// Expiry of stored records/providers and republishing of our own.
        case maintenance
    }

    /// Server mode answers and advertises the protocol; client mode only asks (kad-dht spec,
    /// "Client and server mode"): nodes behind NATs should be clients.
    public enum Mode: Hashable, Sendable { case server, client }

    /// Why a peer was reported as misbehaving (each is also counted in `Metrics`).
    public enum Misbehavior: Hashable, Sendable {
        case malformedMessage(String)
        case oversizedMessage(Int)
        case unexpectedResponseType
        case invalidRecord(RecordRejection)
        case garbageCloserPeers(Int)
        case returnedItselfAsCloser
        case tooManyPeers(Int)
        case providerMismatch
        case rateLimited
    }

    /// Information about a peer as carried in `closerPeers` / `providerPeers`.
    public struct PeerInfo: Hashable, Sendable {
        public var id: PeerId
        /// Binary multiaddrs, kept as bytes (the shell parses them with `Multiaddr(bytes:)`).
        public var addresses: [[UInt8]]
        public init(id: PeerId, addresses: [[UInt8]] = []) { self.id = id; self.addresses = addresses }
    }

    /// What a lookup learned about its own path length (for metrics and the simulation tests).
    public struct QueryStats: Hashable, Sendable {
        public var requests = 0
        public var successes = 0
        public var failures = 0
        /// Referral depth of the closest peer that answered (1 = it was in our routing table).
        public var hops = 0
        public var started: Instant = .zero
        public var finished: Instant = .zero
        public init() {}
    }

    public enum QueryError: Error, Hashable, Sendable {
        /// `PUT_VALUE`/`ADD_PROVIDER` reached fewer peers than the quorum (rust-libp2p `QuorumFailed`).
        case quorumFailed(success: Int, quorum: Int)
        /// `GET_VALUE` found no valid record (or fewer than the quorum asked for, `found` of them).
        case notFound(found: Int, quorum: Int)
        /// The query ran out of time before it could finish.
        case timeout
        /// No peer to ask (empty routing table).
        case noPeers
    }

    public enum QueryResult: Hashable, Sendable {
        /// `FIND_NODE` / bootstrap: the k closest peers that answered, closest first.
        case closestPeers([PeerId])
        /// `GET_VALUE`: the best record (validator `select`), and how many valid copies were seen.
        case getValue(Result<FoundRecord, QueryError>)
        /// `PUT_VALUE`: peers that stored it, or the quorum error with the partial count.
        case putValue(Result<Int, QueryError>)
        /// `ADD_PROVIDER`: peers that were told.
        case addProvider(Result<Int, QueryError>)
        /// `GET_PROVIDERS`: providers found (possibly empty) and the closest peers.
        case getProviders(providers: [PeerInfo], closest: [PeerId])
    }

    public struct FoundRecord: Hashable, Sendable {
        public var record: Record
        /// Valid copies received (including the local one).
        public var copies: Int
        public init(record: Record, copies: Int) { self.record = record; self.copies = copies }
    }

    public enum BootstrapEvent: Hashable, Sendable {
        /// At least one bootstrap peer answered; the routing table has `routingTableSize` peers.
        case bootstrapped(routingTableSize: Int)
        /// None of the configured bootstrap peers answered; another try at `retryAt`.
        case noBootstrapPeerReachable(attempt: Int, retryAt: Instant)
    }

    /// What the shell must do.
    public enum Directive: Hashable, Sendable {
        /// Open a stream to `peer` (dialling `addresses` if not connected) and send the framed request.
        /// If `expectsResponse`, read one framed response and call `onResponse`; otherwise call
        /// `onRequestDelivered` once written (ADD_PROVIDER has no response). On any error call
        /// `onRequestFailed`.
        case send(Message, to: PeerId, addresses: [[UInt8]], request: RequestID, expectsResponse: Bool)
        /// Write this response on the inbound stream and close it.
        case respond(Message, to: PeerId, inbound: InboundID)
        /// Reset the inbound stream without answering (client mode, malformed request).
        case resetInbound(InboundID, from: PeerId)
        case scheduleTimer(TimerID, at: Instant)
        case queryFinished(QueryID, QueryResult, QueryStats)
        case peerMisbehaved(PeerId, Misbehavior)
        case routingTableUpdated(added: PeerId?, removed: PeerId?)
        case bootstrap(BootstrapEvent)
        /// The record store changed: the shell persists the change (the instance keeps the store
        /// in memory and never writes a file itself).
        case persist(StoreChange)
    }
}
