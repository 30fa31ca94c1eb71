import LatticaAPI
import LatticaCore
import LatticaCRDT

/// The dashboard's answers, built on the loop thread from the other services' entry points.
extension DashboardService {
    var limits: Dashboard.Limits { settings.limits }

    func state() -> Dashboard.State {
        Dashboard.State(generatedMs: Int64(wallClockSeconds() * 1000), node: node(), peers: peers(), crdt: crdtState(), runs: runs(),
                        limits: limits)
    }

    func node() -> Dashboard.Node {
        let swarm = ctx.swarm
        let dhtState = dht.map { d in
            Dashboard.DHTState(protocolId: d.protocolID, mode: d.dht.settings.mode == .server ? "server" : "client",
                               size: d.dht.routingTable.count, records: d.dht.store.recordCount)
        }
        return Dashboard.Node(
            peerId: ctx.localPeer.description, agent: clip(ctx.config.agentVersion), version: LatticaVersion.string,
            uptimeS: (ctx.loop.now - startedAt).secondsDouble,
            listenAddrs: swarm.listenAddrs.map { $0.appending(.p2p(ctx.localPeer)).description },
            connectedPeers: swarm.connectedPeerCount, reachability: "unknown", natType: "unknown",
            natNote: "AutoNAT and the STUN mapping probe are not built yet: reachability and NAT type stay unknown",
            dht: dhtState, services: ctx.services().map { type(of: $0).name })
    }

    func peers() -> Dashboard.Peers {
        let entries = ctx.swarm.peerEntries().peers
        let lag = Dictionary((crdt?.syncStatus().peers ?? []).map { ($0.peerId, $0) }, uniquingKeysWith: { a, _ in a })
        let rep = Dictionary((training?.status().runs.first?.peers ?? []).map { ($0.peerId, $0) }, uniquingKeysWith: { a, _ in a })
        let shown = entries.prefix(limits.maxPeers).map { e in
            Dashboard.Peer(peerId: e.peerId, addr: clip(e.addr), connection: Self.connectionKind(e.addr), direction: e.direction,
                           rttMs: e.rttMs.flatMap(finite), agent: clip(e.agent), protocolVersion: clip(e.protocolVersion),
                           connectedS: e.connectedSeconds,
                           crdt: lag[e.peerId], reputation: rep[e.peerId].flatMap { finite($0.reputation) }, rejected: rep[e.peerId]?.rejected)
        }
        return Dashboard.Peers(total: entries.count, peers: Array(shown))
    }

    /// `relayed` when the connection's address goes through a relay (`/p2p-circuit`), else `direct`.
    static func connectionKind(_ addr: String) -> String {
        addr.contains("/p2p-circuit") ? "relayed" : "direct"
    }

    func crdtState() -> Dashboard.CRDTState {
        guard let s = crdt?.syncStatus() else { return Dashboard.CRDTState(stateHash: "", deltas: 0, authors: 0, paths: 0, total: 0, peers: []) }
        return Dashboard.CRDTState(stateHash: s.stateHash, deltas: s.deltas, authors: s.authors, paths: s.paths, total: s.peers.count,
                                   peers: Array(s.peers.prefix(limits.maxPeers)))
    }

    func runs() -> Dashboard.Runs {
        let ours = training?.status().runs.first
        var ids = history.runIDs
        if let o = ours?.run { ids.removeAll { $0 == o }; ids.insert(o, at: 0) }
        return Dashboard.Runs(runs: ids.prefix(limits.maxRuns).map { run($0, ours: ours?.run == $0 ? ours : nil) })
    }

    func run(_ id: String, ours: TrainStatusResult.Run?) -> Dashboard.Run {
        let runID = CRDT.RunID(id)
        let state = crdt?.crdt.state
        var config: [String: String] = [:]
        var members: [String] = [], checkpoints: [Dashboard.Checkpoint] = [], reports: [Dashboard.Report] = []
        var reportsTotal = 0
        if let runID, let state {
            for (k, v) in state.config(of: runID).sorted(by: { $0.key < $1.key }).prefix(limits.maxConfigKeys) {
                config[clip(k)] = clip(CRDTService.render(v))
            }
            members = state.members(of: runID).map(\.description)
            checkpoints = state.checkpoints(of: runID).suffix(limits.maxCheckpointsPerRun).map { c in
                Dashboard.Checkpoint(version: c.version, step: c.checkpoint.step, accuracy: c.checkpoint.metrics["accuracy"].flatMap(finite),
                                     author: c.author.description, contentHash: Hex.encode(c.checkpoint.contentHash))
            }
            let prefix = "run/\(id)/reports/"
            for path in state.paths(prefix: prefix) {
                guard let reporter = try? PeerId(string: String(path.dropFirst(prefix.count))) else { continue }
                for (accused, r) in state.reports(in: runID, by: reporter) {
                    reportsTotal += 1
                    guard reports.count < limits.maxReportsPerRun else { continue }
                    reports.append(Dashboard.Report(reporter: reporter.description, accused: accused.description, reason: clip(r.reason),
                                                    step: r.step, evidence: r.evidence.prefix(limits.maxEvidencePerReport).map { Hex.encode($0) }))
                }
            }
        }
        return Dashboard.Run(
            run: id, creator: runID?.creator?.description ?? "", joined: ours != nil, step: ours?.step, rounds: ours?.rounds,
            rejected: ours?.rejected, config: config, membersTotal: members.count, members: Array(members.prefix(limits.maxSeriesPerRun)),
            series: history.series(of: id), checkpoints: checkpoints, reportsTotal: reportsTotal, reports: reports,
            reputation: (ours?.peers ?? []).prefix(limits.maxSeriesPerRun).map {
                Dashboard.Reputation(peer: $0.peerId, reputation: finite($0.reputation), rejected: $0.rejected)
            })
    }

    func clip(_ s: String) -> String { Dashboard.clip(s, bytes: limits.maxStringBytes) }
}

func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }
