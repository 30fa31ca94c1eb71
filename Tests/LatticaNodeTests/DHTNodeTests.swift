import Foundation
import LatticaCore
import LatticaDHT
import LatticaStore
import Testing
@testable import LatticaNode

/// The DHT over real sockets: daemons in this process on loopback.
@Suite(.serialized) struct DHTNodeTests {
    func start(_ n: Int, _ tmp: TempDir) async throws -> [Daemon] {
        var nodes: [Daemon] = []
        for i in 0..<n {
            var c = NodeConfig(dataDir: tmp.path + "/n\(i)")
            c.metricsAddr = nil
            if let first = nodes.first { c.bootstrap = [first.listenAddrs[0].description] }
            nodes.append(try await Daemon.start(config: c))
        }
        return nodes
    }

    func findNode(_ d: Daemon, _ key: [UInt8]) async throws -> [PeerId] {
        try await d.onDHT { dht, done in
            dht.query({ $0.findNode(key, now: $1) }) { r, _ in
                if case .closestPeers(let ps) = r { done(.success(ps)) } else { done(.failure(SwarmError("unexpected"))) }
            }
        }
    }

    /// Waits until every node's bootstrap finished (its first FIND_NODE of itself).
    func bootstrapped(_ nodes: [Daemon]) async throws {
        for d in nodes.dropFirst() {
            for _ in 0..<200 {
                let ev = try await d.loop.submit { _ in d.dht?.lastBootstrap }
                if case .bootstrapped = ev { break }
                _ = try? await findNode(d, d.peerId.multihash)
            }
        }
    }

    @Test func twentyNodes_findEachOther_andAPutIsReadableEverywhere() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let nodes = try await start(20, tmp)
        defer { Task { for d in nodes { await d.stop() } } }
        try await bootstrapped(nodes)
        let all = Set(nodes.map(\.peerId))
        // Every node sees every other through lookups (k = 20 ≥ 19 others).
        for d in nodes {
            var seen = Set<PeerId>()
            for other in nodes where other.peerId != d.peerId {
                seen.formUnion(try await findNode(d, other.peerId.multihash))
                if seen == all.subtracting([d.peerId]) { break }
            }
            #expect(seen == all.subtracting([d.peerId]), "node \(d.peerId) saw \(seen.count) of 19")
        }
        // Put on one node, get on every other.
        let key = Array("/lattica/test/record".utf8)
        let stored: Int = try await nodes[3].onDHT { dht, done in
            let v = nodes[3].encodeValue(key: key, value: Array("payload-1".utf8), dht: dht)
            dht.query({ $0.putValue(key, value: v, quorum: 3, now: $1) }) { r, _ in
                if case .putValue(.success(let n)) = r { done(.success(n)) } else { done(.failure(SwarmError("\(r)"))) }
            }
        }
        #expect(stored >= 3)
        for d in nodes where d !== nodes[3] {
            let (value, enc): ([UInt8], String) = try await d.onDHT { dht, done in
                dht.query({ $0.getValue(key, now: $1) }) { r, _ in
                    if case .getValue(.success(let f)) = r { done(.success(dht.decodeValue(key: key, f.record.value))) } else { done(.failure(SwarmError("\(r)"))) }
                }
            }
            #expect(value == Array("payload-1".utf8) && enc == "signed")
        }
        for d in nodes { await d.stop() }
    }

    @Test func aForgedSignedRecord_isRejected_andNeverStored() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let nodes = try await start(3, tmp)
        try await bootstrapped(nodes)
        let key = Array("/lattica/test/forged".utf8)
        // A value signed by node 1's key but claiming to be another payload: flip a payload byte.
        var forged = DHT.SignedValue.make(key: key, payload: Array("honest".utf8), seq: 1, author: nodes[1].identity.publicKey.bytes,
                                          sign: { nodes[1].identity.sign($0) })
        forged.payload = Array("forged".utf8)
        let encoded = forged.encoded()
        let r: DHT.QueryResult = try await nodes[1].onDHT { dht, done in
            dht.query({ $0.putValue(key, value: encoded, quorum: 1, now: $1) }) { r, _ in done(.success(r)) }
        }
        if case .putValue(.success(let n)) = r { Issue.record("forged record stored on \(n) peers") }
        for d in nodes {
            let n = try await d.loop.submit { _ in d.dht!.dht.store.get(key, now: d.loop.now) }
            #expect(n == nil)
        }
        for d in nodes { await d.stop() }
    }
}

@Suite struct DHTRecordPersistenceTests {
    @Test func records_andProviders_surviveARestart_andExpiredOnesDoNot() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let me = PeerId(ed25519PublicKey: [UInt8](repeating: 1, count: 32))
        let other = PeerId(ed25519PublicKey: [UInt8](repeating: 2, count: 32))
        let t0 = Instant(nanoseconds: 5_000_000_000)
        do {
            let db = try NodeDatabase.open(path: tmp.path + "/db.sqlite3")
            let p = DHTRecordPersistence(db: db, now: t0)
            try p.apply(.putRecord(DHT.StoredRecord(record: DHT.Record(key: [1], value: [9, 9]), storedBy: other, expires: t0 + .seconds(3600), isLocal: false)))
            try p.apply(.putRecord(DHT.StoredRecord(record: DHT.Record(key: [2], value: [7]), storedBy: me, expires: t0 + .seconds(3600), isLocal: true)))
            try p.apply(.putRecord(DHT.StoredRecord(record: DHT.Record(key: [3], value: [5]), storedBy: other, expires: t0 + .milliseconds(1), isLocal: false)))
            try p.apply(.putProvider(DHT.ProviderRecord(key: [4], provider: DHT.PeerInfo(id: other, addresses: [[4, 127, 0, 0, 1]]), expires: t0 + .seconds(60), isLocal: false)))
            // Over the per-value limit: written by a (buggy) writer, but never loaded.
            try p.apply(.putRecord(DHT.StoredRecord(record: DHT.Record(key: [5], value: [UInt8](repeating: 0, count: 70_000)), storedBy: other, expires: t0 + .seconds(60), isLocal: false)))
        }
        // "Restart": a new store over the same file, with a different monotonic clock origin.
        let t1 = Instant(nanoseconds: 1_000_000)
        let db = try NodeDatabase.open(path: tmp.path + "/db.sqlite3")
        let s = try DHTRecordPersistence(db: db, now: t1).load(localPeer: me, now: t1)
        #expect(s.get([1], now: t1)?.record.value == [9, 9])
        #expect(s.get([1], now: t1)?.storedBy == other)
        #expect(s.localRecords().map(\.record.key) == [[2]])
        #expect(s.get([3], now: t1) == nil, "expired while down")
        #expect(s.get([5], now: t1) == nil)
        #expect(s.providers(for: [4], now: t1).map(\.provider.id) == [other])
        #expect(s.providers(for: [4], now: t1).first?.provider.addresses == [[4, 127, 0, 0, 1]])
    }

    @Test func aFailedWrite_throws_insteadOfBeingSwallowed() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let db = try NodeDatabase.open(path: tmp.path + "/db.sqlite3")
        try db.execute("DROP TABLE dht_records")
        let p = DHTRecordPersistence(db: db, now: .zero)
        let me = PeerId(ed25519PublicKey: [UInt8](repeating: 1, count: 32))
        #expect(throws: StoreError.self) {
            try p.apply(.putRecord(DHT.StoredRecord(record: DHT.Record(key: [1], value: [1]), storedBy: me, expires: .zero + .seconds(9), isLocal: true)))
        }
    }
}
