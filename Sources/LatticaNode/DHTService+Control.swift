import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaDHT

extension Daemon {
    /// Control API methods backed by the DHT.
    func registerDHTMethods(_ d: inout ControlDispatcher) {
        d.register("dht.put") { [weak self] p in
            guard let self else { throw Self.stopping }
            let key = try Self.param(p, "key")
            let value: [UInt8]
            if let h = p?["value_hex"]?.stringValue {
                guard let v = Self.unhex(h) else { throw ControlErrorBody(code: "bad_request", message: "value_hex is not hex") }
                value = v
            } else { value = Array(try Self.param(p, "value").utf8) }
            guard value.count <= 65_000 else { throw ControlErrorBody(code: "bad_request", message: "value has \(value.count) bytes; at most 65000") }
            let quorum = max(1, min(20, Int(p?["quorum"]?.doubleValue ?? 1)))
            let t0 = ContinuousClock.now
            let stored: Int = try await self.onDHT { dht, done in
                let wire = self.encodeValue(key: Array(key.utf8), value: value, dht: dht)
                dht.query({ $0.putValue(Array(key.utf8), value: wire, quorum: quorum, now: $1) }) { r, _ in
                    guard case .putValue(let x) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    switch x {
                    case .success(let n): done(.success(n))
                    case .failure(let e): done(.failure(SwarmError(Self.describe(e))))
                    }
                }
            }
            return DHTPutResult(key: key, stored_on: stored, quorum: quorum, ms: (ContinuousClock.now - t0).secondsDouble * 1000)
        }
        d.register("dht.get") { [weak self] p in
            guard let self else { throw Self.stopping }
            let key = try Self.param(p, "key")
            let quorum = max(1, min(20, Int(p?["quorum"]?.doubleValue ?? 1)))
            let t0 = ContinuousClock.now
            let found: DHT.FoundRecord = try await self.onDHT { dht, done in
                dht.query({ $0.getValue(Array(key.utf8), quorum: quorum, now: $1) }) { r, _ in
                    guard case .getValue(let x) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    switch x {
                    case .success(let f): done(.success(f))
                    case .failure(let e): done(.failure(SwarmError(Self.describe(e))))
                    }
                }
            }
            let (value, encoding) = self.decodeValue(key: Array(key.utf8), found.record.value)
            return DHTGetResult(key: key, value: String(validating: value, as: UTF8.self), value_hex: Self.hex(value),
                                encoding: encoding, copies: found.copies, ms: (ContinuousClock.now - t0).secondsDouble * 1000)
        }
        d.register("dht.provide") { [weak self] p in
            guard let self else { throw Self.stopping }
            let key = try Self.param(p, "key")
            let told: Int = try await self.onDHT { dht, done in
                let addrs = dht.swarm.listenAddrs.map(\.bytes)
                dht.query({ $0.provide(Array(key.utf8), addresses: addrs, now: $1) }) { r, _ in
                    guard case .addProvider(let x) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    switch x {
                    case .success(let n): done(.success(n))
                    case .failure(let e): done(.failure(SwarmError(Self.describe(e))))
                    }
                }
            }
            return DHTProvideResult(key: key, told: told)
        }
        d.register("dht.providers") { [weak self] p in
            guard let self else { throw Self.stopping }
            let key = try Self.param(p, "key")
            let providers: [DHTPeer] = try await self.onDHT { dht, done in
                dht.query({ $0.getProviders(Array(key.utf8), now: $1) }) { r, _ in
                    guard case .getProviders(let ps, _) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    done(.success(ps.map { DHTPeer(peer_id: $0.id.description, addrs: $0.addresses.compactMap { try? Multiaddr(bytes: $0).description }) }))
                }
            }
            return DHTProvidersResult(key: key, providers: providers)
        }
        d.register("dht.table") { [weak self] _ in
            guard let self else { throw Self.stopping }
            return try await self.loop.submit { _ in self.dhtTable() }
        }
    }

    /// Loop thread.
    func dhtTable() -> DHTTableResult {
        guard let dht, let swarm else { return DHTTableResult(protocol_id: "", mode: "off", size: 0, buckets: []) }
        let now = loop.now
        var byBucket: [Int: [DHTTableResult.BucketPeer]] = [:]
        for e in dht.dht.routingTable.allEntries {
            let idx = dht.dht.routingTable.bucketIndex(of: e.key) ?? 0
            byBucket[idx, default: []].append(DHTTableResult.BucketPeer(
                peer_id: e.peer.description, age_s: (now - e.lastSeen).secondsDouble, connected: swarm.connection(to: e.peer) != nil))
        }
        return DHTTableResult(protocol_id: dht.protocolID, mode: dht.dht.settings.mode == .server ? "server" : "client",
                              size: dht.dht.routingTable.count,
                              buckets: byBucket.keys.sorted().map { DHTTableResult.Bucket(index: $0, peers: byBucket[$0]!) })
    }

    /// Values under `/lattica/…` are signed records of ours; in Lattica mode other values are
    /// wrapped as Lattica does (bincode ValueWithTime around a pickle of the bytes).
    func encodeValue(key: [UInt8], value: [UInt8], dht: DHTService) -> [UInt8] {
        if key.starts(with: Array("/lattica/".utf8)) {
            let seq = UInt64(max(0, wallClockSeconds() * 1000))
            return DHT.SignedValue.make(key: key, payload: value, seq: seq, author: identity.publicKey.bytes,
                                        sign: { identity.sign($0) }).encoded()
        }
        if dht.protocolID == "/lattica/1.0.0" {
            return DHT.LatticaValue.encode(value: value, expirationTime: wallClockSeconds() + dht.dht.settings.recordTTL.secondsDouble)
        }
        return value
    }

    func decodeValue(key: [UInt8], _ v: [UInt8]) -> ([UInt8], String) {
        if key.starts(with: Array("/lattica/".utf8)), let s = DHT.SignedValue.decode(v[...]) { return (s.payload, "signed") }
        if dht?.protocolID == "/lattica/1.0.0", let (payload, _) = DHT.LatticaValue.decode(v) {
            switch payload {
            case .bytes(let b): return (b, "lattica")
            case .text(let t): return (t, "lattica-str")
            case .raw(let r): return (r, "lattica-raw")
            }
        }
        return (v, "raw")
    }

    func onDHT<T: Sendable>(_ body: @escaping @Sendable (DHTService, @escaping (Result<T, SwarmError>) -> Void) -> Void) async throws -> T {
        try await onLoop { [self] _, done in
            guard let dht else { done(.failure(SwarmError("the DHT is not running"))); return }
            body(dht, done)
        }
    }

    static func param(_ p: JSONValue?, _ name: String) throws -> String {
        guard let v = p?[name]?.stringValue, !v.isEmpty else { throw ControlErrorBody(code: "bad_request", message: "missing parameter '\(name)'") }
        return v
    }

    static func hex(_ b: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count * 2)
        for x in b { out.append(digits[Int(x >> 4)]); out.append(digits[Int(x & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let b = UInt8(String(decoding: u[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
        }
        return out
    }

    static func describe(_ e: DHT.QueryError) -> String {
        switch e {
        case .quorumFailed(let s, let q): "stored on \(s) of the \(q) peers required"
        case .notFound(let f, let q): f == 0 ? "not found" : "found \(f) valid copies, \(q) required"
        case .timeout: "the query timed out"
        case .noPeers: "no DHT peers known yet (is a bootstrap peer reachable?)"
        }
    }
}
