#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaWire

/// CPU cost of the whole stack, both ends in one thread (so a two-process transfer can go at most
/// about twice as fast). Prints MB/s; asserts correctness and a loose floor only.
@Suite(.serialized) struct ThroughputTests {
    static func clock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    #if DEBUG
    static let total = 8 << 20
    #else
    static let total = 256 << 20
    #endif

    @Test func bulkTransferOnOneStream_throughNoiseAndYamux() throws {
        var p = ConnectionPair()
        p.start()
        let opened = p.a.openStream(protocols: ["/sink/1.0.0"], now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d)
        p.pump()
        let source = [UInt8](repeating: 0x5A, count: 4 << 20)
        var sent = 0, received = 0
        var toB: [[UInt8]] = [], toA: [[UInt8]] = []
        let start = Self.clock()
        var now = p.now
        while received < Self.total {
            now = now + .microseconds(10)
            let room = min(p.a.writableBytes(id), Self.total - sent, source.count)
            if room > 0 {
                let w = p.a.write(stream: id, bytes: source[0..<room], now: now)
                sent += w.accepted
                for case .send(let b) in w.directives { toB.append(b) }
            }
            while !toB.isEmpty {
                var m = toB.removeFirst()
                let ds = p.b.onBytes(consume m, now: now)
                m = []
                var got = 0
                for x in ds {
                    switch x {
                    case .send(let b): toA.append(b)
                    case .data(_, let s): got += s.count
                    default: break
                    }
                }
                received += got
                if got > 0 { for case .send(let b) in p.b.consumed(stream: id, count: got, now: now) { toA.append(b) } }
            }
            while !toA.isEmpty {
                var m = toA.removeFirst()
                for case .send(let b) in p.a.onBytes(consume m, now: now) { toB.append(b) }
                m = []
            }
        }
        let seconds = Self.clock() - start
        let mbps = Double(received) / seconds / 1e6
        print("throughput: \(received >> 20) MiB in \(seconds) s = \(Int(mbps)) MB/s (encrypt+decrypt+yamux both ends, one thread); window \(p.b.yamux.receiveWindowLimit(id) ?? 0)")
        #expect(received == Self.total)
        #expect(!p.a.isClosed && !p.b.isClosed)
        #expect(mbps > 5)
    }

    /// The floor under the stack: seal + open of the same bytes in 65519-byte frames, nothing else.
    @Test func chachaPolyBaseline_sealAndOpenInPlace() throws {
        var t = Noise.Transport(sendKey: [UInt8](repeating: 1, count: 32), receiveKey: [UInt8](repeating: 1, count: 32))
        let plain = [UInt8](repeating: 7, count: 4 << 20)
        var done = 0
        let start = Self.clock()
        while done < Self.total {
            var wire: [UInt8] = []
            wire.reserveCapacity(plain.count + 1200)
            #expect(t.encrypt(plain[...], into: &wire))
            let opened = try t.decrypt(consume wire).get()
            done += opened.reduce(0) { $0 + $1.count }
        }
        let seconds = Self.clock() - start
        print("baseline: ChaChaPoly seal+open \(done >> 20) MiB in \(seconds) s = \(Int(Double(done) / seconds / 1e6)) MB/s (one thread)")
        #expect(done == Self.total)
    }

    @Test func smallRequestRoundTrip_cpuCost() throws {
        var p = ConnectionPair()
        p.start()
        let opened = p.a.openStream(protocols: ["/echo/1.0.0"], now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d)
        p.pump()
        let request = [UInt8](repeating: 1, count: 64)
        let rounds = 20_000
        let start = Self.clock()
        var echoed = 0
        var wire: [UInt8] = []
        for _ in 0..<rounds {
            for case .send(let b) in p.a.write(stream: id, bytes: request, now: p.now).directives { wire += b }
            var back: [UInt8] = []
            let input = wire
            wire = []
            for x in p.b.onBytes(input, now: p.now) {
                switch x {
                case .send(let b): back += b
                case .data(let sid, let s):
                    for case .send(let b) in p.b.write(stream: sid, bytes: s, now: p.now).directives { back += b }
                    for case .send(let b) in p.b.consumed(stream: sid, count: s.count, now: p.now) { back += b }
                default: break
                }
            }
            for x in p.a.onBytes(back, now: p.now) {
                if case .data(_, let s) = x {
                    echoed += s.count
                    for case .send(let b) in p.a.consumed(stream: id, count: s.count, now: p.now) { wire += b }
                }
            }
        }
        let perRound = (Self.clock() - start) / Double(rounds) * 1e6
        print("round trip: 64-byte request + echo, both ends' CPU = \(perRound) µs")
        #expect(echoed == rounds * 64)
    }
}
