public import LatticaCore

extension CRDT.Instance {
    /// Local writes: checked (namespace rules with us as author, sizes, kinds), turned into
    /// deltas against the current state, applied, signed in batches of `settings.localBatchSize`
    /// (one signature each), then `.persist` (commit before acknowledging) and `.send` to every
    /// connected peer. Throws before anything is applied if any write is refused.
    public mutating func onLocalWrite(_ writes: [CRDT.Write], now: Instant, wall: CRDT.WallTime) throws(CRDT.WriteError) -> [Directive] {
        guard !writes.isEmpty else { throw .noWrites }
        try check(writes, wall: wall)
        var out: [Directive] = []
        var pushed: [CRDT.SignedBatch] = []
        var start = 0
        while start < writes.count {
            let end = min(writes.count, start + max(1, min(settings.localBatchSize, settings.limits.maxDeltasPerBatch)))
            let first = nextSeq
            var deltas: [CRDT.Delta] = []
            deltas.reserveCapacity(end - start)
            var touched: [String] = []
            for (i, w) in writes[start..<end].enumerated() {
                let d = CRDT.Delta(seq: first + UInt64(i), time: clock.tick(wall: wall), path: w.path, op: op(for: w, seq: first + UInt64(i)))
                state.apply(d, author: localPeer)
                deltas.append(d)
                if touched.last != d.path { touched.append(d.path) }
            }
            let b = CRDT.SignedBatch(author: localPeer, firstSeq: first, deltas: deltas, signer: signer)
            out += record(b, touched: touched, local: true)
            pushed.append(b)
            start = end
        }
        let peers = randomPeers(settings.maxPushPeers, excluding: nil)
        metrics.batchesPushed += pushed.count * peers.count
        for chunkStart in stride(from: 0, to: pushed.count, by: settings.limits.maxBatchesPerMessage) {
            let chunk = Array(pushed[chunkStart..<min(pushed.count, chunkStart + settings.limits.maxBatchesPerMessage)])
            for p in peers { out.append(send(.push(chunk), to: p)) }
        }
        return out
    }

    public mutating func onLocalWrite(_ write: CRDT.Write, now: Instant, wall: CRDT.WallTime) throws(CRDT.WriteError) -> [Directive] {
        try onLocalWrite([write], now: now, wall: wall)
    }

    /// Every check a receiver will make, with the first-use kinds this call itself sets.
    func check(_ writes: [CRDT.Write], wall: CRDT.WallTime) throws(CRDT.WriteError) {
        var kinds: [String: CRDT.Kind] = [:]
        for w in writes {
            let probe = CRDT.Delta(seq: 1, time: CRDT.Timestamp(wall: wall.milliseconds), path: w.path, op: op(for: w, seq: 1))
            if let r = CRDT.Namespace.check(probe, author: localPeer, authorText: localPeerText, limits: settings.limits) {
                throw .rejected(r, path: w.path)
            }
            let holds = kinds[w.path] ?? state.kind(at: w.path)
            if let holds, holds != w.kind { throw .typeMismatch(path: w.path, holds: holds, write: w.kind) }
            kinds[w.path] = holds ?? w.kind
        }
    }

    /// The operation of `w` against the current state: observed dots, our new counter totals.
    func op(for w: CRDT.Write, seq: UInt64) -> CRDT.Op {
        let max = settings.limits.maxObservedDots
        let object = state.entries[w.path]?.variants.first { $0.object.kind == w.kind }?.object
        switch w {
        case .set(_, let v): return .register(v)
        case .mapSet(_, let k, let v): return .mapSet(key: k, v)
        case .mapRemove(_, let k): return .mapRemove(key: k)
        case .add(_, let v), .remove(_, let v):
            var observed: [CRDT.Dot] = []
            if case .set(let s)? = object { observed = Array(s.kernel.dots { $0 == v }.prefix(max)) }
            if case .add = w { return .setAdd(v, observed: observed) }
            return .setRemove(v, observed: observed)
        case .increment(_, let amount):
            let current: CRDT.PNCounter = if case .counter(let c)? = object { c } else { CRDT.PNCounter() }
            let t = current.addDelta(amount, author: localPeer).totals[localPeer]!
            return .counter(p: t.p, n: t.n)
        case .multiValue(_, let v):
            var observed: [CRDT.Dot] = []
            if case .multiValue(let m)? = object { observed = Array(m.values.map(\.dot).prefix(max)) }
            return .multiValue(v, observed: observed)
        }
    }
}
