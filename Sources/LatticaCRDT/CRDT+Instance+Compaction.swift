public import LatticaCore

/// Log compaction (Docs/CRDT.md §6.1). Only an author can sign for its seqs, so a node compacts
/// its own log: it re-signs runs of its batches as compacted batches (version 2) that cover the
/// same seqs and carry only the deltas that still decide the state; peers verify them and put
/// them in place of their copies, so when an author compacts, every copy of its log shrinks.
extension CRDT.Instance {
    // MARK: Own log

    /// Compacts our own log if it holds at least `compactionMinBatches` batches and fewer than
    /// `compactionMaxLiveFraction` of its deltas are live (the `.compaction` timer calls it).
    public mutating func compactIfWorthIt(now: Instant) -> [Directive] {
        let log = logs[localPeer] ?? []
        guard settings.compactionMinBatches > 0, log.count >= settings.compactionMinBatches else { return [] }
        let live = liveSeqs(of: localPeer)
        let total = log.reduce(0) { $0 + $1.deltas.count }
        guard Double(live.count) < Double(total) * settings.compactionMaxLiveFraction else { return [] }
        return compact(live: live)
    }

    /// Compacts our own log now, whatever its live fraction (tests, `compactIfWorthIt`).
    public mutating func compactNow(now: Instant) -> [Directive] {
        compact(live: liveSeqs(of: localPeer))
    }

    /// Groups consecutive batches of our log into compacted batches of at most
    /// `localBatchSize` live deltas and `localBatchBytes` (so each fits in a message), keeps a
    /// batch that would come out unchanged, then `.persist` (replacing the rows of the group) for
    /// each new batch and pushes them to every connected peer.
    mutating func compact(live: Set<UInt64>) -> [Directive] {
        let log = logs[localPeer] ?? []
        let maxDeltas = max(1, min(settings.localBatchSize, settings.limits.maxDeltasPerBatch))
        var newLog: [CRDT.SignedBatch] = [], made: [CRDT.SignedBatch] = []
        var group: [CRDT.SignedBatch] = [], kept: [CRDT.Delta] = [], bytes = 0
        func close() {
            guard let first = group.first, let last = group.last else { return }
            if group.count == 1, kept.count == first.deltas.count {
                newLog.append(first)
            } else {
                let c = CRDT.SignedBatch(author: localPeer, compacting: first.firstSeq...last.lastSeq, live: kept, signer: signer)
                newLog.append(c)
                made.append(c)
            }
            group = []; kept = []; bytes = 0
        }
        for b in log {
            let keep = b.deltas.filter { live.contains($0.seq) }
            let size = keep.reduce(0) { $0 + Self.encodedSizeBound($1) }
            if !group.isEmpty, kept.count + keep.count > maxDeltas || bytes + size > settings.localBatchBytes { close() }
            group.append(b); kept += keep; bytes += size
        }
        close()
        guard !made.isEmpty else { return [] }
        replaceLog(of: localPeer, 0..<log.count, with: newLog)
        metrics.compactions += 1
        var out: [Directive] = made.map { .persist(CRDT.Persist(batch: $0, entries: [], replaces: $0.seqs)) }
        out += push(made, to: randomPeers(settings.maxPushPeers, excluding: nil))
        return out
    }

    /// The seqs of `author`'s logged deltas that still decide the state: an LWW register or map
    /// entry it holds (same stamp and value), the author's newest counter totals at a path, the
    /// smallest stamp of its kind at the path (`Variant.first`, which picks the visible kind and
    /// is in the state hash), and every OR-set and multi-value delta (their dots are the kernel's
    /// causal context). Every other delta is dominated: a larger stamp or larger totals that the
    /// state holds, so that joining without it gives the same state.
    func liveSeqs(of author: PeerId) -> Set<UInt64> {
        var live = Set<UInt64>()
        var counted = Set<String>()
        for b in (logs[author] ?? []).reversed() {
            for d in b.deltas.reversed() where decides(d, author: author, counted: &counted) { live.insert(d.seq) }
        }
        return live
    }

    /// Whether `d` decides part of the state (see `liveSeqs`). `counted`: counter paths whose
    /// newest delta of the author was seen (deltas are visited newest first).
    func decides(_ d: CRDT.Delta, author: PeerId, counted: inout Set<String>) -> Bool {
        guard let variant = state.entries[d.path]?.variants.first(where: { $0.object.kind == d.op.kind }) else { return true }
        let stamp = CRDT.Stamp(time: d.time, author: author)
        var holds = false
        switch (d.op, variant.object) {
        case (.register(let v), .register(let r)):
            holds = r.stamp == stamp && r.value == v
        case (.mapSet(let k, let v), .map(let m)):
            holds = m.registers[k]?.stamp == stamp && m.registers[k]?.value == v
        case (.mapRemove(let k), .map(let m)):
            holds = m.registers[k]?.stamp == stamp && m.registers[k]?.value == nil
        case (.counter(let p, let n), .counter(let c)):
            if !counted.contains(d.path), c.totals[author] == CRDT.PNCounter.Totals(p: p, n: n) {
                counted.insert(d.path)
                holds = true
            }
        default:
            holds = d.op.isKernel
        }
        return holds || variant.first == stamp
    }

    // MARK: A peer's compacted batch

    /// What a compacted batch that overlaps what we hold of its author means for our log.
    enum Fit {
        /// We hold it, or a coarser (later) compaction that covers it, or it would not shrink our copy.
        case duplicate
        /// It takes the place of these batches of our log (and may bring seqs above ours).
        case replaces(Range<Int>)
        /// It contradicts what we hold (at this seq): only a faulty author signs such a batch.
        case conflicting(UInt64)
    }

    /// A duplicate by a binary search alone (no signature check): the same bytes, or one of our
    /// batches covers all of it and is not larger (we hold it, a later and coarser compaction, or
    /// the same range compacted again later).
    func isCoveredDuplicate(_ b: CRDT.SignedBatch) -> Bool {
        let log = logs[b.author] ?? []
        let i = log.partitioningIndex { $0.lastSeq >= b.firstSeq }
        guard i < log.count, log[i].firstSeq <= b.firstSeq, log[i].lastSeq >= b.lastSeq else { return false }
        return log[i].seqs != b.seqs || log[i].byteCount <= b.byteCount
    }

    /// An honest author's batches are nested or disjoint (a compaction groups whole batches and
    /// only ever coarsens), its compacted batches keep a subset of the deltas it had (once
    /// dominated, a delta stays dominated), byte-identical, and never drop an OR-set or
    /// multi-value delta. A batch that breaks any of these against our copy is `conflicting`.
    /// Work: the deltas of our batches in its range (after its signature was checked).
    func fit(_ b: CRDT.SignedBatch) -> Fit {
        let log = logs[b.author] ?? []
        let have = versions[b.author]
        let end = min(b.lastSeq, have)
        let i0 = log.partitioningIndex { $0.lastSeq >= b.firstSeq }
        guard i0 < log.count, log[i0].firstSeq == b.firstSeq else { return .conflicting(b.firstSeq) }
        // Entirely below our seq: it must end where one of our batches ends; above it: it takes
        // everything from `i0` on.
        let i1 = b.lastSeq <= have ? log.partitioningIndex { $0.lastSeq >= b.lastSeq } : log.count - 1
        guard i1 < log.count, i1 >= i0 else { return .conflicting(end) }
        if b.lastSeq <= have, log[i1].lastSeq != b.lastSeq { return .conflicting(b.lastSeq) }
        // Ours in the range against its deltas, both in seq order.
        var j = 0
        for k in i0...i1 {
            for d in log[k].deltas where d.seq <= end {
                if j < b.deltas.count, b.deltas[j].seq < d.seq { return .conflicting(b.deltas[j].seq) }
                if j < b.deltas.count, b.deltas[j].seq == d.seq {
                    guard b.deltas[j] == d else { return .conflicting(d.seq) }
                    j += 1
                } else if d.op.isKernel {
                    return .conflicting(d.seq)
                }
            }
        }
        if j < b.deltas.count, b.deltas[j].seq <= end { return .conflicting(b.deltas[j].seq) }
        if b.lastSeq <= have, log[i0...i1].reduce(0, { $0 + $1.byteCount }) <= b.byteCount { return .duplicate }
        return .replaces(i0..<(i1 + 1))
    }

    /// A compacted batch whose range starts at or below our seq for its author: a duplicate, or
    /// (verified, consistent with our copy) it takes the place of the batches it covers and
    /// applies the deltas above our seq; a contradiction is rejected and reported as the author's
    /// equivocation. A replacement is forwarded like a new batch, so a compaction spreads.
    mutating func adopt(_ b: CRDT.SignedBatch, from peer: PeerId, wall: CRDT.WallTime, fresh: inout [CRDT.SignedBatch]) -> [Directive] {
        if isCoveredDuplicate(b) { return duplicate(b, from: peer) }
        // The signature before the walk over our copy: a forged batch costs what any forged batch costs.
        if let reason = validate(b, wall: wall) { return invalid(reason, from: peer) }
        switch fit(b) {
        case .duplicate:
            return duplicate(b, from: peer)
        case .conflicting(let seq):
            metrics.equivocations += 1
            return reject(.conflicting) + [misbehaved(b.author, .equivocation(author: b.author, seq: seq))]
        case .replaces(let range):
            var out = apply(b, replacing: range)
            fresh.append(b)
            releaseHeld(of: b.author, into: &out, fresh: &fresh)
            return out
        }
    }
}
