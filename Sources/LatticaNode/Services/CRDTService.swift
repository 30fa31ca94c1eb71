import FoundationEssentials
import LatticaAPI
import LatticaCore
import LatticaCRDT
import LatticaCrypto
import LatticaStore
import LatticaUV
import Logging
import Metrics

/// The replicated metadata store (`/lattica/crdt/1.0.0`, Docs/CRDT.md): the shell around
/// `CRDT.Instance`. It carries the instance's messages over one-way swarm streams (one framed
/// message per stream), persists each applied batch and the entries it touched in one SQLite
/// transaction before anything is acknowledged or sent, runs the anti-entropy timer, and
/// restores the store from its batches at start (verifying every signature again).
///
/// Config `[crdt]`: `anti_entropy_interval_s` (default 2), `fanout` (peers per round, default 1),
/// `max_clock_skew_s` (default 60), `compact_interval_s` (default 30) and `compact_min_batches`
/// (default 32; 0: never compact our own log). Loop thread only.
final class CRDTService: NodeService, @unchecked Sendable {
    static let name = "crdt"

    let swarm: Swarm
    let loop: EventLoop
    let logger: Logger
    let persistence: CRDTPersistence
    var crdt: CRDT.Instance
    private var timers: [CRDT.TimerID: LoopTimer] = [:]
    /// The newest applied deltas (author, seq, time, path, op), for `meta.log`: between 1,000 and
    /// 2,000 entries of ≈ 0.5 KB (10,000–20,000 showed as a slope of ≈ 9 MiB in a 20-minute soak).
    private(set) var recent: [MetaLogResult.Entry] = []
    static let maxRecent = 1_000
    private var published = CRDT.Metrics()
    private var observers: [(CRDT.Applied) -> Void] = []

    static func validate(section: TableReader) throws(ConfigError) { _ = try settings(section) }

    static func settings(_ section: TableReader) throws(ConfigError) -> CRDT.Settings {
        var r = section, s = CRDT.Settings()
        if let v = try r.double("anti_entropy_interval_s", range: 0.05...3600) { s.antiEntropyInterval = .milliseconds(Int64(v * 1000)) }
        if let v = try r.int("fanout", range: 1...64) { s.antiEntropyFanout = v }
        if let v = try r.double("max_clock_skew_s", range: 0.5...86_400) { s.maxClockSkewMilliseconds = UInt64(v * 1000) }
        if let v = try r.double("compact_interval_s", range: 1...86_400) { s.compactionInterval = .milliseconds(Int64(v * 1000)) }
        if let v = try r.int("compact_min_batches", range: 0...1_000_000) { s.compactionMinBatches = v }
        try r.finish()
        return s
    }

    init(context: ServiceContext) throws(DaemonError) {
        swarm = context.swarm
        loop = context.loop
        logger = context.logger
        let settings: CRDT.Settings
        do { settings = try Self.settings(context.section) } catch { throw DaemonError(error.description) }
        persistence = CRDTPersistence(db: context.db)
        let batches: [CRDT.SignedBatch]
        do { batches = try persistence.load(limits: settings.limits) } catch {
            throw DaemonError("cannot read the CRDT store in \(context.db.path): \(error)")
        }
        crdt = CRDT.Instance(signer: CRDT.Signer(key: context.identity), settings: settings,
                             seed: SecureRandom.uint64(), restoring: batches)
        if crdt.metrics.restoredBatches < batches.count {
            logger.warning("CRDT batches failed verification at restore and were skipped", metadata: [
                "restored": "\(crdt.metrics.restoredBatches)", "stored": "\(batches.count)"])
        }
        swarm.handleRequests(CRDT.protocolID, maxBytes: settings.limits.maxMessageBytes) { [weak self] peer, bytes, respond in
            respond([])  // one-way: close our side, no answer
            self?.onMessage(bytes, from: peer)
        }
        registerMethods(context)
    }

    func start() {
        apply(crdt.onStart(now: loop.now))
        publishMetrics()
    }

    func stop() {
        for t in timers.values { t.cancel() }
        timers.removeAll()
    }

    func onPeerEvent(_ event: PeerEvent) {
        switch event {
        case .identified(let peer, let info) where info.protocols.contains(CRDT.protocolID):
            apply(crdt.onPeerConnected(peer, now: loop.now))
        case .disconnected(let peer):
            apply(crdt.onPeerDisconnected(peer, now: loop.now))
        default:
            break
        }
    }

    static var wall: CRDT.WallTime { CRDT.WallTime(milliseconds: UInt64(max(0, wallClockSeconds() * 1000))) }

    func onMessage(_ bytes: [UInt8], from peer: PeerId) {
        guard degraded == nil else {
            Counter(label: "lattica_crdt_messages_dropped_total", dimensions: [("reason", "degraded")]).increment()
            return
        }
        apply(crdt.onMessage(bytes[...], from: peer, now: loop.now, wall: Self.wall))
    }

    /// `body` hears every batch the instance applies from here on, local or received, with the
    /// deltas it newly applied (the dashboard follows run progress this way). Loop thread; it must
    /// not write to the store.
    func observeApplied(_ body: @escaping (CRDT.Applied) -> Void) { observers.append(body) }

    /// Set when a batch could not be committed: the store stops taking writes and messages
    /// until a restart (which restores what was committed), so that a batch that is not on disk
    /// never reaches a peer and no sequence number is ever signed twice.
    private(set) var degraded: String?

    /// Local writes: applied, signed and persisted when this returns without throwing.
    func write(_ writes: [CRDT.Write]) throws(CRDT.WriteError) -> (seq: UInt64, failed: Bool) {
        if degraded != nil { return (crdt.nextSeq - 1, true) }
        let before = persistFailures
        let ds = try crdt.onLocalWrite(writes, now: loop.now, wall: Self.wall)
        apply(ds)
        return (crdt.nextSeq - 1, persistFailures != before)
    }

    private(set) var persistFailures = 0

    func apply(_ directives: [CRDT.Directive]) {
        // Consecutive batches (a push or a catch-up message carries up to hundreds) are committed
        // in one transaction, before any later directive of the call runs (group commit).
        var group: [CRDT.Persist] = []
        func commit() {
            guard !group.isEmpty else { return }
            defer { group.removeAll() }
            guard degraded == nil else { return }
            do { try persistence.save(group) } catch {
                persistFailures += 1
                degraded = "a batch could not be committed: \(error)"
                Counter(label: "lattica_persist_failures_total", dimensions: [("store", "crdt"), ("op", "batch")]).increment()
                logger.error("CRDT batches not persisted; the store takes no writes until a restart", metadata: [
                    "batches": "\(group.count)", "first_author": "\(group[0].batch.author)", "error": "\(error)"])
            }
        }
        for d in directives {
            if case .persist(let p) = d { group.append(p); continue }
            if case .applied(let a) = d {  // bookkeeping: nothing leaves the node
                remember(a)
                for o in observers { o(a) }
                continue
            }
            commit()
            if degraded != nil, case .send = d { continue }  // nothing after a failed commit leaves the node
            switch d {
            case .send(let m, let peer):
                swarm.sendOneWay(peer, CRDT.protocolID, m.encoded()) { _ in }
            case .persist:
                break  // grouped above
            case .scheduleTimer(let t, let at):
                timers[t]?.cancel()
                timers[t] = loop.scheduleTimer(after: max(.zero, at - loop.now)) { [weak self] _ in
                    guard let self else { return }
                    self.timers.removeValue(forKey: t)
                    self.apply(self.crdt.onTimer(t, now: self.loop.now))
                    self.publishMetrics()
                }
            case .peerMisbehaved(let peer, let why):
                Counter(label: "lattica_crdt_peer_misbehaviors_total", dimensions: [("reason", Self.label(why))]).increment()
                logger.info("CRDT peer misbehaved", metadata: ["peer": "\(peer)", "reason": "\(why)"])
            case .applied:
                break  // handled above
            }
        }
        commit()
    }

    /// Keeps the applied deltas for `meta.log` (bounded: the oldest go first).
    private func remember(_ a: CRDT.Applied) {
        for d in a.deltas {
            recent.append(MetaLogResult.Entry(author: a.author.description, seq: d.seq, timeMs: d.time.wall, path: d.path, op: Self.describe(d.op)))
            if recent.count >= 2 * Self.maxRecent { recent.removeFirst(recent.count - Self.maxRecent) }  // amortised O(1)
        }
    }

    static func label(_ m: CRDT.Misbehavior) -> String {
        switch m {
        case .malformedMessage: "malformed"
        case .invalidBatch(let r): r.rawValue
        case .excessiveDuplicates: "duplicates"
        case .equivocation: "equivocation"
        }
    }

    static func describe(_ op: CRDT.Op) -> String {
        switch op {
        case .register(let v): "set \(render(v))"
        case .mapSet(let k, let v): "map set \(k)=\(render(v))"
        case .mapRemove(let k): "map remove \(k)"
        case .setAdd(let v, _): "add \(render(v))"
        case .setRemove(let v, _): "remove \(render(v))"
        case .counter(let p, let n): "counter +\(p) -\(n)"
        case .multiValue(let v, _): "set (multi-value) \(render(v))"
        }
    }

    static func render(_ v: CRDT.Value) -> String {
        switch v {
        case .string(let s): s
        case .int(let i): String(i)
        case .bool(let b): b ? "true" : "false"
        case .bytes(let b): "0x" + Hex.encode(b)
        }
    }

    /// The instance's counters as Prometheus series (deltas since the last publication).
    func publishMetrics() {
        let m = crdt.metrics, p = published
        func add(_ label: String, _ now: Int, _ before: Int, _ dims: [(String, String)] = []) {
            if now > before { Counter(label: label, dimensions: dims).increment(by: now - before) }
        }
        add("lattica_crdt_local_deltas_total", m.localDeltas, p.localDeltas)
        add("lattica_crdt_applied_batches_total", m.batchesApplied, p.batchesApplied)
        add("lattica_crdt_applied_deltas_total", m.deltasApplied, p.deltasApplied)
        add("lattica_crdt_messages_received_total", m.messagesReceived, p.messagesReceived)
        add("lattica_crdt_messages_sent_total", m.messagesSent, p.messagesSent)
        add("lattica_crdt_anti_entropy_total", m.antiEntropyExchanges, p.antiEntropyExchanges)
        add("lattica_crdt_malformed_messages_total", m.malformedMessages, p.malformedMessages)
        for (r, n) in m.rejected { add("lattica_crdt_rejected_batches_total", n, p.rejected(r), [("reason", r.rawValue)]) }
        add("lattica_crdt_compactions_total", m.compactions, p.compactions, [("who", "own")])
        add("lattica_crdt_compactions_total", m.compactionsAdopted, p.compactionsAdopted, [("who", "peer")])
        add("lattica_crdt_equivocations_total", m.equivocations, p.equivocations)
        Gauge(label: "lattica_crdt_deltas").record(Int(clamping: crdt.versions.total))
        Gauge(label: "lattica_crdt_log_bytes").record(crdt.logBytes)
        Gauge(label: "lattica_crdt_log_deltas").record(crdt.logDeltas)
        published = m
    }
}

/// The CRDT store's tables: `crdt_batches` (every applied signed batch, as received, compacted
/// batches in place of the ones they replaced: the log anti-entropy sends from and the store is
/// rebuilt from) and `crdt_entries` (the materialised
/// entry of every path, as of the last batch that touched it).
struct CRDTPersistence {
    let db: Database

    func load(limits: CRDT.Limits) throws(StoreError) -> [CRDT.SignedBatch] {
        var out: [CRDT.SignedBatch] = []
        var bad = 0
        for r in try db.query("SELECT body FROM crdt_batches ORDER BY author, first_seq") {
            guard let b = r.blob(0), let batch = try? CRDT.SignedBatch(decoding: b[...], limits: limits) else { bad += 1; continue }
            out.append(batch)
        }
        if bad > 0 {
            Counter(label: "lattica_crdt_unreadable_rows_total").increment(by: bad)
            Logger(label: "lattica.crdt").error("rows of crdt_batches could not be decoded and were skipped (the file is damaged?)",
                                                 metadata: ["rows": "\(bad)", "database": "\(db.path)"])
        }
        return out
    }

    /// Batches and their entries in one transaction: after `kill -9` at any instant the store
    /// has all of them or none. An entry touched by several of the batches is written once, as
    /// the last of them left it.
    func save(_ group: [CRDT.Persist]) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            var latest: [String: [UInt8]] = [:]
            for p in group {
                if let r = p.replaces {
                    _ = try db.query("DELETE FROM crdt_batches WHERE author = ? AND first_seq >= ? AND last_seq <= ?",
                                     [.blob(p.batch.author.multihash), .int(Int64(r.lowerBound)), .int(Int64(r.upperBound))])
                }
                _ = try db.query("INSERT OR IGNORE INTO crdt_batches(author, first_seq, last_seq, body) VALUES (?,?,?,?)",
                                 [.blob(p.batch.author.multihash), .int(Int64(p.batch.firstSeq)), .int(Int64(p.batch.lastSeq)), .blob(p.batch.encoded)])
                for e in p.entries { latest[e.path] = e.encoded }
            }
            for (path, encoded) in latest {
                _ = try db.query("INSERT OR REPLACE INTO crdt_entries(path, encoded) VALUES (?,?)", [.text(path), .blob(encoded)])
            }
        }
    }

    func save(_ p: CRDT.Persist) throws(StoreError) { try save([p]) }
}
