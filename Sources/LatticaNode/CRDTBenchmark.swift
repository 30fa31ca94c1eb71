import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaCRDT
import LatticaCrypto
import LatticaStore

/// The CRDT store benchmark behind `lattica-bench crdt` (Scripts/bench/crdt.sh puts pycrdt beside
/// it). Every figure is deltas per second or seconds, the median of `runs`.
///
/// - `remote_*`: signed batches from a peer (decode, verify one signature per batch, check
///   clocks and namespace rules, apply), with or without their SQLite commit (one transaction
///   per batch: the batch row and the touched entries): what a receiving node does.
/// - `local_*`: local writes (apply, sign one batch per call, commit): what `meta set` does,
///   without the control socket. `unsigned` uses a no-op signer: the row that separates the
///   signature's cost from the store's.
/// - `catch_up_s`: a fresh daemon joins a daemon that holds `catchUp` deltas; from its start to
///   the moment it holds all of them, over loopback TCP with Noise and yamux.
public enum CRDTBenchmark {
    public static func run(deltas n: Int, batchSize: Int, catchUp: Int, runs: Int) async throws -> [(String, Double)] {
        let dir = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/lattica-crdt-bench-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wall = CRDT.WallTime(milliseconds: UInt64(wallClockSeconds() * 1000))
        let author = CRDT.Signer(key: .generate())
        let messages = CRDT.Benchmark.signedMessages(count: n, batchSize: batchSize, batchesPerMessage: max(1, 1000 / batchSize),
                                                     signer: author, wall: wall)
        var out: [(String, Double)] = []
        var remoteMem: [Double] = [], remoteDB: [Double] = [], localDB: [Double] = [], localMem: [Double] = [], unsigned: [Double] = []
        for r in 0..<runs {
            remoteMem.append(try remote(messages, n: n, db: nil, wall: wall))
            let db = try NodeDatabase.open(path: dir + "/remote\(r).sqlite3")
            remoteDB.append(try remote(messages, n: n, db: db, wall: wall))
            localMem.append(try local(n: n, batchSize: batchSize, signer: CRDT.Signer(key: .generate()), db: nil, wall: wall))
            let db2 = try NodeDatabase.open(path: dir + "/local\(r).sqlite3")
            localDB.append(try local(n: n, batchSize: batchSize, signer: CRDT.Signer(key: .generate()), db: db2, wall: wall))
            let noop = CRDT.Signer(publicKey: [UInt8](repeating: 7, count: 32)) { _ in [UInt8](repeating: 0, count: 64) }
            unsigned.append(try local(n: n, batchSize: batchSize, signer: noop, db: nil, wall: wall))
        }
        out.append(("remote_signed_persisted_deltas_per_s", median(remoteDB)))
        out.append(("remote_signed_in_memory_deltas_per_s", median(remoteMem)))
        out.append(("local_signed_persisted_deltas_per_s", median(localDB)))
        out.append(("local_signed_in_memory_deltas_per_s", median(localMem)))
        out.append(("local_unsigned_in_memory_deltas_per_s", median(unsigned)))
        if catchUp > 0 {
            var t: [Double] = []
            for r in 0..<runs { t.append(try await catchUpSeconds(catchUp, dir: dir + "/catchup\(r)")) }
            out.append(("catch_up_s", median(t)))
        }
        return out
    }

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }

    /// Deltas per second applying `messages` (and committing each batch when `db` is given).
    static func remote(_ messages: [[UInt8]], n: Int, db: Database?, wall: CRDT.WallTime) throws -> Double {
        var node = CRDT.Instance(signer: CRDT.Signer(key: .generate()), seed: 1)
        let peer = PeerId(ed25519PublicKey: [UInt8](repeating: 9, count: 32))
        let p = db.map { CRDTPersistence(db: $0) }
        let t0 = ContinuousClock.now
        for m in messages {
            // As the service commits: the batches of one message in one transaction.
            let group = node.onMessage(m[...], from: peer, now: .zero, wall: wall).compactMap { d -> CRDT.Persist? in
                if case .persist(let x) = d { x } else { nil }
            }
            if let p, !group.isEmpty { try p.save(group) }
        }
        let s = (ContinuousClock.now - t0).secondsDouble
        guard node.versions.total == UInt64(n) else { throw SwarmError("applied \(node.versions.total) of \(n)") }
        return Double(n) / s
    }

    /// Deltas per second of local writes in calls of `batchSize` (one signed batch each).
    static func local(n: Int, batchSize: Int, signer: CRDT.Signer, db: Database?, wall: CRDT.WallTime) throws -> Double {
        var settings = CRDT.Settings()
        settings.localBatchSize = batchSize
        var node = CRDT.Instance(signer: signer, settings: settings, seed: 2)
        let p = db.map { CRDTPersistence(db: $0) }
        let writes = (0..<n).map { CRDT.Write.set("kv/bench/\($0 % 10_000)", .int(Int64($0))) }
        let t0 = ContinuousClock.now
        for start in stride(from: 0, to: n, by: batchSize) {
            for d in try node.onLocalWrite(Array(writes[start..<min(n, start + batchSize)]), now: .zero, wall: wall) {
                if case .persist(let x) = d, let p { try p.save(x) }
            }
        }
        let s = (ContinuousClock.now - t0).secondsDouble
        guard node.versions.total == UInt64(n) else { throw SwarmError("wrote \(node.versions.total) of \(n)") }
        return Double(n) / s
    }

    /// Seconds from the start of a fresh daemon until it holds the `n` deltas of its bootstrap peer.
    static func catchUpSeconds(_ n: Int, dir: String) async throws -> Double {
        func config(_ name: String) -> NodeConfig {
            var c = NodeConfig(dataDir: dir + "/" + name)
            c.metricsAddr = nil
            c.logLevel = .error
            return c
        }
        let a = try await Daemon.start(config: config("a"))
        defer { Task { await a.stop() } }
        try await a.loop.submit { _ in
            guard let s = a.service(CRDTService.self) else { throw SwarmError("no CRDT service") }
            for start in stride(from: 0, to: n, by: 500) {
                _ = try s.write((start..<min(n, start + 500)).map { CRDT.Write.set("kv/catchup/\($0 % 10_000)", .int(Int64($0))) })
            }
        }
        var cb = config("b")
        cb.bootstrap = [a.listenAddrs[0].description]
        let t0 = ContinuousClock.now
        let b = try await Daemon.start(config: cb)
        defer { Task { await b.stop() } }
        while try await b.loop.submit({ _ in b.service(CRDTService.self)?.crdt.versions.total ?? 0 }) < UInt64(n) {
            try await b.loop.sleep(for: .milliseconds(1))
            if ContinuousClock.now - t0 > .seconds(120) { throw SwarmError("catch-up did not finish in 120 s") }
        }
        return (ContinuousClock.now - t0).secondsDouble
    }
}
