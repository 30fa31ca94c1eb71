import LatticaCore
import Testing
@testable import LatticaWire

@Suite struct YamuxFuzzTests {
    static func frame(_ type: UInt8, _ flags: UInt16, _ id: UInt32, _ length: UInt32, body: Int = 0) -> [UInt8] {
        var out: [UInt8] = [0, type, UInt8(flags >> 8), UInt8(flags & 0xFF)]
        for v in [id, length] { out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        out += [UInt8](repeating: 0xAB, count: body)
        return out
    }

    /// A plausible client transcript: opens, data, window updates, pings, closes.
    static func plausible(_ rng: inout SeededRandom) -> [UInt8] {
        var out: [UInt8] = []
        var next: UInt32 = 1
        for _ in 0..<Int(rng.next() % 20) {
            switch rng.next() % 6 {
            case 0: out += frame(1, 1, next, 0); next += 2
            case 1: let n = UInt32(rng.next() % 2000); out += frame(0, 1, next, n, body: Int(n)); next += 2
            case 2: let n = UInt32(rng.next() % 2000); out += frame(0, 0, max(1, next &- 2), n, body: Int(n))
            case 3: out += frame(1, 0, max(1, next &- 2), UInt32(rng.next() % 100_000))
            case 4: out += frame(2, 1, 0, UInt32(truncatingIfNeeded: rng.next()))
            default: out += frame(0, 4, max(1, next &- 2), 0)
            }
        }
        return out
    }

    static func check(_ y: Yamux.Instance) {
        #expect(y.streamCount <= y.settings.maxStreams)
        #expect(y.headerBuffer.count < Yamux.headerLength)
        #expect(y.bufferedReceiveBytes <= y.streamCount * Int(y.settings.maxStreamReceiveWindow))
        #expect(y.closedStreams.order.count <= y.settings.rememberedClosedStreams)
    }

    @Test func randomMutatedAndTruncatedFrames_neverCrash_andEndInViolationOrValidState() {
        var rng = SeededRandom(seed: 0xFA11)
        var violations = 0
        for round in 0..<4000 {
            var input = Self.plausible(&rng)
            switch round % 4 {
            case 0: input = (0..<Int(rng.next() % 400)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1 where !input.isEmpty:
                for _ in 0..<(1 + Int(rng.next() % 4)) { input[Int(rng.next() % UInt64(input.count))] = UInt8.random(in: 0...255, using: &rng) }
            case 2: input = Array(input.prefix(Int(rng.next() % UInt64(input.count + 1))))
            default: break
            }
            var y = Yamux.Instance(role: .server, rng: SeededRandom(seed: UInt64(round)))
            for c in input.chunked(by: 1 + Int(rng.next() % 100)) {
                for d in y.onBytes(c, now: Instant(nanoseconds: Int64(round))) {
                    if case .violation = d { violations += 1 }
                }
                Self.check(y)
            }
            if y.isClosed { #expect(y.onBytes([0, 0, 0, 0][...], now: .zero).isEmpty) }
        }
        #expect(violations > 1000)
    }

    @Test func oversizeLengths_andWindowOverflow_areViolations() {
        var y = Yamux.Instance(role: .server, rng: SeededRandom(seed: 1))
        var d = y.onBytes(Self.frame(0, 1, 1, 0xFFFF_FFFF)[...], now: .zero)
        #expect(d.contains(.violation(.frameTooLarge(0xFFFF_FFFF))))
        var z = Yamux.Instance(role: .server, rng: SeededRandom(seed: 1))
        d = z.onBytes((Self.frame(1, 1, 1, 0) + Self.frame(1, 0, 1, 0xFFFF_FFFF))[...], now: .zero)
        #expect(d.contains(.violation(.windowOverflow(1))))
    }

    @Test func aPeerOpeningStreamsWithoutEnd_isHeldAtTheLimit() {
        var s = Yamux.Settings()
        s.maxStreams = 64
        var y = Yamux.Instance(role: .server, settings: s, rng: SeededRandom(seed: 2))
        var opened = 0
        for batch in 0..<200 {
            var input: [UInt8] = []
            for k in 0..<100 { input += Self.frame(0, 1, UInt32(2 * (batch * 100 + k) + 1), 10, body: 10) }
            for d in y.onBytes(input[...], now: .zero) { if case .opened = d { opened += 1 } }
            Self.check(y)
        }
        #expect(opened == 64)
        #expect(y.metrics.streamsRefused == 20_000 - 64)
        #expect(!y.isClosed)
    }

    @Test func aPeerThatNeverReads_cannotMakeUsBufferMoreThanTheLimits() throws {
        var s = Yamux.Settings()
        s.maxPendingSendPerConnection = 3 << 20
        var y = Yamux.Instance(role: .client, settings: s, rng: SeededRandom(seed: 3))
        var total = 0
        for _ in 0..<100 {
            let opened = y.openStream(now: .zero)
            let (id, _) = try #require(opened)
            for _ in 0..<10 { total += y.write(stream: id, bytes: [UInt8](repeating: 1, count: 100_000), now: .zero).accepted }
        }
        // 256 KiB of initial window per stream went out, the rest queued up to the connection cap.
        #expect(y.pendingSendBytes <= 3 << 20)
        #expect(total == 100 * Int(Yamux.defaultCredit) + y.pendingSendBytes)
    }
}
