import Foundation
import LatticaCore
import LatticaCrypto
import Testing
@testable import LatticaModel

/// The seed of a randomised test: `LATTICA_MODEL_SEED` when set (to replay a failure), else `fallback`.
func testSeed(_ fallback: UInt64) -> UInt64 {
    ProcessInfo.processInfo.environment["LATTICA_MODEL_SEED"].flatMap { UInt64($0) } ?? fallback
}

extension SeededRandom {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }

    /// A few bytes flipped, inserted, deleted, or the tail cut off.
    mutating func damaged(_ input: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0...below(3) {
            let at = b.isEmpty ? 0 : below(b.count)
            switch below(4) {
            case 0: if !b.isEmpty { b[at] ^= UInt8(truncatingIfNeeded: next() | 1) }
            case 1: b.insert(UInt8(truncatingIfNeeded: next()), at: at)
            case 2: if !b.isEmpty { b.remove(at: at) }
            default: b = Array(b.prefix(at))
            }
        }
        return b
    }
}

/// A blob, its manifest, and the server's frames for it.
struct Fixture {
    let blob: [UInt8]
    let manifest: Model.Manifest

    init(size: Int, chunkShift: UInt8 = 12, rng: inout SeededRandom) {
        blob = rng.bytes(size)
        var b = Model.ManifestBuilder(chunkShift: chunkShift)
        var off = 0
        while off < blob.count {  // pieces of random sizes: the builder must not care
            let n = min(blob.count - off, 1 + rng.below(3 * (1 << Int(chunkShift)) / 2))
            b.update(Array(blob[off..<off + n]))
            off += n
        }
        manifest = b.finish()!
    }

    func chunk(_ i: Int) -> [UInt8] {
        let o = Int(manifest.chunkOffset(i))
        return Array(blob[o..<o + manifest.chunkLength(i)])
    }

    var manifestFrame: [UInt8] { Model.Frame.manifestHeader(length: manifest.encoded.count) + manifest.encoded }

    func chunkFrames(_ r: Range<Int>) -> [UInt8] {
        r.flatMap { Model.Frame.chunkHeader(index: $0, length: manifest.chunkLength($0)) + chunk($0) }
    }
}

func feed(_ d: inout Model.Download, _ bytes: [UInt8], splits rng: inout SeededRandom, now: Instant = .zero) -> [Model.Download.Event] {
    var out: [Model.Download.Event] = []
    var off = 0
    while off < bytes.count {
        let n = min(bytes.count - off, 1 + rng.below(9000))
        out += d.onData(bytes[off..<off + n], now: now)
        off += n
    }
    return out
}

func rejection(_ events: [Model.Download.Event]) -> Model.Rejection? {
    for e in events { if case .rejected(let r, _) = e { return r } }
    return nil
}

@Suite struct ManifestTests {
    @Test func builder_hashesEveryChunkAndTheBlob_andTheEncodingRoundTrips() {
        var rng = SeededRandom(seed: testSeed(11))
        for size in [1, 4095, 4096, 4097, 3 * 4096, 50_000] {
            let f = Fixture(size: size, rng: &rng)
            let m = f.manifest
            #expect(m.size == UInt64(size) && m.chunkCount == (size + 4095) / 4096)
            #expect(m.blobHash == SHA256.hash(f.blob))
            for i in 0..<m.chunkCount { #expect(m.chunkHashes[i] == SHA256.hash(f.chunk(i))) }
            #expect((0..<m.chunkCount).map(m.chunkLength).reduce(0, +) == size)
            let e = m.encoded
            #expect(e.count == 45 + 32 * m.chunkCount)
            #expect(Model.Manifest(decoding: e[...], maxSize: 1 << 30, maxChunks: 1000) == m)
            #expect(m.id == ModelID(manifestBytes: e) && ModelID(hex: m.id.hex) == m.id)
        }
    }

    /// Docs/MODEL.md's example, byte for byte.
    @Test func theDocumentedExample_hasTheDocumentedId() {
        var b = Model.ManifestBuilder(chunkShift: 12)
        b.update(Array("hello".utf8))
        let m = b.finish()!
        #expect(m.encoded.count == 77 && Array(m.encoded.prefix(13)) == [0x4C, 0x4D, 0x46, 0x31, 0x0C, 0, 0, 0, 0, 0, 0, 0, 5])
        #expect(m.id.hex == "9e3c3a591255c01cd4aa5e38786e24de0eac3450fcec80d42175b4369933360c")
        #expect(Model.Frame.chunkHeader(index: 0, length: 5) == [0x02, 0, 0, 0, 0, 0, 0, 0, 5])
        #expect(Model.Request.chunks(m.id, first: 0, count: 1).encoded == [0x02] + m.id.bytes + [0, 0, 0, 0, 0, 0, 0, 1])
        let notFound = Model.Frame.error(.notFound, "model \(m.id.hex) is not stored here")
        #expect(Array(notFound.prefix(4)) == [0x03, 0x01, 0x00, 0x59])
    }

    @Test func decoder_refusesWrongMagicShiftSizeAndLength() {
        var rng = SeededRandom(seed: testSeed(12))
        let m = Fixture(size: 10_000, rng: &rng).manifest
        let e = m.encoded
        var bad = e; bad[0] = 0x58
        #expect(Model.Manifest(decoding: bad[...], maxSize: 1 << 30, maxChunks: 100) == nil)
        bad = e; bad[4] = 25
        #expect(Model.Manifest(decoding: bad[...], maxSize: 1 << 30, maxChunks: 100) == nil)
        #expect(Model.Manifest(decoding: (e + [0])[...], maxSize: 1 << 30, maxChunks: 100) == nil)
        #expect(Model.Manifest(decoding: e.dropLast(), maxSize: 1 << 30, maxChunks: 100) == nil)
        #expect(Model.Manifest(decoding: e[...], maxSize: 9_999, maxChunks: 100) == nil)  // over the size limit
        #expect(Model.Manifest(decoding: e[...], maxSize: 1 << 30, maxChunks: 2) == nil)  // 3 chunks
        bad = e; for i in 5..<13 { bad[i] = 0 }  // size 0
        #expect(Model.Manifest(decoding: bad[...], maxSize: 1 << 30, maxChunks: 100) == nil)
        #expect(ModelID(hex: String(repeating: "g", count: 64)) == nil && ModelID(hex: "00") == nil)
    }

    @Test func missingRuns_coverExactlyTheMissingChunks() {
        #expect(Model.missingRuns(have: [true, false, false, true, false]).map { [$0.first, $0.count] } == [[1, 2], [4, 1]])
        #expect(Model.missingRuns(have: [false, false, false], maxRun: 2).map { [$0.first, $0.count] } == [[0, 2], [2, 1]])
        #expect(Model.missingRuns(have: [true, true]).isEmpty)
    }
}

@Suite struct RequestTests {
    @Test func requests_roundTrip_andAnythingElseIsMalformedOrIncomplete() {
        let id = ModelID(bytes: [UInt8](repeating: 7, count: 32))!
        for r in [Model.Request.manifest(id), .chunks(id, first: 3, count: 9)] {
            let e = r.encoded
            #expect(Model.Request.decode(e[...], finished: true) == .request(r))
            #expect(Model.Request.decode(e.dropLast(), finished: false) == .incomplete)
            #expect(Model.Request.decode(e.dropLast(), finished: true) == .malformed)
            #expect(Model.Request.decode((e + [0])[...], finished: false) == .malformed)
        }
        #expect(Model.Request.decode(Model.Request.chunks(id, first: 0, count: 0).encoded[...], finished: true) == .malformed)
        #expect(Model.Request.decode([9][...], finished: false) == .malformed)
        #expect(Model.Request.decode([][...], finished: true) == .malformed)
    }

    @Test func plan_answersUnknownModelsAndBadRangesWithErrors() {
        var rng = SeededRandom(seed: testSeed(13))
        let m = Fixture(size: 10_000, rng: &rng).manifest  // 3 chunks
        #expect(Model.plan(.manifest(m.id), manifest: nil) == .error(.notFound, "model \(m.id.hex) is not stored here"))
        #expect(Model.plan(.manifest(m.id), manifest: m) == .manifest)
        #expect(Model.plan(.chunks(m.id, first: 1, count: 2), manifest: m) == .chunks(first: 1, count: 2))
        if case .error(.badRange, _) = Model.plan(.chunks(m.id, first: 1, count: 3), manifest: m) {} else { Issue.record("range past the end accepted") }
        if case .error(.badRange, _) = Model.plan(.chunks(m.id, first: 3, count: 1), manifest: m) {} else { Issue.record("first past the end accepted") }
    }
}
