public import LatticaCore

extension CRDT.Instance {
    /// Local writes: checked (namespace rules with us as author, sizes, kinds), turned into
    /// deltas against the current state, applied, signed in batches of `settings.localBatchSize`
    /// deltas or `localBatchBytes` (one signature each), then `.persist` (commit before acknowledging) and `.send` to every
    /// connected peer. Throws before anything is applied if any write is refused.
    public mutating func onLocalWrite(_ writes: [CRDT.Write], now: Instant, wall: CRDT.WallTime) throws(CRDT.WriteError) -> [Directive] {
        guard !writes.isEmpty else { throw .noWrites }
        try check(writes, wall: wall)
        var out: [Directive] = []
        var pushed: [CRDT.SignedBatch] = []
        let maxDeltas = max(1, min(settings.localBatchSize, settings.limits.maxDeltasPerBatch))
        var start = 0
        while start < writes.count {
            let first = nextSeq
            var deltas: [CRDT.Delta] = []
            var touched: [String] = []
            var bytes = 0
            // A batch closes at `maxDeltas` deltas or `localBatchBytes` (an upper estimate of its
            // encoding), so that any batch fits in a message.
            for w in writes[start...] {
                let seq = first + UInt64(deltas.count)
                let d = CRDT.Delta(seq: seq, time: clock.tick(wall: wall), path: w.path, op: op(for: w, seq: seq))
                state.apply(d, author: localPeer)
                deltas.append(d)
                if touched.last != d.path { touched.append(d.path) }
                bytes += Self.encodedSizeBound(d)
                if deltas.count == maxDeltas || bytes >= settings.localBatchBytes { break }
            }
            let b = CRDT.SignedBatch(author: localPeer, firstSeq: first, deltas: deltas, signer: signer)
            out += record(b, touched: touched, local: true)
            pushed.append(b)
            start += deltas.count
        }
        return out + push(pushed, to: randomPeers(settings.maxPushPeers, excluding: nil))
    }

    public mutating func onLocalWrite(_ write: CRDT.Write, now: Instant, wall: CRDT.WallTime) throws(CRDT.WriteError) -> [Directive] {
        try onLocalWrite([write], now: now, wall: wall)
    }

    /// At least the encoded size of `d` (varints counted at their longest).
    static func encodedSizeBound(_ d: CRDT.Delta) -> Int {
        let value = d.op.value.map { $0.contentLength + 10 } ?? 0
        return 32 + d.path.utf8.count + (d.op.mapKey?.utf8.count ?? 0) + value + d.op.observed.count * 80
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
