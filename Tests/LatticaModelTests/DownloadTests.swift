import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaModel

@Suite struct DownloadTests {
    var settings: Model.Settings {
        var s = Model.Settings()
        s.chunkTimeout = .seconds(5)
        return s
    }

    @Test func manifestAndChunks_arriveVerified_whateverTheReadSizes() {
        let seed = testSeed(21)
        var rng = SeededRandom(seed: seed)
        let f = Fixture(size: 40_000, rng: &rng)  // 10 chunks of 4 KiB
        var d = Model.Download(mode: .manifest(f.manifest.id), settings: settings, now: .zero)
        #expect(feed(&d, f.manifestFrame, splits: &rng) == [.manifest(f.manifest), .done], "seed \(seed)")
        var c = Model.Download(mode: .chunks(f.manifest, first: 2, count: 7), settings: settings, now: .zero)
        let events = feed(&c, f.chunkFrames(2..<9), splits: &rng)
        #expect(events == (2..<9).map { .chunk(index: $0, bytes: f.chunk($0)) } + [.done], "seed \(seed)")
        #expect(c.isFinished && c.verified == 7)
        #expect(c.onData([1, 2, 3], now: .zero).isEmpty)  // nothing is read after done
    }

    @Test func eachKindOfBadInput_isRejected_beforeAnyBadChunkIsHandedOn() {
        var rng = SeededRandom(seed: testSeed(22))
        let f = Fixture(size: 40_000, rng: &rng)
        let m = f.manifest
        func chunks(_ bytes: [UInt8], first: Int = 0, count: Int = 3) -> (Model.Rejection?, [Model.Download.Event]) {
            var d = Model.Download(mode: .chunks(m, first: first, count: count), settings: settings, now: .zero)
            var ev = d.onData(bytes[...], now: .zero)
            if !d.isFinished { ev += d.onFinished(now: .zero) }
            return (rejection(ev), ev)
        }
        // A chunk one byte longer than its chunk: refused at its header, before its body is kept.
        #expect(chunks(Model.Frame.chunkHeader(index: 0, length: 4097)).0 == .oversizedChunk)
        #expect(chunks(Model.Frame.chunkHeader(index: 0, length: 4095) + f.chunk(0).dropLast()).0 == .truncatedChunk)
        // The stream ends inside a chunk.
        #expect(chunks(Array(f.chunkFrames(0..<1).prefix(2000))).0 == .truncatedChunk)
        // A flipped byte in chunk 1: chunk 0 is handed on, chunk 1 is not.
        var lie = f.chunkFrames(0..<3)
        lie[9 + 4096 + 9 + 100] ^= 1
        let (r, ev) = chunks(lie)
        #expect(r == .hashMismatch && ev.first == .chunk(index: 0, bytes: f.chunk(0)) && ev.count == 2)
        #expect(chunks(f.chunkFrames(1..<2)).0 == .unexpectedChunk)
        #expect(chunks(f.chunkFrames(0..<2)).0 == .incomplete)  // FIN after 2 of 3
        #expect(chunks([0x07]).0 == .malformedFrame)
        #expect(chunks(f.manifestFrame).0 == .malformedFrame)
        // The manifest: too large (refused at its header), not the id's, malformed but hashing to the id.
        func manifest(_ bytes: [UInt8], id: ModelID = m.id) -> Model.Rejection? {
            var d = Model.Download(mode: .manifest(id), settings: settings, now: .zero)
            var ev = d.onData(bytes[...], now: .zero)
            if !d.isFinished { ev += d.onFinished(now: .zero) }
            return rejection(ev)
        }
        #expect(manifest(Model.Frame.manifestHeader(length: settings.maxManifestBytes + 1)) == .manifestTooLarge)
        #expect(manifest(f.manifestFrame, id: ModelID(bytes: [UInt8](repeating: 1, count: 32))!) == .manifestMismatch)
        let junk = rng.bytes(100)
        #expect(manifest(Model.Frame.manifestHeader(length: 100) + junk, id: ModelID(manifestBytes: junk)) == .manifestMalformed)
        #expect(manifest(Array(f.manifestFrame.prefix(50))) == .incomplete)
        #expect(manifest(f.chunkFrames(0..<1)) == .malformedFrame)
        // An ERROR frame is the peer's answer, not a rejection.
        var d = Model.Download(mode: .manifest(m.id), settings: settings, now: .zero)
        #expect(d.onData(Model.Frame.error(.notFound, "nope")[...], now: .zero) == [.peerError(.notFound, "nope")])
        #expect(manifest(Model.Frame.error(.notFound, "") + [1]) == nil)  // finished at the error: the rest is not read
    }

    @Test func aPeerThatStreamsSlowlyForever_timesOut_atTheChunkDeadline() {
        var rng = SeededRandom(seed: testSeed(23))
        let f = Fixture(size: 40_000, rng: &rng)
        let frames = f.chunkFrames(0..<3)
        var d = Model.Download(mode: .chunks(f.manifest, first: 0, count: 3), settings: settings, now: .zero)
        // A whole chunk at t=1 s moves the deadline; then one byte a second never completes chunk 1.
        #expect(d.onData(frames[0..<(9 + 4096)], now: Instant(nanoseconds: 1_000_000_000)).count == 1)
        #expect(d.deadline == Instant(nanoseconds: 6_000_000_000))
        var t = 1
        var at = 9 + 4096
        while !d.isFinished && t < 100 {
            t += 1
            let now = Instant(nanoseconds: Int64(t) * 1_000_000_000)
            _ = d.onData(frames[at..<at + 1], now: now)
            at += 1
            if now >= d.deadline { #expect(rejection(d.onTimeout(now: now)) == .timeout) }
        }
        #expect(d.isFinished && t == 6)
        #expect(d.onTimeout(now: Instant(nanoseconds: 7_000_000_000)).isEmpty)
    }
}

/// Every decoder of network bytes on random and damaged input: it answers, never traps, and
/// never hands on a chunk that does not match the manifest.
@Suite struct ModelFuzzTests {
    @Test func requestDecoder_onHostileBytes() {
        let seed = testSeed(0x40DE_1001)
        var rng = SeededRandom(seed: seed)
        let id = ModelID(bytes: rng.bytes(32))!
        var seen = [0, 0, 0]
        for i in 0..<20_000 {
            let valid = i % 2 == 0 ? Model.Request.manifest(id).encoded : Model.Request.chunks(id, first: rng.below(1 << 20), count: 1 + rng.below(99)).encoded
            let b = i % 3 == 0 ? rng.bytes(rng.below(50)) : rng.damaged(valid)
            switch Model.Request.decode(b[...], finished: rng.below(2) == 0) {
            case .incomplete: seen[0] += 1
            case .malformed: seen[1] += 1
            case .request(let r): seen[2] += 1; #expect(r.encoded == b, "seed \(seed)")
            }
        }
        #expect(seen.allSatisfy { $0 > 0 }, "seed \(seed): \(seen)")
    }

    @Test func manifestDecoder_onHostileBytes() {
        let seed = testSeed(0x40DE_1002)
        var rng = SeededRandom(seed: seed)
        var decoded = 0
        for i in 0..<3_000 {
            let f = Fixture(size: 1 + rng.below(12_000), rng: &rng)
            let b = i % 4 == 0 ? rng.bytes(rng.below(200)) : rng.damaged(f.manifest.encoded)
            if let m = Model.Manifest(decoding: b[...], maxSize: 1 << 20, maxChunks: 64) {
                decoded += 1
                #expect(m.encoded == b && m.chunkCount <= 64, "seed \(seed)")
            }
        }
        #expect(decoded > 0, "seed \(seed)")  // some damage (a flipped hash byte) still decodes
    }

    @Test func download_onHostileStreams() {
        let seed = testSeed(0x40DE_1003)
        var rng = SeededRandom(seed: seed)
        var s = Model.Settings()
        s.maxManifestBytes = 4096
        var outcomes: [String: Int] = [:]
        for i in 0..<3_000 {
            let f = Fixture(size: 1 + rng.below(20_000), rng: &rng)
            let m = f.manifest
            let first = rng.below(m.chunkCount), count = 1 + rng.below(m.chunkCount - first)
            let manifestMode = i % 3 == 0
            let valid = manifestMode ? f.manifestFrame : f.chunkFrames(first..<first + count)
            let bytes = switch i % 5 {
            case 0: rng.bytes(rng.below(300))
            case 1: valid
            default: rng.damaged(valid)
            }
            var d = Model.Download(mode: manifestMode ? .manifest(m.id) : .chunks(m, first: first, count: count), settings: s, now: .zero)
            var events = feed(&d, bytes, splits: &rng)
            if !d.isFinished { events += d.onFinished(now: .zero) }
            #expect(d.isFinished, "seed \(seed) case \(i)")
            for e in events {
                switch e {
                case .chunk(let idx, let b):
                    #expect(idx >= first && idx < first + count && SHA256.hash(b) == m.chunkHashes[idx], "seed \(seed) case \(i)")
                    outcomes["chunk", default: 0] += 1
                case .manifest(let got): #expect(got == m, "seed \(seed) case \(i)"); outcomes["manifest", default: 0] += 1
                case .rejected(let r, _): outcomes[r.rawValue, default: 0] += 1
                case .done: outcomes["done", default: 0] += 1
                case .peerError: outcomes["peer_error", default: 0] += 1
                }
            }
            if i % 5 == 1 { #expect(events.last == .done, "seed \(seed) case \(i)") }
        }
        #expect(outcomes["done", default: 0] >= 600 && outcomes["hash_mismatch", default: 0] > 0, "seed \(seed): \(outcomes)")
    }
}
