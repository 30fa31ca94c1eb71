import LatticaCore
@testable import LatticaCRDT

/// A round-based network of `CRDT.Instance`s: random topology, message loss, partitions,
/// crashes and restarts from what each node's shell persisted. One round is one anti-entropy
/// period: every up node fires its timer, then messages (encoded to bytes and decoded again)
/// are delivered hop by hop until none is in flight (latency far below the period).
struct SimCluster {
    var nodes: [CRDT.Instance?]
    let signers: [CRDT.Signer]
    let settings: CRDT.Settings
    var persisted: [[CRDT.SignedBatch]]
    /// Every local batch a shell committed (compaction replaces rows, not these): their join is
    /// the state every node must end with.
    var written: [CRDT.SignedBatch] = []
    var links: [Set<Int>]
    var group: [Int]
    var rng: SeededRandom
    var lossRate: Double
    var round = 0
    var messagesDelivered = 0
    var bytesDelivered = 0
    let index: [PeerId: Int]
    /// Per-node wall-clock skew in milliseconds (HLC must cope).
    let skew: [Int64]

    init(nodes n: Int, degree: Int, lossRate: Double, settings: CRDT.Settings, seed: UInt64) {
        rng = SeededRandom(seed: seed)
        var r = rng.fork()
        signers = (0..<n).map { _ in makeSigner(&r) }
        self.settings = settings
        self.lossRate = lossRate
        index = Dictionary(uniqueKeysWithValues: signers.enumerated().map { ($1.peerId, $0) })
        persisted = Array(repeating: [], count: n)
        group = Array(repeating: 0, count: n)
        links = Array(repeating: [], count: n)
        for i in 0..<n {
            while links[i].count < degree {
                let j = Int(rng.next() % UInt64(n))
                if j != i { links[i].insert(j); links[j].insert(i) }
            }
        }
        skew = (0..<n).map { _ in Int64(r.next() % 10_000) - 5_000 }
        nodes = Array(repeating: nil, count: n)
        for i in 0..<n { start(i) }
    }

    var now: Instant { Instant(nanoseconds: Int64(round) * 1_000_000_000) }
    func wall(_ i: Int) -> CRDT.WallTime { CRDT.WallTime(milliseconds: UInt64(Int64(wall0.milliseconds) + Int64(round) * 1000 + skew[i])) }
    var upNodes: [Int] { nodes.indices.filter { nodes[$0] != nil } }

    /// Starts (or restarts) node `i` from the batches its shell persisted, and connects it.
    mutating func start(_ i: Int) {
        nodes[i] = CRDT.Instance(signer: signers[i], settings: settings, seed: rng.next(), restoring: persisted[i])
        var queue: [(Int, Int, CRDT.Message)] = []
        for j in links[i].sorted() where nodes[j] != nil {
            queue += sends(nodes[i]!.onPeerConnected(signers[j].peerId, now: now), at: i)
            queue += sends(nodes[j]!.onPeerConnected(signers[i].peerId, now: now), at: j)
        }
        deliver(queue)
    }

    /// `kill -9` in the middle of a local write: the instance signed a batch, and the shell had
    /// committed it (`committed`) or not, but sent nothing. Then the node is down.
    mutating func crash(_ i: Int, duringWrite writes: [CRDT.Write], committed: Bool) {
        if nodes[i] != nil, let out = try? nodes[i]!.onLocalWrite(writes, now: now, wall: wall(i)), committed {
            for case .persist(let p) in out { Self.store(p, in: &persisted[i]); written.append(p.batch) }
        }
        crash(i)
    }

    mutating func crash(_ i: Int) {
        nodes[i] = nil
        for j in links[i] where nodes[j] != nil { _ = nodes[j]!.onPeerDisconnected(signers[i].peerId, now: now) }
    }

    /// Sends go to the queue; persists are what the shell committed (the restart source).
    mutating func sends(_ ds: [CRDT.Directive], at i: Int) -> [(Int, Int, CRDT.Message)] {
        var out: [(Int, Int, CRDT.Message)] = []
        for d in ds {
            switch d {
            case .send(let m, let p): out.append((i, index[p]!, m))
            case .persist(let p): Self.store(p, in: &persisted[i])
            case .scheduleTimer, .peerMisbehaved, .applied: break
            }
        }
        return out
    }

    /// What the shell's transaction does: a compacted batch first deletes the rows it replaces.
    static func store(_ p: CRDT.Persist, in rows: inout [CRDT.SignedBatch]) {
        if let r = p.replaces { rows.removeAll { $0.author == p.batch.author && r.contains($0.firstSeq) && r.contains($0.lastSeq) } }
        rows.append(p.batch)
    }

    mutating func write(_ i: Int, _ writes: [CRDT.Write]) -> Bool {
        guard nodes[i] != nil, let out = try? nodes[i]!.onLocalWrite(writes, now: now, wall: wall(i)) else { return false }
        for case .persist(let p) in out { written.append(p.batch) }
        deliver(sends(out, at: i))
        return true
    }

    /// Node `i` compacts its own log now and pushes the result.
    mutating func compact(_ i: Int) {
        guard nodes[i] != nil else { return }
        deliver(sends(nodes[i]!.compactNow(now: now), at: i))
    }

    mutating func deliver(_ initial: [(Int, Int, CRDT.Message)]) {
        var queue = initial
        var hops = 0
        while !queue.isEmpty && hops < 64 {
            hops += 1
            var next: [(Int, Int, CRDT.Message)] = []
            for (from, to, m) in queue {
                guard nodes[to] != nil, group[from] == group[to], !rng.chance(lossRate) else { continue }
                let bytes = m.encoded()
                messagesDelivered += 1
                bytesDelivered += bytes.count
                next += sends(nodes[to]!.onMessage(bytes[...], from: signers[from].peerId, now: now, wall: wall(to)), at: to)
            }
            queue = next
        }
    }

    /// One anti-entropy period.
    mutating func runRound() {
        round += 1
        var queue: [(Int, Int, CRDT.Message)] = []
        for i in upNodes { queue += sends(nodes[i]!.onTimer(.antiEntropy, now: now), at: i) }
        deliver(queue)
    }

    /// Equivocations seen by any node (a crash before commit must not lead to one).
    var equivocations: Int { nodes.reduce(0) { $0 + ($1?.metrics.equivocations ?? 0) } }

    var converged: Bool {
        let up = upNodes
        guard let first = up.first else { return true }
        let hash = nodes[first]!.state.stateHash, versions = nodes[first]!.versions
        return up.allSatisfy { nodes[$0]!.versions == versions && nodes[$0]!.state.stateHash == hash }
    }
}
