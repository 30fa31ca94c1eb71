import LatticaCore
@testable import LatticaCRDT

/// A few fully connected instances whose messages sit in one pool and are delivered one at a
/// time in random order (some twice, some lost), with writes, compactions, anti-entropy rounds
/// and restarts from what each node's shell persisted interleaved at random. Every batch an
/// author signed in a local write is kept (`written`): the join of all of them is the state a
/// store without compaction converges to.
struct CompactionWorld {
    var nodes: [CRDT.Instance]
    let signers: [CRDT.Signer]
    var rows: [[CRDT.SignedBatch]]
    var pool: [(from: Int, to: Int, message: CRDT.Message)] = []
    var written: [CRDT.SignedBatch] = []
    var rng: SeededRandom
    let settings: CRDT.Settings
    let index: [PeerId: Int]
    var step = 0

    init(nodes n: Int, settings: CRDT.Settings, seed: UInt64) {
        rng = SeededRandom(seed: seed)
        var r = rng.fork()
        signers = (0..<n).map { _ in makeSigner(&r) }
        self.settings = settings
        index = Dictionary(uniqueKeysWithValues: signers.enumerated().map { ($1.peerId, $0) })
        rows = Array(repeating: [], count: n)
        nodes = []
        for i in 0..<n { nodes.append(CRDT.Instance(signer: signers[i], settings: settings, seed: UInt64(i))) }
        for i in 0..<n { connect(i) }
    }

    var now: Instant { Instant(nanoseconds: Int64(step) * 100_000_000) }
    var wall: CRDT.WallTime { CRDT.WallTime(milliseconds: wall0.milliseconds + UInt64(step) * 100) }

    mutating func connect(_ i: Int) {
        for j in nodes.indices where j != i {
            take(nodes[i].onPeerConnected(signers[j].peerId, now: now), at: i)
            take(nodes[j].onPeerConnected(signers[i].peerId, now: now), at: j)
        }
    }

    /// Sends into the pool; persists into the node's rows (as the shell's transaction would).
    mutating func take(_ ds: [CRDT.Directive], at i: Int, local: Bool = false) {
        for d in ds {
            switch d {
            case .send(let m, let p): pool.append((i, index[p]!, m))
            case .persist(let p):
                SimCluster.store(p, in: &rows[i])
                if local { written.append(p.batch) }
            case .scheduleTimer, .peerMisbehaved, .applied: break
            }
        }
    }

    @discardableResult
    mutating func write(_ i: Int, _ writes: [CRDT.Write]) -> Bool {
        step += 1
        guard let out = try? nodes[i].onLocalWrite(writes, now: now, wall: wall) else { return false }
        take(out, at: i, local: true)
        return true
    }

    mutating func compact(_ i: Int) { take(nodes[i].compactNow(now: now), at: i) }

    /// Delivers one random message of the pool (encoded and decoded, as on the wire); with
    /// `duplicate` it stays in the pool, with `lose` it is dropped undelivered.
    mutating func deliverOne(duplicate: Double = 0.05, lose: Double = 0.05) {
        guard !pool.isEmpty else { return }
        step += 1
        let k = rng.below(pool.count)
        let (from, to, m) = pool[k]
        if !rng.chance(duplicate) { pool.remove(at: k) }
        if rng.chance(lose) { return }
        let bytes = m.encoded()
        take(nodes[to].onMessage(bytes[...], from: signers[from].peerId, now: now, wall: wall), at: to)
    }

    /// Delivers until the pool is empty; messages to the nodes in `except` are dropped (a node
    /// that hears nothing for a while).
    mutating func deliverAll(except cut: Set<Int> = []) {
        var budget = 1_000_000
        while !pool.isEmpty && budget > 0 {
            if !cut.isEmpty { pool.removeAll { cut.contains($0.to) } }
            deliverOne(duplicate: 0, lose: 0)
            budget -= 1
        }
    }

    mutating func antiEntropy(_ i: Int) { step += 1; take(nodes[i].onTimer(.antiEntropy, now: now), at: i) }

    /// `kill -9` and restart from the node's rows: messages in flight to it are lost.
    mutating func restart(_ i: Int) {
        pool.removeAll { $0.to == i || $0.from == i }
        nodes[i] = CRDT.Instance(signer: signers[i], settings: settings, seed: rng.next(), restoring: rows[i])
        for j in nodes.indices where j != i { _ = nodes[j].onPeerDisconnected(signers[i].peerId, now: now) }
        connect(i)
    }

    /// Anti-entropy rounds (no loss) until every node has one vector and one state hash; the
    /// rounds it took, or nil after `limit`.
    mutating func settle(limit: Int = 12) -> Int? {
        deliverAll()
        for round in 0...limit {
            if converged { return round }
            for i in nodes.indices { antiEntropy(i) }
            deliverAll()
        }
        return converged ? limit : nil
    }

    var converged: Bool {
        nodes.allSatisfy { $0.versions == nodes[0].versions && $0.state.stateHash == nodes[0].state.stateHash }
    }

    /// The join of every batch ever signed: what a store without compaction holds.
    var reference: CRDT.Instance {
        CRDT.Instance(signer: signers[0], seed: 0, restoring: written, verifyRestored: false)
    }
}
