import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaDHT

@Suite struct InstanceTests {
    struct Fixture {
        var rng = SeededRandom(seed: 41)
        var node: DHT.Instance
        var others: [PeerId] = []
        var finished: [DHT.QueryID: DHT.QueryResult] = [:]
        var misbehaved: [(PeerId, DHT.Misbehavior)] = []
        var responses: [DHT.Message] = []
        var resets = 0
        var events: [DHT.BootstrapEvent] = []
        var timers: [(DHT.TimerID, Instant)] = []
        /// The store as the shell would persist it: every `.persist` change, applied in order.
        var persisted = DHT.MemoryRecordStore(localPeer: PeerId(ed25519PublicKey: [UInt8](repeating: 0, count: 32)))

        init(peers: Int, settings: DHT.Settings = .init(), verify: DHT.VerifyEd25519? = nil) {
            var r = SeededRandom(seed: 40)
            node = DHT.Instance(localPeer: KadSim.makePeer(&r), settings: settings, validator: DHT.Validator(verify: verify), seed: 1)
            for _ in 0..<peers {
                let p = KadSim.makePeer(&r)
                others.append(p)
                _ = node.onPeerConnected(p, addresses: [[4, 10, 0, 0, 1]], isServer: true, now: .zero)
            }
            rng = r
        }

        mutating func absorb(_ ds: [DHT.Directive]) -> [(DHT.Message, PeerId, DHT.RequestID, Bool)] {
            var sends: [(DHT.Message, PeerId, DHT.RequestID, Bool)] = []
            for d in ds {
                switch d {
                case .send(let m, let p, _, let id, let e): sends.append((m, p, id, e))
                case .queryFinished(let q, let r, _): finished[q] = r
                case .peerMisbehaved(let p, let why): misbehaved.append((p, why))
                case .respond(let m, _, _): responses.append(m)
                case .resetInbound: resets += 1
                case .bootstrap(let e): events.append(e)
                case .scheduleTimer(let t, let at): timers.append((t, at))
                case .routingTableUpdated: break
                case .persist(.putRecord(let r)): _ = persisted.put(r, now: .zero)
                case .persist(.putProvider(let p)): _ = persisted.addProvider(p, now: .zero)
                case .persist(.removeExpired(let now)): _ = persisted.removeExpired(now: now)
                }
            }
            return sends
        }

        /// Answers every request with `answer` (nil = the request fails) until nothing is pending.
        mutating func run(_ ds: [DHT.Directive], now: Instant = .zero, answer: (DHT.Message, PeerId) -> DHT.Message?) {
            var queue = absorb(ds)
            while !queue.isEmpty {
                let (m, p, id, expects) = queue.removeFirst()
                let out: [DHT.Directive]
                if !expects { out = node.onRequestDelivered(id, now: now) }
                else if let reply = answer(m, p) { out = node.onResponse(reply.encoded()[...], request: id, now: now) }
                else { out = node.onRequestFailed(id, now: now) }
                queue += absorb(out)
            }
        }

        mutating func inbound(_ m: DHT.Message, from p: PeerId, now: Instant = .zero) {
            _ = absorb(node.onRequest(m.encoded()[...], from: p, inbound: DHT.InboundID(1), now: now))
        }
    }

    @Test func findNode_answersWithCloserPeers_excludingTheRequesterAndItself() {
        var f = Fixture(peers: 50)
        let requester = f.others[3]
        f.inbound(DHT.Message(type: .findNode, key: requester.multihash), from: requester)
        let reply = try! #require(f.responses.first)
        #expect(reply.type == .findNode)
        #expect(reply.closerPeers.count == 20)
        #expect(!reply.closerPeers.contains { $0.id == requester || $0.id == f.node.localPeer })
        let target = DHT.Key(peer: requester)
        let want = f.others.filter { $0 != requester }.sorted { DHT.Key(peer: $0).distance(to: target) < DHT.Key(peer: $1).distance(to: target) }.prefix(20)
        #expect(reply.closerPeers.map(\.id) == Array(want))
        #expect(reply.closerPeers[0].addrs == [[4, 10, 0, 0, 1]])
    }

    @Test func putThenGet_storesAndReturnsTheRecordWithCloserPeers() {
        var f = Fixture(peers: 30)
        let key = Array("k1".utf8)
        f.inbound(DHT.Message(type: .putValue, key: key, record: DHT.Record(key: key, value: [1, 2])), from: f.others[0])
        #expect(f.responses.last?.record?.value == [1, 2])  // echoed
        f.inbound(DHT.Message(type: .getValue, key: key), from: f.others[1])
        #expect(f.responses.last?.record == DHT.Record(key: key, value: [1, 2]))
        #expect(f.responses.last?.closerPeers.count == 20)
        #expect(f.node.metrics.recordsStored == 1)
    }

    @Test func badSignatureRecord_isRejected_counted_andNeverStored() throws {
        let verify: DHT.VerifyEd25519 = { pk, msg, sig in (try? Ed25519PublicKey(bytes: pk))?.isValidSignature(sig, for: msg) ?? false }
        var f = Fixture(peers: 5, verify: verify)
        let sk = try Ed25519PrivateKey(seed: Array(repeating: 1, count: 32))
        let key = Array("/lattica/x".utf8)
        var sv = DHT.SignedValue.make(key: key, payload: [1], seq: 1, author: sk.publicKey.bytes, sign: { sk.sign($0) })
        sv.seq = 5  // tampered after signing
        f.inbound(DHT.Message(type: .putValue, key: key, record: DHT.Record(key: key, value: sv.encoded())), from: f.others[0])
        #expect(f.resets == 1)
        #expect(f.responses.isEmpty)
        #expect(f.node.store.get(key, now: .zero) == nil)
        #expect(f.node.metrics.recordsRejected == 1)
        #expect(f.misbehaved.contains { $0.0 == f.others[0] && $0.1 == .invalidRecord(.invalid("bad signature")) })
        // The genuine one is accepted; an older seq afterwards is refused without storing.
        let good = DHT.SignedValue.make(key: key, payload: [2], seq: 2, author: sk.publicKey.bytes, sign: { sk.sign($0) })
        f.inbound(DHT.Message(type: .putValue, key: key, record: DHT.Record(key: key, value: good.encoded())), from: f.others[1])
        #expect(f.node.store.get(key, now: .zero)?.record.value == good.encoded())
        let old = DHT.SignedValue.make(key: key, payload: [1], seq: 1, author: sk.publicKey.bytes, sign: { sk.sign($0) })
        f.inbound(DHT.Message(type: .putValue, key: key, record: DHT.Record(key: key, value: old.encoded())), from: f.others[2])
        #expect(f.node.store.get(key, now: .zero)?.record.value == good.encoded())
        // What the instance stored, and only that, went to the shell to persist.
        #expect(f.persisted.get(key, now: .zero)?.record.value == good.encoded())
        #expect(f.persisted.recordCount == f.node.store.recordCount)
    }

    @Test func floodOfPutsFromOnePeer_isCappedByRateAndPerPeerLimits() {
        var f = Fixture(peers: 5)
        let flooder = f.others[0]
        // 500 PUTs in one instant: only the burst passes.
        for i in 0..<500 {
            let key = Array("flood-\(i)".utf8)
            f.inbound(DHT.Message(type: .putValue, key: key, record: DHT.Record(key: key, value: [UInt8](repeating: 1, count: 100))), from: flooder)
        }
        #expect(f.node.store.recordCount == 20)
        #expect(f.node.metrics.rateLimited == 480)
        // A slow flood (one per second for 10 minutes) hits the per-peer record limit.
        for i in 0..<600 {
            let key = Array("slow-\(i)".utf8)
            f.inbound(DHT.Message(type: .putValue, key: key, record: DHT.Record(key: key, value: [1])), from: flooder, now: Instant(nanoseconds: Int64(i + 1) * 1_000_000_000))
        }
        #expect(f.node.store.recordCount == DHT.StoreLimits().maxRecordsPerPeer)
        #expect(f.node.metrics.recordsStored == DHT.StoreLimits().maxRecordsPerPeer)
        #expect(f.node.metrics.recordsRejected == 1100 - DHT.StoreLimits().maxRecordsPerPeer)
        // Another peer is unaffected.
        let key = Array("honest".utf8)
        f.inbound(DHT.Message(type: .putValue, key: key, record: DHT.Record(key: key, value: [1])), from: f.others[1], now: Instant(nanoseconds: 700_000_000_000))
        #expect(f.node.store.get(key, now: Instant(nanoseconds: 700_000_000_000)) != nil)
    }

    @Test func malformedAndOversizedRequests_resetTheStream_andAreCounted() {
        var f = Fixture(peers: 3)
        var rng = SeededRandom(seed: 42)
        var resets = 0
        for i in 0..<2000 {
            let n = i % 100 == 0 ? 17_000 : Int(rng.next() % 64)
            let junk = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let before = f.resets + f.responses.count
            _ = f.absorb(f.node.onRequest(junk[...], from: f.others[0], inbound: DHT.InboundID(UInt64(i)), now: .zero))
            #expect(f.resets + f.responses.count <= before + 1)
            resets = f.resets
        }
        #expect(resets > 0)
        #expect(f.node.metrics.oversizedMessages == 20)
        #expect(f.node.metrics.malformedMessages + f.node.metrics.oversizedMessages + f.node.metrics.rateLimited + f.node.metrics.invalidRecordsReceived >= 20)
        #expect(f.node.routingTable.count == 3)
    }

    @Test func clientMode_doesNotAnswer() {
        var s = DHT.Settings(); s.mode = .client
        var f = Fixture(peers: 3, settings: s)
        f.inbound(DHT.Message(type: .findNode, key: [1]), from: f.others[0])
        #expect(f.resets == 1)
        #expect(f.responses.isEmpty)
    }

    @Test func putValue_reportsQuorumFailedWithThePartialCount() {
        var f = Fixture(peers: 10)
        let (q, out) = f.node.putValue(Array("v".utf8), value: [9], quorum: 10, now: .zero)
        var putsSeen = 0
        f.run(out) { m, p in
            switch m.type {
            case .findNode: return DHT.Message(type: .findNode)
            case .putValue:
                putsSeen += 1
                return putsSeen <= 7 ? m : nil  // 3 of the 10 fail
            default: return nil
            }
        }
        #expect(putsSeen == 10)
        #expect(f.finished[q] == .putValue(.failure(.quorumFailed(success: 7, quorum: 10))))
        let (q2, out2) = f.node.putValue(Array("w".utf8), value: [9], quorum: 7, now: .zero)
        f.run(out2) { m, _ in m.type == .findNode ? DHT.Message(type: .findNode) : m }
        #expect(f.finished[q2] == .putValue(.success(10)))
    }

    @Test func responses_thatNameTheResponderOrGarbage_areReportedAndIgnored() {
        var f = Fixture(peers: 4)
        let (q, out) = f.node.findNode(Array("t".utf8), now: .zero)
        var w = ProtobufWriter()
        w.uint64(1, 4)
        var bad = ProtobufWriter(); bad.bytes(1, [0xDE, 0xAD]); w.message(8, bad)
        let garbage = w.bytes
        let others = f.others
        f.run(out) { m, p in
            if p == others[0] { return DHT.Message(type: .findNode, closerPeers: [DHT.Peer(id: p)]) }
            if p == others[1] { return DHT.Message(type: .getValue) }  // wrong type
            return nil
        }
        // Garbage bytes from a third peer through the byte path.
        var f2 = Fixture(peers: 1)
        let (_, out2) = f2.node.findNode([1], now: .zero)
        let sends = f2.absorb(out2)
        _ = f2.absorb(f2.node.onResponse(garbage[...], request: sends[0].2, now: .zero))
        #expect(f2.misbehaved.contains { $0.1 == .garbageCloserPeers(1) })
        #expect(f.misbehaved.contains { $0.0 == f.others[0] && $0.1 == .returnedItselfAsCloser })
        #expect(f.misbehaved.contains { $0.0 == f.others[1] && $0.1 == .unexpectedResponseType })
        guard case .closestPeers(let peers)? = f.finished[q] else { Issue.record("no result"); return }
        #expect(peers == [f.others[0]])  // only the one that answered correctly (its self-reference ignored)
    }

    @Test func bootstrap_withNobodyReachable_emitsAClearEvent_andBacksOffExponentially() {
        var s = DHT.Settings()
        var r = SeededRandom(seed: 43)
        s.bootstrapPeers = [DHT.PeerInfo(id: KadSim.makePeer(&r), addresses: [[4, 1, 2, 3, 4]])]
        var f = Fixture(peers: 0, settings: s)
        var now = Instant.zero
        var retries: [Instant] = []
        var out = f.node.onStart(now: now)
        for _ in 0..<6 {
            f.run(out, now: now) { _, _ in nil }  // the bootstrap peer never answers
            guard case .noBootstrapPeerReachable(let attempt, let at)? = f.events.last else { Issue.record("no event"); return }
            #expect(attempt == retries.count + 1)
            retries.append(at)
            now = at
            out = f.node.onTimer(.bootstrapRetry, now: now)
        }
        // Delays double (with up to 20% jitter): 1, 2, 4, 8, 16 s ...
        var prev = Instant.zero
        for (i, at) in retries.enumerated() {
            let d = (at - prev).secondsDouble
            let base = Double(1 << i)
            #expect(d >= base && d <= base * 1.2 + 1e-9)
            prev = at
        }
        #expect(f.node.metrics.bootstrapFailures == 6)
    }
}
