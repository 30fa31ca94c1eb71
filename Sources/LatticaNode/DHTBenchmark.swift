import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaDHT

/// The DHT benchmark behind `lattica-bench dht`, shaped like Scripts/interop/anchors.py so the
/// numbers sit beside the real Lattica's: node B puts `n` keys (quorum 1), node A gets each, then a
/// late joiner C bootstraps from A and gets each. Daemons in this process on loopback.
public enum DHTBenchmark {
    public static func run(keys n: Int, latticaMode: Bool) async throws -> [(String, Double)] {
        let dir = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/lattica-dht-bench-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func node(_ name: String, bootstrap: Daemon?) async throws -> Daemon {
            var c = NodeConfig(dataDir: dir + "/" + name)
            c.metricsAddr = nil
            c.logLevel = .error
            if latticaMode { c.dhtProtocol = "/lattica/1.0.0" }
            if let b = bootstrap { c.bootstrap = [b.listenAddrs[0].description] }
            return try await Daemon.start(config: c)
        }
        let a = try await node("a", bootstrap: nil)
        let b = try await node("b", bootstrap: a)
        defer { Task { await a.stop(); await b.stop() } }
        try await waitBootstrapped(b)
        let keys = (0..<n).map { Array("bench-key-\($0)".utf8) }
        var puts: [Double] = [], gets: [Double] = [], late: [Double] = []
        for k in keys {
            let t0 = ContinuousClock.now
            _ = try await put(b, k, Array("v-".utf8) + k)
            puts.append((ContinuousClock.now - t0).secondsDouble * 1000)
        }
        for k in keys {
            let t0 = ContinuousClock.now
            let v = try await get(a, k)
            gets.append((ContinuousClock.now - t0).secondsDouble * 1000)
            guard v == Array("v-".utf8) + k else { throw SwarmError("get returned the wrong value") }
        }
        let c = try await node("c", bootstrap: a)
        try await waitBootstrapped(c)
        for k in keys {
            let t0 = ContinuousClock.now
            let v = try await get(c, k)
            late.append((ContinuousClock.now - t0).secondsDouble * 1000)
            guard v == Array("v-".utf8) + k else { throw SwarmError("late get returned the wrong value") }
        }
        await c.stop()
        return [("dht_put_median_ms", WireBenchmark.median(puts)), ("dht_get_median_ms", WireBenchmark.median(gets)),
                ("dht_get_late_joiner_median_ms", WireBenchmark.median(late)), ("dht_get_late_joiner_first_ms", late.first ?? .nan)]
    }

    static func waitBootstrapped(_ d: Daemon) async throws {
        for _ in 0..<500 {
            if case .bootstrapped = try await d.loop.submit({ _ in d.dht?.lastBootstrap }) { return }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw SwarmError("node did not bootstrap")
    }

    static func put(_ d: Daemon, _ key: [UInt8], _ value: [UInt8]) async throws -> Int {
        try await d.onDHT { dht, done in
            let v = d.encodeValue(key: key, value: value, dht: dht)
            dht.query({ $0.putValue(key, value: v, quorum: 1, now: $1) }) { r, _ in
                if case .putValue(.success(let n)) = r { done(.success(n)) } else { done(.failure(SwarmError("put: \(r)"))) }
            }
        }
    }

    static func get(_ d: Daemon, _ key: [UInt8]) async throws -> [UInt8] {
        try await d.onDHT { dht, done in
            dht.query({ $0.getValue(key, now: $1) }) { r, _ in
                if case .getValue(.success(let f)) = r { done(.success(dht.decodeValue(key: key, f.record.value).0)) }
                else { done(.failure(SwarmError("get: \(r)"))) }
            }
        }
    }
}
