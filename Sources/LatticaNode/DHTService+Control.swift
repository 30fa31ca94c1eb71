import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaDHT

extension DHTService {
    /// The DHT's control methods: `dht.put`, `dht.get`, `dht.provide`, `dht.providers`, `dht.table`.
    func registerMethods(_ ctx: ServiceContext) {
        ctx.method(Methods.DHTPut.self) { [self] p in
            let value: [UInt8]
            if let h = p.valueHex {
                guard let v = Hex.decode(h) else { throw ControlErrorBody.badRequest("'value_hex' is not hex") }
                value = v
            } else { value = Array((p.value ?? "").utf8) }
            let limit = Methods.DHTPut.Params.maxValueBytes
            guard value.count <= limit else { throw ControlErrorBody.badRequest("the value has \(value.count) bytes; at most \(limit)") }
            let key = Array(p.key.utf8), quorum = p.quorum ?? 1
            let t0 = ContinuousClock.now
            let stored: Int = try await ctx.onLoop { done in
                let wire = self.encodeValue(key: key, value: value)
                self.query({ $0.putValue(key, value: wire, quorum: quorum, now: $1) }) { r, _ in
                    guard case .putValue(let x) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    done(x.mapError { SwarmError(Self.describe($0)) })
                }
            }
            return DHTPutResult(key: p.key, storedOn: stored, quorum: quorum, ms: (ContinuousClock.now - t0).secondsDouble * 1000)
        }
        ctx.method(Methods.DHTGet.self) { [self] p in
            let key = Array(p.key.utf8), quorum = p.quorum ?? 1
            let t0 = ContinuousClock.now
            let (value, encoding, copies): ([UInt8], String, Int) = try await ctx.onLoop { done in
                self.query({ $0.getValue(key, quorum: quorum, now: $1) }) { [weak self] r, _ in
                    guard let self, case .getValue(let x) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    switch x {
                    case .success(let f):
                        let (v, e) = self.decodeValue(key: key, f.record.value)
                        done(.success((v, e, f.copies)))
                    case .failure(let e): done(.failure(SwarmError(Self.describe(e))))
                    }
                }
            }
            return DHTGetResult(key: p.key, value: String(validating: value, as: UTF8.self), valueHex: Hex.encode(value),
                                encoding: encoding, copies: copies, ms: (ContinuousClock.now - t0).secondsDouble * 1000)
        }
        ctx.method(Methods.DHTProvide.self) { [self] p in
            let key = Array(p.key.utf8)
            let told: Int = try await ctx.onLoop { done in
                let addrs = self.swarm.listenAddrs.map(\.bytes)
                self.query({ $0.provide(key, addresses: addrs, now: $1) }) { r, _ in
                    guard case .addProvider(let x) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    done(x.mapError { SwarmError(Self.describe($0)) })
                }
            }
            return DHTProvideResult(key: p.key, told: told)
        }
        ctx.method(Methods.DHTProviders.self) { [self] p in
            let key = Array(p.key.utf8)
            let providers: [DHTPeer] = try await ctx.onLoop { done in
                self.query({ $0.getProviders(key, now: $1) }) { r, _ in
                    guard case .getProviders(let ps, _) = r else { done(.failure(SwarmError("unexpected result"))); return }
                    done(.success(ps.map { DHTPeer(peerId: $0.id.description, addrs: $0.addresses.compactMap { try? Multiaddr(bytes: $0).description }) }))
                }
            }
            return DHTProvidersResult(key: p.key, providers: providers)
        }
        ctx.method(Methods.DHTTable.self) { [self] _ in
            try await ctx.onLoop { done in
                done(.success(self.table()))
            }
        }
    }

    /// Loop thread.
    func table() -> DHTTableResult {
        let now = loop.now
        var byBucket: [Int: [DHTTableResult.BucketPeer]] = [:]
        for e in dht.routingTable.allEntries {
            let idx = dht.routingTable.bucketIndex(of: e.key) ?? 0
            byBucket[idx, default: []].append(DHTTableResult.BucketPeer(
                peerId: e.peer.description, ageSeconds: (now - e.lastSeen).secondsDouble, connected: swarm.connection(to: e.peer) != nil))
        }
        return DHTTableResult(protocolId: protocolID, mode: dht.settings.mode == .server ? "server" : "client",
                              size: dht.routingTable.count,
                              buckets: byBucket.keys.sorted().map { DHTTableResult.Bucket(index: $0, peers: byBucket[$0]!) })
    }

    /// Values under `/lattica/…` are signed records of ours; in Lattica mode other values are
    /// wrapped as Lattica does (bincode ValueWithTime around a pickle of the bytes).
    func encodeValue(key: [UInt8], value: [UInt8]) -> [UInt8] {
        if key.starts(with: Array("/lattica/".utf8)) {
            let seq = UInt64(max(0, wallClockSeconds() * 1000))
            return DHT.SignedValue.make(key: key, payload: value, seq: seq, author: identity.publicKey.bytes,
                                        sign: { identity.sign($0) }).encoded()
        }
        if protocolID == "/lattica/1.0.0" {
            return DHT.LatticaValue.encode(value: value, expirationTime: wallClockSeconds() + dht.settings.recordTTL.secondsDouble)
        }
        return value
    }

    func decodeValue(key: [UInt8], _ v: [UInt8]) -> ([UInt8], String) {
        if key.starts(with: Array("/lattica/".utf8)), let s = DHT.SignedValue.decode(v[...]) { return (s.payload, "signed") }
        if protocolID == "/lattica/1.0.0", let (payload, _) = DHT.LatticaValue.decode(v) {
            switch payload {
            case .bytes(let b): return (b, "lattica")
            case .text(let t): return (t, "lattica-str")
            case .raw(let r): return (r, "lattica-raw")
            }
        }
        return (v, "raw")
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

extension Daemon {
    /// Runs `body` with the DHT service on the loop thread (tests and benchmarks).
    func onDHT<T: Sendable>(_ body: @escaping @Sendable (DHTService, @escaping (Result<T, SwarmError>) -> Void) -> Void) async throws -> T {
        try await onLoop { [self] _, done in
            guard let dht else { done(.failure(SwarmError("the DHT is not running"))); return }
            body(dht, done)
        }
    }

    /// Loop thread: the value as the DHT service would store it (signed, or Lattica-wrapped).
    func encodeValue(key: [UInt8], value: [UInt8], dht: DHTService) -> [UInt8] { dht.encodeValue(key: key, value: value) }
}
