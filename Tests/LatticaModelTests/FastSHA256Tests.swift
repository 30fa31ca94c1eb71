import LatticaCore
import LatticaCrypto
import LatticaSHA
import Testing
@testable import LatticaModel

@Suite struct FastSHA256Tests {
    func hex(_ b: [UInt8]) -> String { Model.hex(b) }

    /// FIPS 180-4 / NIST vectors, through the dispatch the transfer uses.
    @Test func knownVectors() {
        #expect(hex(Model.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(Model.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Model.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = Model.Hasher()
        let a = [UInt8](repeating: 0x61, count: 1000)
        for _ in 0..<1000 { h.update(a) }
        #expect(hex(h.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// The SHA-NI code against libsodium on random lengths (every padding case) fed in random pieces.
    @Test func matchesLibsodium_onRandomInputsAndSplits() throws {
        guard FastSHA256.isAvailable else { return }  // nothing to compare on a CPU without SHA-NI
        let seed = testSeed(0x5A_A1)
        var rng = SeededRandom(seed: seed)
        for n in Array(0...130) + (0..<200).map({ _ in rng.below(20_000) }) {
            let data = rng.bytes(n)
            #expect(data.withUnsafeBytes { FastSHA256.hash($0) } == SHA256.hash(data), "seed \(seed) length \(n)")
            var h = FastSHA256.Hasher()
            var off = 0
            while off < n {
                let k = min(n - off, rng.below(150) + 1)
                data[off..<off + k].withUnsafeBytes { h.update($0) }
                off += k
            }
            #expect(h.finalize() == SHA256.hash(data), "seed \(seed) length \(n), split")
        }
    }
}
