
extension DHT {
    public struct Settings: Sendable {
        /// Stream protocol id: `/ipfs/kad/1.0.0` (libp2p default) or `/lattica/1.0.0` (Lattica networks).
        public var protocolID = "/ipfs/kad/1.0.0"
        public var mode: Mode = .server
        /// Replication parameter and bucket size, Kademlia `k` (kad-dht spec: 20).
        public var k = 20
        /// Lookup concurrency, Kademlia `alpha` (paper §2.3; rust-libp2p default 3).
        public var alpha = 3
        /// S/Kademlia disjoint paths `d` (Baumgart & Mies §4.4); 1 = plain Kademlia lookups.
        public var disjointPaths = 1
        /// Per-request timeout (rust-libp2p substream timeout: 10 s).
        public var requestTimeout: Duration = .seconds(10)
        /// Whole-query timeout (rust-libp2p: 60 s).
        public var queryTimeout: Duration = .seconds(60)
        public var decodeLimits = DecodeLimits()
        /// Record lifetime at storing peers and our republish period (rust-libp2p: 36 h TTL,
        /// 22 h publication); provider records 48 h / 12 h (kad-dht spec: 48 h expiry).
        public var recordTTL: Duration = .seconds(36 * 3600)
        public var recordRepublishInterval: Duration = .seconds(22 * 3600)
        public var providerTTL: Duration = .seconds(48 * 3600)
        public var providerRepublishInterval: Duration = .seconds(12 * 3600)
        /// Routing table refresh (kad-dht spec: 10 min): self lookup + lookups into stale buckets.
        public var refreshInterval: Duration = .seconds(600)
        /// Stale buckets up to this index get a random lookup on refresh (grinding a key into
        /// bucket i costs ~2^(i+1) hashes, so deep buckets rely on the self lookup).
        public var refreshMaxBucket = 8
        /// Expiry sweep and republish check period.
        public var maintenanceInterval: Duration = .seconds(60)
        public var bootstrapPeers: [PeerInfo] = []
        public var bootstrapBackoffInitial: Duration = .seconds(1)
        public var bootstrapBackoffMax: Duration = .seconds(300)
        /// A routing-table peer that fails this many requests in a row is dropped even without a
        /// replacement (with a replacement waiting it is replaced at the first failure).
        public var maxFailuresBeforeEviction = 3
        public var replacementCacheSize = 10
        /// After a GET, push the best record to closest peers that had none or an older one (spec
        /// "Entry correction").
        public var correctOutdatedRecords = true
        /// Inbound PUT_VALUE / ADD_PROVIDER per peer: burst and sustained rate (token bucket).
        public var writeBurstPerPeer = 20
        public var writesPerPeerPerMinute = 60

        public init() {}

        /// Settings for joining a Lattica (Rust) network.
        public static var lattica: Settings { var s = Settings(); s.protocolID = "/lattica/1.0.0"; return s }
    }

    /// Counters, named after the Prometheus series the node exports (`lattica_dht_…`).
    public struct Metrics: Hashable, Sendable {
        public var requestsSent = 0                 // lattica_dht_requests_total
        public var responsesReceived = 0            // lattica_dht_responses_total
        public var requestFailures = 0              // lattica_dht_request_failures_total{cause="error"}
        public var requestTimeouts = 0              // lattica_dht_request_failures_total{cause="timeout"}
        public var inboundRequests = 0              // lattica_dht_inbound_requests_total
        public var inboundRejected = 0              // lattica_dht_inbound_rejected_total
        public var malformedMessages = 0            // lattica_dht_malformed_messages_total
        public var oversizedMessages = 0            // lattica_dht_oversized_messages_total
        public var misbehaviors = 0                 // lattica_dht_peer_misbehaviors_total
        public var garbagePeerEntries = 0           // lattica_dht_garbage_peer_entries_total
        public var recordsStored = 0                // lattica_dht_records_stored_total
        public var recordsRejected = 0              // lattica_dht_records_rejected_total
        public var invalidRecordsReceived = 0       // lattica_dht_invalid_records_total
        public var providersStored = 0              // lattica_dht_providers_stored_total
        public var rateLimited = 0                  // lattica_dht_rate_limited_total
        public var queriesStarted = 0               // lattica_dht_queries_total
        public var queriesSucceeded = 0             // lattica_dht_queries_finished_total{result="ok"}
        public var queriesFailed = 0                // lattica_dht_queries_finished_total{result="error"}
        public var routingTableInsertions = 0
        public var routingTableEvictions = 0
        public var bootstrapFailures = 0
        /// Lookup hop histogram: index = hops (last bucket = that many or more).
        public var lookupHops = [Int](repeating: 0, count: 16)
        public init() {}
    }
}
