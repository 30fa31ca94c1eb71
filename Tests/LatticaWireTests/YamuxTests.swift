import LatticaCore
import Testing
@testable import LatticaWire

/// Two yamux instances wired back to back; `pump` moves bytes until quiet.
struct YamuxPair {
    var a: Yamux.Instance
    var b: Yamux.Instance
    var toA: [UInt8] = []
    var toB: [UInt8] = []
    var eventsA: [Yamux.Directive] = []
    var eventsB: [Yamux.Directive] = []
    var received: [Yamux.StreamID: [UInt8]] = [:]   // data seen by b, per stream
    var receivedA: [Yamux.StreamID: [UInt8]] = [:]
    var autoConsume = true
    var now = Instant.zero

    init(settings: Yamux.Settings = .init(), seed: UInt64 = 1) {
        a = Yamux.Instance(role: .client, settings: settings, rng: SeededRandom(seed: seed))
        b = Yamux.Instance(role: .server, settings: settings, rng: SeededRandom(seed: seed + 1))
    }

    mutating func fromA(_ d: [Yamux.Directive]) { absorb(d, toPeer: &toB, events: &eventsA) }
    mutating func fromB(_ d: [Yamux.Directive]) { absorb(d, toPeer: &toA, events: &eventsB) }

    func absorb(_ d: [Yamux.Directive], toPeer: inout [UInt8], events: inout [Yamux.Directive]) {
        for x in d { if case .send(let bytes) = x { toPeer += bytes } else { events.append(x) } }
    }

    mutating func pump(latency: Duration = .zero, chunk: Int = .max) {
        var rounds = 0
        while (!toA.isEmpty || !toB.isEmpty) && rounds < 100_000 {
            rounds += 1
            now = now + latency
            if !toB.isEmpty {
                let n = min(chunk, toB.count)
                let bytes = Array(toB.prefix(n)); toB.removeFirst(n)
                let d = b.onBytes(bytes[...], now: now)
                fromB(d)
                for case .data(let id, let slice) in d {
                    received[id, default: []] += slice
                    if autoConsume { fromB(b.consumed(stream: id, count: slice.count, now: now)) }
                }
            }
            now = now + latency
            if !toA.isEmpty {
                let n = min(chunk, toA.count)
                let bytes = Array(toA.prefix(n)); toA.removeFirst(n)
                let d = a.onBytes(bytes[...], now: now)
                fromA(d)
                for case .data(let id, let slice) in d {
                    receivedA[id, default: []] += slice
                    if autoConsume { fromA(a.consumed(stream: id, count: slice.count, now: now)) }
                }
            }
        }
    }
}

@Suite struct YamuxTests {
    @Test func header_encodesBigEndianFields_inTwelveBytes() {
        var out: [UInt8] = []
        Yamux.Header(type: .windowUpdate, flags: [.syn, .fin], streamID: 0x0102_0304, length: 0xA0B0_C0D0).encode(into: &out)
        #expect(out == [0, 1, 0, 5, 1, 2, 3, 4, 0xA0, 0xB0, 0xC0, 0xD0])
        let h = Yamux.Header(decoding: out)
        #expect(h.frameType == .windowUpdate && h.flags == [.syn, .fin] && h.streamID == 0x0102_0304 && h.length == 0xA0B0_C0D0)
    }

    @Test func stream_opensWithOddId_carriesDataBothWays_andClosesAfterBothFins() throws {
        var p = YamuxPair()
        let opened = p.a.openStream(now: p.now)
        let (id, d) = try #require(opened)
        #expect(id == 1)
        #expect(d == [.send([0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0])])  // WindowUpdate SYN, delta 0
        p.fromA(d)
        p.fromA(p.a.write(stream: id, bytes: Array("hello".utf8), now: p.now).directives)
        p.pump()
        #expect(p.eventsB.contains(.opened(1)))
        #expect(p.received[1] == Array("hello".utf8))
        p.fromB(p.b.write(stream: 1, bytes: Array("world".utf8), now: p.now).directives)
        p.fromA(p.a.closeWrite(stream: 1, now: p.now))
        p.pump()
        #expect(p.receivedA[1] == Array("world".utf8))
        #expect(p.eventsB.contains(.finished(1)))
        p.fromB(p.b.closeWrite(stream: 1, now: p.now))
        p.pump()
        #expect(p.eventsA.contains(.finished(1)) && p.eventsA.contains(.closed(1)) && p.eventsB.contains(.closed(1)))
        #expect(p.a.streamCount == 0 && p.b.streamCount == 0)
        let opened2 = p.b.openStream(now: p.now)
        let next = try #require(opened2)
        #expect(next.id == 2)
    }

    @Test func sender_stopsAtTheWindow_andResumesWithWritable_whenReceiverConsumes() throws {
        var p = YamuxPair()
        p.autoConsume = false
        let opened = p.a.openStream(now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d)
        let payload = (0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let w = p.a.write(stream: id, bytes: payload, now: p.now)
        #expect(w.accepted == payload.count)
        p.fromA(w.directives)
        p.pump()
        #expect(p.received[id]?.count == Int(Yamux.defaultCredit))
        #expect(p.a.pendingSendBytes(id) == payload.count - Int(Yamux.defaultCredit))
        #expect(!p.eventsA.contains(.writable(id)))
        var delivered = p.received[id]!.count
        p.autoConsume = true
        p.fromB(p.b.consumed(stream: id, count: delivered, now: p.now))
        p.pump()
        delivered = p.received[id]!.count
        #expect(delivered == payload.count)
        #expect(p.received[id]! == payload)
        #expect(p.eventsA.contains(.writable(id)))
    }

    @Test func write_isBounded_whenThePeerNeverReads() throws {
        var s = Yamux.Settings()
        s.maxPendingSendPerStream = 100_000
        var p = YamuxPair(settings: s)
        p.autoConsume = false
        let opened = p.a.openStream(now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d)
        var accepted = 0
        for _ in 0..<50 {
            let w = p.a.write(stream: id, bytes: [UInt8](repeating: 1, count: 64 * 1024), now: p.now)
            accepted += w.accepted
            p.fromA(w.directives)
            p.pump()
        }
        #expect(accepted == Int(Yamux.defaultCredit) + 100_000)
        #expect(p.a.pendingSendBytes == 100_000)
        #expect(p.b.bufferedReceiveBytes == Int(Yamux.defaultCredit))
    }

    @Test func dataBeyondTheWindow_isAViolation_answeredWithGoAwayProtocolError() {
        var b = Yamux.Instance(role: .server, rng: SeededRandom(seed: 3))
        var frames: [UInt8] = []
        Yamux.Header(type: .windowUpdate, flags: .syn, streamID: 1, length: 0).encode(into: &frames)
        Yamux.Header(type: .data, streamID: 1, length: Yamux.defaultCredit + 1).encode(into: &frames)
        let d = b.onBytes(frames[...], now: .zero)
        #expect(d.contains(.violation(.dataBeyondWindow(1))))
        guard case .send(let bytes)? = d.first else { Issue.record("no bytes"); return }
        #expect(bytes.suffix(12) == [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(b.isClosed)
        let after = b.onBytes([0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], now: .zero)
        #expect(after.isEmpty)
    }

    @Test func badVersion_unknownType_andWrongParity_areViolations() {
        let cases: [([UInt8], Yamux.Violation)] = [
            ([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], .badVersion(1)),
            ([0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], .unknownFrameType(4)),
            ([0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0], .invalidStreamID(2)),   // server got an even SYN
            ([0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1], .invalidStreamID(7)),   // data on a never-opened stream
        ]
        for (bytes, v) in cases {
            var b = Yamux.Instance(role: .server, rng: SeededRandom(seed: 9))
            let d = b.onBytes(bytes[...], now: .zero)
            #expect(d.contains(.violation(v)))
        }
    }

    @Test func inboundStreams_beyondTheLimit_areRefusedWithReset() {
        var s = Yamux.Settings()
        s.maxStreams = 4
        var b = Yamux.Instance(role: .server, settings: s, rng: SeededRandom(seed: 4))
        var frames: [UInt8] = []
        for i in 0..<10 { Yamux.Header(type: .windowUpdate, flags: .syn, streamID: UInt32(2 * i + 1), length: 0).encode(into: &frames) }
        let d = b.onBytes(frames[...], now: .zero)
        #expect(d.filter { if case .opened = $0 { true } else { false } }.count == 4)
        #expect(b.streamCount == 4 && b.metrics.streamsRefused == 6)
        guard case .send(let out)? = d.first else { Issue.record("no reply"); return }
        #expect(out.suffix(12) == [0, 1, 0, 8, 0, 0, 0, 19, 0, 0, 0, 0])  // RST for stream 19
    }

    @Test func outboundOpens_stopAtTheAckBacklog_andResumeOnAckOrReset() throws {
        var s = Yamux.Settings()
        s.maxAckBacklog = 4
        var p = YamuxPair(settings: s)
        func open() -> Yamux.StreamID? {
            guard let (id, d) = p.a.openStream(now: p.now) else { return nil }
            p.fromA(d)
            return id
        }
        var ids: [Yamux.StreamID] = []
        for _ in 0..<4 { ids.append(try #require(open())) }
        #expect(open() == nil)  // four unacknowledged: the limit
        // Resetting an unacknowledged stream frees its slot.
        p.fromA(p.a.reset(stream: ids[0], now: p.now))
        let fifth = try #require(open())
        #expect(open() == nil)
        // The peer acknowledges every open stream: the backlog is empty again.
        p.pump()
        #expect(p.eventsB.contains(.opened(fifth)))
        for _ in 0..<4 { #expect(open() != nil) }
        #expect(open() == nil)
    }

    @Test func reset_isReportedToThePeer_andLateFramesAreIgnoredWithinGrace() throws {
        var p = YamuxPair()
        let opened = p.a.openStream(now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d); p.pump()
        p.fromB(p.b.write(stream: id, bytes: [1, 2, 3], now: p.now).directives)  // in flight
        p.fromA(p.a.reset(stream: id, now: p.now))
        p.pump()
        #expect(p.eventsB.contains(.reset(id)))
        #expect(p.eventsA.allSatisfy { if case .violation = $0 { false } else { true } })
        // The same late frame long after the grace period is a violation.
        var late: [UInt8] = []
        Yamux.Header(type: .data, streamID: id, length: 1).encode(into: &late)
        late.append(9)
        let d2 = p.a.onBytes(late[...], now: p.now + .seconds(60))
        #expect(d2.contains(.violation(.frameForClosedStream(id))))
    }

    @Test func ping_measuresRtt_andAnswersPeerPings() {
        var p = YamuxPair()
        p.fromA(p.a.start(now: p.now))
        p.pump(latency: .milliseconds(5))
        #expect(p.a.rtt == .milliseconds(10))
        #expect(p.eventsA.contains(.rtt(.milliseconds(10))))
        #expect(p.a.nextDeadline == p.now + .seconds(10))
        #expect(p.b.metrics.pingsAnswered == 1)
    }

    @Test func receiveWindow_growsTowardBandwidthDelayProduct_boundedByConnectionBudget() throws {
        var s = Yamux.Settings()
        s.maxStreams = 4
        s.maxConnectionReceiveWindow = 4 * Int(Yamux.defaultCredit) + 3 * 1024 * 1024
        var p = YamuxPair(settings: s)
        p.fromA(p.a.start(now: p.now)); p.fromB(p.b.start(now: p.now))
        p.pump(latency: .milliseconds(10))   // rtt 20 ms both ways
        let opened = p.a.openStream(now: p.now)
        let (id, d) = try #require(opened)
        p.fromA(d)
        let chunk = [UInt8](repeating: 7, count: 64 * 1024)
        for _ in 0..<400 {   // 25 MiB, read as fast as it arrives
            let w = p.a.write(stream: id, bytes: chunk, now: p.now)
            p.fromA(w.directives)
            p.pump(latency: .milliseconds(1))
        }
        let limit = try #require(p.b.receiveWindowLimit(id))
        #expect(limit > Int(Yamux.defaultCredit))
        #expect(limit <= Int(Yamux.defaultCredit) + 3 * 1024 * 1024)
        #expect(p.b.metrics.windowGrowths >= 2)
    }

    @Test func goAway_fromPeer_forbidsNewStreams() {
        var p = YamuxPair()
        p.fromB(p.b.goAway(now: p.now))
        p.pump()
        #expect(p.eventsA.contains(.goAway(.normal)))
        let refused = p.a.openStream(now: p.now)
        #expect(refused == nil)
    }
}
