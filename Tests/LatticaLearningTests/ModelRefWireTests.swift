import Foundation
import LatticaCore
import LatticaLearning
import Testing

/// Version 2 of `/lattica/avg/1.0.0`: the model-ref reply (status 03), byte for byte, and its
/// decoders (whole message and streamed) fuzzed with the seed in every failure message.
@Suite struct ModelRefWireTests {
    let id = (0..<32).map { UInt8($0) }

    @Test func modelRef_isTheDocumentedBytes_andRoundTrips() throws {
        let p = Averaging.Wire.Pull(run: "r", step: 7, version: Averaging.Wire.versionModelRef)
        #expect(Averaging.Wire.encode(p) == [2, 1, 0x72, 7])
        #expect(try Averaging.Wire.decodePull([2, 1, 0x72, 7]) == p)
        let r = Averaging.Wire.Reply(ref: id, step: 7, count: 300)
        let b = Averaging.Wire.encode(r)
        #expect(b == [2, 3, 7, 0xac, 0x02] + id)  // version 2, model-ref, step 7, count 300, the id
        #expect(try Averaging.Wire.decodeReply(b, expectedCount: 300) == r)
        // The count is the run's: another is refused before anything is fetched.
        #expect(throws: Averaging.Wire.DecodeError.wrongCount(got: 300, expected: 301)) { try Averaging.Wire.decodeReply(b, expectedCount: 301) }
        // Status 03 exists only in version 2; an id short or long is refused.
        #expect(throws: Averaging.Wire.DecodeError.self) { try Averaging.Wire.decodeReply([1] + b.dropFirst(), expectedCount: 300) }
        #expect(throws: Averaging.Wire.DecodeError.self) { try Averaging.Wire.decodeReply(Array(b.dropLast()), expectedCount: 300) }
        #expect(throws: Averaging.Wire.DecodeError.self) { try Averaging.Wire.decodeReply(b + [0], expectedCount: 300) }
        // The answer of a daemon from before version 2 to a version-2 pull.
        let old = try Averaging.Wire.decodeReply([1, 1, 0, 0], expectedCount: 300)
        #expect(old.status == .unknownRun && old.version == 1)
    }

    func stream(_ b: [UInt8], count: Int, rng: inout SeededRandom) throws(Averaging.Wire.DecodeError) -> Averaging.Wire.ReplyReceiver.Received {
        var r = Averaging.Wire.ReplyReceiver(expectedCount: count, deltaSteps: 0...5)
        let phi = [Float](repeating: 0, count: count)
        var i = 0
        while i < b.count {
            let n = min(b.count - i, 1 + Int(rng.next() % 9))
            var failure: Averaging.Wire.DecodeError?
            b[i..<(i + n)].withUnsafeBytes { raw in
                phi.withUnsafeBufferPointer { p in
                    do throws(Averaging.Wire.DecodeError) { try r.onBytes(raw, phi: p) } catch { failure = error }
                }
            }
            if let failure { throw failure }
            i += n
        }
        return try r.finish()
    }

    @Test func decoders_neverTrap_onHostileVersion2Bytes_andAgree() {
        let seed: UInt64 = ProcessInfo.seed(0xA76_2EF)
        var rng = SeededRandom(seed: seed)
        var accepted = 0
        for i in 0..<20_000 {
            var b = Averaging.Wire.encode(Averaging.Wire.Reply(ref: (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, step: Int(rng.next() % 100), count: 4))
            if i % 3 == 0 { b = Averaging.Wire.encode(Averaging.Wire.Reply(status: .model, step: 1, parameters: [1, 2, 3, 4], version: 2)) }
            switch rng.next() % 4 {
            case 0: b = (0..<Int(rng.next() % 48)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            case 2: b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
            default: b += [UInt8(truncatingIfNeeded: rng.next())]
            }
            let whole = try? Averaging.Wire.decodeReply(b, expectedCount: 4)
            let streamed: Averaging.Wire.ReplyReceiver.Received?
            do throws(Averaging.Wire.DecodeError) { streamed = try stream(b, count: 4, rng: &rng) } catch { streamed = nil }
            #expect((whole == nil) == (streamed == nil), "seed \(seed), case \(i): \(b)")
            if let whole {
                accepted += 1
                #expect(Averaging.Wire.encode(whole) == b, "seed \(seed), case \(i)")
                #expect(streamed?.status == whole.status && streamed?.ref == whole.ref, "seed \(seed), case \(i)")
            }
            if let p = try? Averaging.Wire.decodePull(b) { #expect(Averaging.Wire.encode(p) == b, "seed \(seed), case \(i)") }
        }
        #expect(accepted > 0, "seed \(seed)")
    }
}

extension ProcessInfo {
    /// `LATTICA_AVG_SEED` replays a failure.
    static func seed(_ fallback: UInt64) -> UInt64 { processInfo.environment["LATTICA_AVG_SEED"].flatMap { UInt64($0) } ?? fallback }
}
