import LatticaAPI

/// The dashboard's JSON API, version 1 (`GET /api/v1/…` on the daemon's HTTP port; fields, types
/// and bounds in Docs/DASHBOARD.md). snake_case keys; a number that is not finite (a NaN loss)
/// is `null`; every list and every string from the network is bounded (`Dashboard.Limits`).
enum Dashboard {
    static let apiVersion = 1

    /// Bounds on what the API shows, so that a response stays small whatever peers send.
    struct Limits: Codable, Equatable {
        var maxPeers = 128
        var maxRuns = 4
        var maxSeriesPerRun = 32
        var maxPoints = 128
        var maxReportsPerRun = 64
        var maxEvidencePerReport = 4
        var maxCheckpointsPerRun = 16
        var maxConfigKeys = 32
        /// UTF-8 bytes of any string that a peer chose (agent, protocol version, config values, reasons).
        var maxStringBytes = 256
        /// A response larger than this is refused (500); the bounds above keep it well under.
        var maxResponseBytes = 4 << 20
        enum CodingKeys: String, CodingKey {
            case maxPeers = "max_peers", maxRuns = "max_runs", maxSeriesPerRun = "max_series_per_run", maxPoints = "max_points"
            case maxReportsPerRun = "max_reports_per_run", maxEvidencePerReport = "max_evidence_per_report"
            case maxCheckpointsPerRun = "max_checkpoints_per_run", maxConfigKeys = "max_config_keys"
            case maxStringBytes = "max_string_bytes", maxResponseBytes = "max_response_bytes"
        }
    }

    /// `GET /api/v1/state`: everything the page shows, in one response.
    struct State: Codable, Equatable {
        var apiVersion = Dashboard.apiVersion
        /// Wall clock of the daemon, ms since the Unix epoch.
        var generatedMs: Int64
        var node: Node
        var peers: Peers
        var crdt: CRDTState
        var runs: Runs
        var limits: Limits
        enum CodingKeys: String, CodingKey { case apiVersion = "api_version", generatedMs = "generated_ms", node, peers, crdt, runs, limits }
    }

    /// `GET /api/v1/node`.
    struct Node: Codable, Equatable {
        var peerId: String
        var agent: String
        var version: String
        var uptimeS: Double
        var listenAddrs: [String]
        var connectedPeers: Int
        /// `public`, `private` or `unknown`; `unknown` until AutoNAT is built (`nat_note`).
        var reachability: String
        /// RFC 4787 mapping behaviour once measured; `unknown` until then.
        var natType: String
        var natNote: String
        var dht: DHTState?
        var services: [String]
        enum CodingKeys: String, CodingKey {
            case peerId = "peer_id", agent, version, uptimeS = "uptime_s", listenAddrs = "listen_addrs", connectedPeers = "connected_peers"
            case reachability, natType = "nat_type", natNote = "nat_note", dht, services
        }
    }

    struct DHTState: Codable, Equatable {
        var protocolId: String
        var mode: String
        /// Peers in the routing table.
        var size: Int
        /// Records and provider records held here.
        var records: Int
        enum CodingKeys: String, CodingKey { case protocolId = "protocol_id", mode, size, records }
    }

    /// `GET /api/v1/peers`: connected peers, by peer id; at most `max_peers` (`total` counts all).
    struct Peers: Codable, Equatable {
        var total: Int
        var peers: [Peer]
    }

    struct Peer: Codable, Equatable {
        var peerId: String
        /// The connection's remote address.
        var addr: String
        /// `direct`, or `relayed` when the address goes through `/p2p-circuit`.
        var connection: String
        /// `inbound` or `outbound`.
        var direction: String
        var rttMs: Double?
        /// What the peer says it runs (identify): attacker-controlled text, clipped.
        var agent: String
        var protocolVersion: String
        var connectedS: Double
        /// CRDT replication with this peer (as `lattica sync` shows it); nil until it speaks the protocol.
        var crdt: SyncResult.Peer?
        /// Our reputation of the peer and its rejected contributions, in the run we train in.
        var reputation: Double?
        var rejected: Int?
        enum CodingKeys: String, CodingKey {
            case peerId = "peer_id", addr, connection, direction, rttMs = "rtt_ms", agent, protocolVersion = "protocol_version"
            case connectedS = "connected_s", crdt, reputation, rejected
        }
    }

    /// `GET /api/v1/crdt`: the replicated store, as `lattica sync` shows it (`CRDTService.syncStatus()`),
    /// with at most `max_peers` peers (`total` counts all).
    struct CRDTState: Codable, Equatable {
        /// SHA-256 (hex) of the materialised state: equal on two nodes exactly when their states are.
        var stateHash: String
        var deltas: UInt64
        var authors: Int
        var paths: Int
        var total: Int
        var peers: [SyncResult.Peer]
        enum CodingKeys: String, CodingKey { case stateHash = "state_hash", deltas, authors, paths, total, peers }
    }

    /// `GET /api/v1/runs`: the run this node trains in first, then the runs whose progress
    /// arrived most recently; at most `max_runs`.
    struct Runs: Codable, Equatable {
        var runs: [Run]
    }

    struct Run: Codable, Equatable {
        var run: String
        var creator: String
        /// This node trains in the run.
        var joined: Bool
        /// Our next outer step and the run's length (nil unless joined).
        var step: Int?
        var rounds: Int?
        /// Our rejected contributions in total (nil unless joined).
        var rejected: Int?
        /// `run/<id>/config`, values as text.
        var config: [String: String]
        var membersTotal: Int
        var members: [String]
        /// Per node, its progress over outer steps (`run/<id>/progress/<peer>` as it changed).
        var series: [Series]
        var checkpoints: [Checkpoint]
        var reportsTotal: Int
        var reports: [Report]
        /// Our reputation of each member we pulled from (nil unless joined).
        var reputation: [Reputation]
        enum CodingKeys: String, CodingKey {
            case run, creator, joined, step, rounds, rejected, config, membersTotal = "members_total", members, series, checkpoints
            case reportsTotal = "reports_total", reports, reputation
        }
    }

    struct Series: Codable, Equatable {
        var peer: String
        var points: [Point]
    }

    struct Point: Codable, Equatable {
        /// Outer steps done.
        var step: UInt64
        var loss: Double?
        /// Held-out accuracy in 0…1 (nil when the node does not report it).
        var accuracy: Double?
    }

    struct Checkpoint: Codable, Equatable {
        var version: UInt64
        var step: UInt64
        var accuracy: Double?
        var author: String
        var contentHash: String
        enum CodingKeys: String, CodingKey { case version, step, accuracy, author, contentHash = "content_hash" }
    }

    /// An accusation in `run/<id>/reports/<reporter>`: evidence for others to weigh, not a verdict.
    struct Report: Codable, Equatable {
        var reporter: String
        var accused: String
        var reason: String
        var step: UInt64
        /// SHA-256 (hex) of the contributions that earned it (θ − φ as decoded: Docs/TRAINER-API.md).
        var evidence: [String]
    }

    struct Reputation: Codable, Equatable {
        var peer: String
        var reputation: Double?
        var rejected: Int
    }
}
