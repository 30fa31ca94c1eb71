import LatticaCore
import Testing
@testable import LatticaModel

/// `LMF2` manifests and `Model.MemoryDownload`, the chunk reader that writes into the caller's
/// memory: every refusal of `Download` with the same reason, and seeded fuzz.
@Suite struct MemoryDownloadTests {
    /// An LMF2 manifest of `f.blob` at 4 KiB chunks.
    func lmf2(_ blob: [UInt8]) -> Model.Manifest {
        let hashes = blob.withUnsafeBytes { Model.chunkHashes($0, chunkShift: 12, range: 0..<((blob.count + 4095) / 4096)) }
        return Model.Manifest(chunkListShift: 12, size: UInt64(blob.count), chunkHashes: hashes)
    }

    /// Feeds `bytes` in random pieces into a fresh destination; the events and the destination.
    func run(_ m: Model.Manifest, _ bytes: [UInt8], first: Int = 0, count: Int? = nil, verifies: Bool = true,
             finish: Bool = true, rng: inout SeededRandom) -> ([Model.MemoryDownload.Event], [UInt8]) {
        var d = Model.MemoryDownload(manifest: m, first: first, count: count ?? m.chunkCount - first, chunkTimeout: .seconds(5), verifiesHashes: verifies, now: .zero)
        var dst = [UInt8](repeating: 0, count: Int(m.size))
        var out: [Model.MemoryDownload.Event] = []
        var off = 0
        while off < bytes.count {
            let n = min(bytes.count - off, 1 + rng.below(5000))
            out += bytes[off..<(off + n)].withUnsafeBytes { raw in dst.withUnsafeMutableBytes { d.onData(raw, into: $0, now: .zero) } }
            off += n
        }
        if finish, !d.isFinished { out += d.onFinished(now: .zero) }
        return (out, dst)
    }

    func reason(_ e: [Model.MemoryDownload.Event]) -> Model.Rejection? {
        for x in e { if case .rejected(let r, _) = x { return r } }
        return nil
    }

    @Test func lmf2_roundTrips_andItsHashFieldIsChecked() {
        var rng = SeededRandom(seed: testSeed(41))
        let f = Fixture(size: 10_000, rng: &rng)
        let m = lmf2(f.blob)
        #expect(m.kind == .chunkList && m.encoded.prefix(4) == [0x4C, 0x4D, 0x46, 0x32] && m.chunkHashes == f.manifest.chunkHashes)
        #expect(Model.Manifest(decoding: m.encoded[...], maxSize: 1 << 20, maxChunks: 64) == m)
        #expect(m.id != f.manifest.id)  // another kind, another id
        var bad = m.encoded
        bad[20] ^= 1  // the hash field no longer the hash of the chunk hashes
        #expect(Model.Manifest(decoding: bad[...], maxSize: 1 << 20, maxChunks: 64) == nil)
    }

    @Test func chunks_landInPlace_verified_whateverTheReadSizes() {
        let seed = testSeed(42)
        var rng = SeededRandom(seed: seed)
        let f = Fixture(size: 40_000, rng: &rng)
        let m = lmf2(f.blob)
        let (ev, dst) = run(m, f.chunkFrames(0..<m.chunkCount), rng: &rng)
        #expect(ev == (0..<m.chunkCount).map { .chunk(index: $0) } + [.done], "seed \(seed)")
        #expect(dst == f.blob, "seed \(seed)")
        // A resumed stream from chunk 4 fills only chunks 4... (the rest stays as it was).
        let (ev2, dst2) = run(m, f.chunkFrames(4..<m.chunkCount), first: 4, rng: &rng)
        #expect(ev2.last == .done && dst2[16384...] == f.blob[16384...] && dst2[..<16384].allSatisfy { $0 == 0 }, "seed \(seed)")
    }

    @Test func eachKindOfBadInput_isRejected_withDownloadsReason() {
        var rng = SeededRandom(seed: testSeed(43))
        let f = Fixture(size: 40_000, rng: &rng)
        let m = lmf2(f.blob)
        func r(_ b: [UInt8], count: Int = 3) -> Model.Rejection? { reason(run(m, b, count: count, rng: &rng).0) }
        #expect(r(Model.Frame.chunkHeader(index: 0, length: 4097)) == .oversizedChunk)
        #expect(r(Model.Frame.chunkHeader(index: 0, length: 4095)) == .truncatedChunk)
        #expect(r(Array(f.chunkFrames(0..<1).prefix(2000))) == .truncatedChunk)  // FIN inside a chunk
        var lie = f.chunkFrames(0..<3)
        lie[9 + 4096 + 9 + 100] ^= 1
        let (ev, _) = run(m, lie, count: 3, rng: &rng)
        #expect(reason(ev) == .hashMismatch && ev.first == .chunk(index: 0) && ev.count == 2)
        #expect(r(f.chunkFrames(1..<2)) == .unexpectedChunk)
        #expect(r(f.chunkFrames(0..<2)) == .incomplete)
        #expect(r([0x07]) == .malformedFrame)
        #expect(r(f.manifestFrame) == .malformedFrame)
        // With the hashes left to the shell, a flipped byte is handed on as whole, not verified.
        let (deferred, _) = run(m, lie, count: 3, verifies: false, rng: &rng)
        #expect(deferred == [.chunk(index: 0), .chunk(index: 1), .chunk(index: 2), .done])
        // An ERROR frame ends it as the peer's answer.
        #expect(run(m, Model.Frame.error(.notFound, "gone"), rng: &rng).0 == [.peerError(.notFound, "gone")])
    }

    @Test func aPeerThatStreamsSlowlyForever_timesOut() {
        var rng = SeededRandom(seed: testSeed(44))
        let f = Fixture(size: 10_000, rng: &rng)
        let m = lmf2(f.blob)
        var d = Model.MemoryDownload(manifest: m, first: 0, count: 3, chunkTimeout: .seconds(1), now: .zero)
        var dst = [UInt8](repeating: 0, count: Int(m.size))
        let frames = f.chunkFrames(0..<3)
        var t = Instant.zero
        for i in 0..<20 {  // a byte every 100 ms: no whole chunk within the deadline
            t = .zero + .milliseconds(100 * Int64(i))
            _ = frames[i..<(i + 1)].withUnsafeBytes { raw in dst.withUnsafeMutableBytes { d.onData(raw, into: $0, now: t) } }
            if !d.onTimeout(now: t).isEmpty { break }
        }
        #expect(d.isFinished && t <= .zero + .seconds(1))
    }

    @Test func memoryDownload_onHostileStreams_neverTraps_andNeverVerifiesABadChunk() {
        let seed = testSeed(45)
        var rng = SeededRandom(seed: seed)
        let f = Fixture(size: 20_000, rng: &rng)
        let m = lmf2(f.blob)
        for i in 0..<2_000 {
            var b = rng.below(3) == 0 ? rng.bytes(rng.below(64)) : rng.damaged(f.chunkFrames(0..<m.chunkCount))
            if rng.below(4) == 0 { b = Array(b.prefix(rng.below(b.count + 1))) }
            let (ev, dst) = run(m, b, rng: &rng)
            for case .chunk(let c) in ev {
                let o = Int(m.chunkOffset(c))
                #expect(dst[o..<(o + m.chunkLength(c))].elementsEqual(f.chunk(c)), "seed \(seed), case \(i), chunk \(c)")
            }
        }
    }
}
