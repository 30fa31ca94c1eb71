import FoundationEssentials
import LatticaCore
import LatticaCRDT
import LatticaCrypto
import LatticaStore

/// `lattica-bench crdt-log`: what a long run of overwrites leaves in memory and on disk, with
/// and without log compaction (Docs/CRDT.md §6.1). An author overwrites `paths` registers
/// `overwrites` times, one write (one signed batch) per call, as training writes its progress;
/// a second instance (a peer) applies every batch it pushes. The compaction timer fires every
/// `writesPerTick` writes (in the daemon it fires every `crdt.compact_interval_s`). Both
/// instances commit to SQLite as the daemon does. Run once per mode: the RSS is the process's.
public enum CRDTLogBenchmark {
    public static func run(overwrites: Int, paths: Int, compact: Bool, writesPerTick: Int) throws -> [(String, Double)] {
        let dir = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/lattica-crdt-log-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            do { try FileManager.default.removeItem(atPath: dir) } catch { print("cannot remove \(dir): \(error)") }
        }
        var settings = CRDT.Settings()
        if !compact { settings.compactionMinBatches = 0 }
        let wall = CRDT.WallTime(milliseconds: UInt64(wallClockSeconds() * 1000))
        let authorSigner = CRDT.Signer(key: .generate()), peerSigner = CRDT.Signer(key: .generate())
        var author = CRDT.Instance(signer: authorSigner, settings: settings, seed: 1)
        var peer = CRDT.Instance(signer: peerSigner, settings: settings, seed: 2)
        _ = author.onPeerConnected(peerSigner.peerId, now: .zero)
        let stores = [CRDTPersistence(db: try NodeDatabase.open(path: dir + "/author.sqlite3")),
                      CRDTPersistence(db: try NodeDatabase.open(path: dir + "/peer.sqlite3"))]
        let rss0 = residentMiB()
        let started = wallClockSeconds()
        for k in 0..<overwrites {
            var out = try author.onLocalWrite([.set("kv/progress/\(k % paths)", .int(Int64(k)))], now: .zero, wall: wall)
            if (k + 1) % writesPerTick == 0 { out += author.onTimer(.compaction, now: .zero) }
            try carryOut(out, on: &peer, from: authorSigner.peerId, stores: stores, wall: wall)
        }
        let seconds = wallClockSeconds() - started
        let dbBytes = try ["author", "peer"].map { try fileBytes(dir + "/\($0).sqlite3") + fileBytes(dir + "/\($0).sqlite3-wal") }
        return [
            ("author_log_bytes", Double(author.logBytes)), ("author_log_deltas", Double(author.logDeltas)),
            ("peer_log_bytes", Double(peer.logBytes)), ("peer_log_deltas", Double(peer.logDeltas)),
            ("compactions", Double(author.metrics.compactions)), ("peer_adopted", Double(peer.metrics.compactionsAdopted)),
            ("author_db_bytes", Double(dbBytes[0])), ("peer_db_bytes", Double(dbBytes[1])),
            ("rss_start_mib", rss0), ("rss_end_mib", residentMiB()), ("seconds", seconds),
            ("same_state", author.state.stateHash == peer.state.stateHash ? 1 : 0),
        ]
    }

    /// The author's persists go to its store, its pushes to the peer, whose persists go to its store.
    static func carryOut(_ out: [CRDT.Directive], on peer: inout CRDT.Instance, from author: PeerId,
                         stores: [CRDTPersistence], wall: CRDT.WallTime) throws {
        try stores[0].save(out.compactMap { if case .persist(let p) = $0 { p } else { nil } })
        for case .send(let m, _) in out {
            let bytes = m.encoded()
            let reply = peer.onMessage(bytes[...], from: author, now: .zero, wall: wall)
            try stores[1].save(reply.compactMap { if case .persist(let p) = $0 { p } else { nil } })
        }
    }

    /// VmRSS of this process in MiB (0 where there is no procfs).
    static func residentMiB() -> Double { Double(ProcessMemory.current().residentBytes) / 1_048_576 }

    /// The size of a file, 0 if there is none (a WAL checkpointed away).
    static func fileBytes(_ path: String) throws -> Int {
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        return try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
    }
}
