public import LatticaCore

extension CRDT.Instance {
    public typealias Directive = CRDT.Directive

    /// One frame body from `peer`. Undecodable bytes are counted and reported, never thrown.
    public mutating func onMessage(_ bytes: ArraySlice<UInt8>, from peer: PeerId, now: Instant, wall: CRDT.WallTime) -> [Directive] {
        do {
            let m = try CRDT.Message.decode(bytes, limits: settings.limits)
            return onMessage(m, from: peer, now: now, wall: wall)
        } catch {
            metrics.malformedMessages += 1
            return [misbehaved(peer, .malformedMessage(error))]
        }
    }

    /// A decoded message (the simulator hands messages over without bytes).
    public mutating func onMessage(_ m: CRDT.Message, from peer: PeerId, now: Instant, wall: CRDT.WallTime) -> [Directive] {
        metrics.messagesReceived += 1
        switch m {
        case .push(let batches):
            return receive(batches, from: peer, wall: wall, forward: true)
        case .versions(let theirs, let wantsReply):
            noteVersions(theirs, of: peer, now: now)
            var out: [Directive] = []
            let (missing, more) = missingBatches(for: theirs)
            if !missing.isEmpty {
                metrics.batchesSynced += missing.count
                out.append(send(.missing(missing, more: more), to: peer))
            }
            // Only ask for what they have and we lack: an exchange between nodes in sync is one vector.
            if wantsReply, theirs.missing(from: versions) > 0 {
                out.append(send(.versions(versions, wantsReply: false), to: peer))
            }
            return out
        case .missing(let batches, let more):
            let before = versions.total
            var out = receive(batches, from: peer, wall: wall, forward: false)
            // Ask for the rest only if this part moved us on (else the next round retries:
            // batches we refuse, e.g. from the future, must not ping-pong).
            if more, versions.total > before { out.append(send(.versions(versions, wantsReply: false), to: peer)) }
            return out
        case .summary(let digest, let wantsReply):
            if digest == versionsDigest {
                noteVersions(versions, of: peer, now: now)
                return wantsReply ? [send(.summary(digest: digest, wantsReply: false), to: peer)] : []
            }
            // Different (or our state moved on meanwhile): the full exchange.
            return wantsReply ? [send(.versions(versions, wantsReply: true), to: peer)] : []
        }
    }

    /// Batches `theirs` lacks, oldest first per author, authors in canonical order, within the
    /// per-message bounds; `more` when some did not fit.
    func missingBatches(for theirs: CRDT.VersionVector) -> ([CRDT.SignedBatch], more: Bool) {
        var out: [CRDT.SignedBatch] = []
        var bytes = 16
        for author in authors {
            let have = theirs[author]
            guard versions[author] > have, let log = logs[author] else { continue }
            let start = log.partitioningIndex { $0.lastSeq > have }
            for b in log[start...] {
                let size = b.body.count + b.signature.count + 5
                if out.count == settings.limits.maxBatchesPerMessage || (!out.isEmpty && bytes + size > settings.limits.maxMessageBytes) {
                    return (out, true)
                }
                out.append(b)
                bytes += size
            }
        }
        return (out, false)
    }

    // MARK: Admission

    mutating func receive(_ batches: [CRDT.SignedBatch], from peer: PeerId, wall: CRDT.WallTime, forward: Bool) -> [Directive] {
        var out: [Directive] = []
        var fresh: [CRDT.SignedBatch] = []
        for b in batches {
            out += admit(b, from: peer, wall: wall, fresh: &fresh)
        }
        guard forward, !fresh.isEmpty else { return out }
        return out + push(fresh, to: randomPeers(settings.forwardFanout, excluding: peer))
    }

    /// `.push` messages carrying `batches` to each of `peers`, split to fit the message bounds.
    mutating func push(_ batches: [CRDT.SignedBatch], to peers: [PeerId]) -> [Directive] {
        guard !peers.isEmpty else { return [] }
        var chunks: [[CRDT.SignedBatch]] = [[]]
        var bytes = 16
        for b in batches {
            let size = b.body.count + b.signature.count + 5
            if chunks[chunks.count - 1].count == settings.limits.maxBatchesPerMessage
                || (!chunks[chunks.count - 1].isEmpty && bytes + size > settings.limits.maxMessageBytes) {
                chunks.append([])
                bytes = 16
            }
            chunks[chunks.count - 1].append(b)
            bytes += size
        }
        metrics.batchesPushed += batches.count * peers.count
        var out: [Directive] = []
        for chunk in chunks where !chunk.isEmpty {
            for p in peers { out.append(send(.push(chunk), to: p)) }
        }
        return out
    }

    /// Verifies and applies one batch (or holds it for a gap, or drops it as a duplicate). A
    /// compacted batch that overlaps what we have goes to `adopt` (CRDT+Instance+Compaction.swift).
    mutating func admit(_ b: CRDT.SignedBatch, from peer: PeerId, wall: CRDT.WallTime, fresh: inout [CRDT.SignedBatch]) -> [Directive] {
        let have = versions[b.author]
        if b.isCompacted, b.firstSeq <= have { return adopt(b, from: peer, wall: wall, fresh: &fresh) }
        if b.lastSeq <= have { return duplicate(b, from: peer) }
        if logs[b.author] == nil, authors.count >= settings.limits.maxAuthors { return reject(.tooManyAuthors) }
        let gapped = b.firstSeq > have + 1
        // No hold slot: refuse before spending a signature check on it.
        if gapped, !canHold(b) { return reject(.gapped) }
        if let reason = validate(b, wall: wall) { return invalid(reason, from: peer) }
        if gapped { return hold(b) }
        var out = apply(b)
        fresh.append(b)
        releaseHeld(of: b.author, into: &out, fresh: &fresh)
        return out
    }

    /// Held batches of `author` that now follow on are applied; those now behind are dropped.
    mutating func releaseHeld(of author: PeerId, into out: inout [Directive], fresh: inout [CRDT.SignedBatch]) {
        while let next = held[author]?.removeValue(forKey: versions[author] + 1) {
            heldCount -= 1
            metrics.batchesReleased += 1
            out += apply(next)
            fresh.append(next)
        }
        if let rest = held[author] {
            let stale = rest.filter { $0.value.lastSeq <= versions[author] }
            for k in stale.keys { held[author]![k] = nil; heldCount -= 1 }
            if held[author]!.isEmpty { held[author] = nil }
        }
    }

    /// A batch that failed `validate`: counted, and the sender reported unless the verdict is our clock's.
    mutating func invalid(_ reason: CRDT.RejectReason, from peer: PeerId) -> [Directive] {
        var out = reject(reason)
        // An honest forwarder verifies before it forwards; a clock verdict is ours alone.
        if reason != .futureClock { out.append(misbehaved(peer, .invalidBatch(reason))) }
        return out
    }

    /// Signature, author and per-delta checks (clock bound, namespace rules).
    func validate(_ b: CRDT.SignedBatch, wall: CRDT.WallTime) -> CRDT.RejectReason? {
        guard b.deltas.count <= settings.limits.maxDeltasPerBatch else { return .valueTooLarge }
        if let r = b.verify() { return r }
        let horizon = wall.milliseconds &+ settings.maxClockSkewMilliseconds
        var text: String?
        for d in b.deltas {
            if d.time.wall > horizon { return .futureClock }
            let reason = CRDT.Namespace.check(d, author: b.author, authorText: {
                if let text { return text }
                let t = b.author.description
                text = t
                return t
            }(), limits: settings.limits)
            if let reason { return reason }
        }
        return nil
    }

    mutating func reject(_ reason: CRDT.RejectReason) -> [Directive] {
        metrics.rejected[reason, default: 0] += 1
        return []
    }

    mutating func duplicate(_ b: CRDT.SignedBatch, from peer: PeerId) -> [Directive] {
        metrics.rejected[.replayed, default: 0] += 1
        var out: [Directive] = []
        if !b.isCompacted, let log = logs[b.author] {
            let i = log.partitioningIndex { $0.lastSeq >= b.firstSeq }
            if i < log.count, Self.contradicts(b, log[i]), b.verify() == nil {
                metrics.equivocations += 1
                out.append(misbehaved(b.author, .equivocation(author: b.author, seq: b.firstSeq)))
            }
        }
        let n = duplicates[peer, default: 0] + 1
        duplicates[peer] = n
        if n == settings.maxDuplicatesPerInterval + 1 { out.append(misbehaved(peer, .excessiveDuplicates(n))) }
        return out
    }

    /// A plain batch against the batch of ours that holds its first seq: a plain one with the same
    /// first seq and other bytes, or a compacted one that holds one of its deltas differently (or
    /// left out an OR-set or multi-value delta, which compaction never drops).
    static func contradicts(_ b: CRDT.SignedBatch, _ ours: CRDT.SignedBatch) -> Bool {
        guard ours.isCompacted else { return ours.firstSeq == b.firstSeq && ours.body != b.body }
        return b.deltas.contains { d in
            ours.seqs.contains(d.seq) && (ours.delta(at: d.seq).map { $0 != d } ?? d.op.isKernel)
        }
    }

    func canHold(_ b: CRDT.SignedBatch) -> Bool {
        heldCount < settings.maxHeldBatches && (held[b.author]?.count ?? 0) < settings.maxHeldBatchesPerAuthor
            && held[b.author]?[b.firstSeq] == nil
    }

    mutating func hold(_ b: CRDT.SignedBatch) -> [Directive] {
        held[b.author, default: [:]][b.firstSeq] = b
        heldCount += 1
        metrics.batchesHeld += 1
        return []
    }

    // MARK: Applying

    /// Applies the deltas of a verified remote batch not applied yet and logs it (in place of the
    /// batches at `replacing` of its author's log, for a compacted batch). Returns `.persist`
    /// then `.applied`.
    mutating func apply(_ b: CRDT.SignedBatch, replacing: Range<Int>? = nil) -> [Directive] {
        var touched: [String] = []
        for d in b.deltas(after: versions[b.author]) {
            if state.apply(d, author: b.author) { metrics.typeConflicts += 1 }
            clock.observe(d.time)
            if touched.last != d.path { touched.append(d.path) }
        }
        return record(b, touched: touched, local: false, replacing: replacing)
    }

    mutating func record(_ b: CRDT.SignedBatch, touched: [String], local: Bool, replacing: Range<Int>? = nil) -> [Directive] {
        let have = versions[b.author]
        if logs[b.author] == nil {
            authors.insert(b.author, at: authors.partitioningIndex { !($0 < b.author) })
        }
        replaceLog(of: b.author, replacing ?? (logs[b.author]?.count ?? 0)..<(logs[b.author]?.count ?? 0), with: [b])
        if b.lastSeq > have {
            versions[b.author] = b.lastSeq
            digestCache = nil
        }
        let new = b.deltas(after: have)
        if local {
            metrics.localBatches += 1
            metrics.localDeltas += new.count
        } else if !new.isEmpty || replacing == nil {
            metrics.batchesApplied += 1
            metrics.deltasApplied += new.count
        }
        if replacing != nil { metrics.compactionsAdopted += 1 }
        var paths = touched
        if paths.count > 1 { paths = Array(Set(paths)).sorted() }
        let entries = settings.persistMaterialised
            ? paths.map { CRDT.Persist.Entry(path: $0, encoded: state.encodedEntry($0) ?? []) } : []
        var out: [Directive] = [.persist(CRDT.Persist(batch: b, entries: entries, replaces: replacing == nil ? nil : b.seqs))]
        if !new.isEmpty {
            out.append(.applied(CRDT.Applied(author: b.author, seqs: b.seqs, paths: paths, deltas: new, local: local)))
        }
        return out
    }

    /// Puts `batches` in place of `range` of `author`'s log, keeping the byte and delta counts.
    mutating func replaceLog(of author: PeerId, _ range: Range<Int>, with batches: [CRDT.SignedBatch]) {
        var log = logs.removeValue(forKey: author) ?? []
        for old in log[range] { logBytes -= old.byteCount; logDeltas -= old.deltas.count }
        for b in batches { logBytes += b.byteCount; logDeltas += b.deltas.count }
        log.replaceSubrange(range, with: batches)
        logs[author] = log
    }
}
