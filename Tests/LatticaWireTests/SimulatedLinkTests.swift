import LatticaCore
import LatticaCrypto
import LatticaSimulation
import Testing
@testable import LatticaWire

/// A `Connection.Instance` as a simulator process: node 0 dials node 1 and streams `total` bytes.
struct WireNode: SimProcess {
    typealias Message = [UInt8]
    var conn: Connection.Instance
    let peer: SimNodeID
    let total: Int
    var stream: Connection.StreamID?
    var sent = 0
    var received = 0
    var doneAt: Instant?
    static let source = [UInt8](repeating: 0x33, count: 1 << 20)

    /// FNV-1a over every byte on the wire: the simulation digest covers the bytes, not their count.
    static func fingerprint(of message: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in message { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    mutating func onStart(_ ctx: inout SimContext<[UInt8]>) { apply(conn.start(now: ctx.now), &ctx) }
    mutating func onMessage(_ m: [UInt8], from: SimNodeID, _ ctx: inout SimContext<[UInt8]>) { apply(conn.onBytes(m, now: ctx.now), &ctx) }
    mutating func onTimer(_ id: UInt64, _ ctx: inout SimContext<[UInt8]>) { apply(conn.onTimer(now: ctx.now), &ctx) }

    mutating func pump(_ ctx: inout SimContext<[UInt8]>) {
        guard let id = stream else { return }
        while sent < total {
            let n = min(conn.writableBytes(id), total - sent, Self.source.count)
            guard n > 0 else { return }
            let w = conn.write(stream: id, bytes: Self.source[0..<n], now: ctx.now)
            sent += w.accepted
            apply(w.directives, &ctx)
        }
    }

    mutating func apply(_ ds: [Connection.Directive], _ ctx: inout SimContext<[UInt8]>) {
        for d in ds {
            switch d {
            case .send(let b): ctx.send(b, to: peer, bytes: b.count)
            case .established:
                if total > 0, let (id, o) = conn.openStream(protocols: ["/sink/1.0.0"], now: ctx.now) {
                    stream = id
                    apply(o, &ctx)
                    pump(&ctx)
                }
            case .writable: pump(&ctx)
            case .data(let id, let s):
                received += s.count
                apply(conn.consumed(stream: id, count: s.count, now: ctx.now), &ctx)
                if received >= expected, doneAt == nil { doneAt = ctx.now }
            default: break
            }
        }
        if let t = conn.nextDeadline { ctx.setTimer(1, at: t) }
    }

    var expected = Int.max
}

@Suite struct SimulatedLinkTests {
    /// 16 MiB over a 40 ms RTT, 50 MB/s link. With the fixed 256 KiB window the stream could do at
    /// most 256 KiB per RTT (6.5 MB/s, ~2.6 s); auto-tuning grows the window past the
    /// bandwidth-delay product (2 MB) and the transfer runs near the link rate.
    static func transfer(maxWindow: UInt32) -> (seconds: Double, window: Int) {
        let total = 16 << 20
        var settings = Connection.Settings(protocols: ["/sink/1.0.0"])
        settings.yamux.maxStreamReceiveWindow = maxWindow
        let a = try! Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 32))
        let b = try! Ed25519PrivateKey(seed: [UInt8](repeating: 2, count: 32))
        var sim = Simulation<WireNode>(seed: 7, link: LinkModel(latency: .milliseconds(20), bytesPerSecond: 50_000_000))
        let n0 = sim.addNode(WireNode(conn: Connection.Instance(role: .dialer(expectedPeer: nil), identity: a, settings: settings, rng: SeededRandom(seed: 1), noiseKeys: testKeys(1)),
                                      peer: SimNodeID(raw: 1), total: total))
        var receiver = WireNode(conn: Connection.Instance(role: .listener, identity: b, settings: settings, rng: SeededRandom(seed: 2), noiseKeys: testKeys(2)),
                                peer: SimNodeID(raw: 0), total: 0)
        receiver.expected = total
        let n1 = sim.addNode(receiver)
        _ = n0
        sim.run(until: .zero + .seconds(10))
        let r = sim[n1]
        #expect(r.received == total)
        let window = r.conn.yamux.receiveWindowLimit(1) ?? 0
        return ((r.doneAt ?? .zero + .seconds(99)).seconds, window)
    }

    /// 1 MiB from node 0 to node 1 through the whole stack (multistream, Noise, yamux) on a lossless
    /// simulated link; every input, key material included, comes from the seeds.
    static func replay(seed: UInt64, keySeed: UInt64) -> (digest: UInt64, received: Int) {
        let total = 1 << 20
        let settings = Connection.Settings(protocols: ["/sink/1.0.0"])
        let a = try! Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 32))
        let b = try! Ed25519PrivateKey(seed: [UInt8](repeating: 2, count: 32))
        var sim = Simulation<WireNode>(seed: seed, link: LinkModel(latency: .milliseconds(5), bytesPerSecond: 100_000_000))
        _ = sim.addNode(WireNode(conn: Connection.Instance(role: .dialer(expectedPeer: nil), identity: a, settings: settings,
                                                           rng: SeededRandom(seed: 1), noiseKeys: testKeys(keySeed)),
                                 peer: SimNodeID(raw: 1), total: total))
        var receiver = WireNode(conn: Connection.Instance(role: .listener, identity: b, settings: settings, rng: SeededRandom(seed: 2),
                                                          noiseKeys: testKeys(keySeed &+ 1000)),
                                peer: SimNodeID(raw: 0), total: 0)
        receiver.expected = total
        let n1 = sim.addNode(receiver)
        sim.run(until: .zero + .seconds(5))
        return (sim.digest, sim[n1].received)
    }

    @Test func wireSimulation_replaysBitForBit_andItsDigestCoversTheBytes() {
        let first = Self.replay(seed: 11, keySeed: 1), again = Self.replay(seed: 11, keySeed: 1)
        #expect(first.received == 1 << 20)
        #expect(first.digest == again.digest)
        // Other key material changes every ciphertext byte but no size or time: a digest of byte
        // counts would not see it; ours does.
        let otherKeys = Self.replay(seed: 11, keySeed: 2)
        #expect(otherKeys.received == 1 << 20)
        #expect(otherKeys.digest != first.digest)
    }

    @Test func autoTunedWindow_fillsALongFatLink_whereTheFixedWindowCannot() {
        let tuned = Self.transfer(maxWindow: 16 << 20)
        let fixed = Self.transfer(maxWindow: Yamux.defaultCredit)
        print("simulated 16 MiB over 40 ms RTT at 50 MB/s: auto-tuned \(tuned.seconds) s (window \(tuned.window)), fixed 256 KiB \(fixed.seconds) s")
        #expect(fixed.window == Int(Yamux.defaultCredit))
        #expect(tuned.window >= 2 << 20)
        #expect(fixed.seconds > 2.4)
        #expect(tuned.seconds < 1.0)
    }
}
