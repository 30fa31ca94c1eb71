import Foundation
import LatticaCore
import LatticaData
import LatticaLearning
import Testing

@Suite struct ModelFileTests {
    init() { _ = BLASSetup.installed }  // OpenBLAS, as the trainer uses (latticad keeps the portable loops)
    static let arch = MLPArchitecture(sizes: [4, 3, 2])
    static func params() -> [Float] { var r = SeededRandom(seed: 1); return arch.initialParameters(rng: &r) }

    @Test func modelFile_roundTrips_andDescribesItsLayers() throws {
        let f = ModelFile(architecture: Self.arch, parameters: Self.params())
        let back = try ModelFile(decoding: f.encoded())
        #expect(back == f)
        #expect(back.tensors.map(\.tensor.shape) == [[4, 3], [3], [3, 2], [2]])
        let (arch, p) = try #require(back.mlp())
        #expect(arch == Self.arch && p == Self.params())
    }

    @Test func contentAddress_isTheSHA256OfTheBody_andChangesWithOneWeight() {
        let f = ModelFile(architecture: Self.arch, parameters: Self.params())
        let bytes = f.encoded()
        #expect(f.id == PureSHA256.hash(bytes.dropLast(32)))
        var p = Self.params(); p[3] += 1e-3
        #expect(ModelFile(architecture: Self.arch, parameters: p).id != f.id)
    }

    @Test func truncatedOrCorruptFiles_failWithAClearError() {
        let bytes = ModelFile(architecture: Self.arch, parameters: Self.params()).encoded()
        for cut in [0, 3, 10, bytes.count / 2, bytes.count - 1] {
            #expect(throws: ModelFileError.self) { try ModelFile(decoding: Array(bytes.prefix(cut))) }
        }
        var flipped = bytes; flipped[40] ^= 1
        #expect(throws: ModelFileError.checksumMismatch) { try ModelFile(decoding: flipped) }
    }

    @Test func otherVersion_isRefusedByName() {
        var bytes = ModelFile(architecture: Self.arch, parameters: Self.params()).encoded()
        bytes[4] = 2
        #expect(throws: ModelFileError.unsupportedVersion(found: 2, supported: 1)) { try ModelFile(decoding: bytes) }
    }

    @Test func nanOrInfinity_isRefused_withTheTensorNamed() {
        var p = Self.params(); p[Self.arch.biasOffset(1)] = .infinity
        let bytes = ModelFile(architecture: Self.arch, parameters: p).encoded()
        #expect(throws: ModelFileError.nonFinite(tensor: "b1", index: 0)) { try ModelFile(decoding: bytes) }
        #expect(ModelFileError.nonFinite(tensor: "b1", index: 0).description.contains("b1"))
    }

    @Test func decoder_neverTraps_onRandomAndMutatedInput() {
        var rng = SeededRandom(seed: 77)
        let valid = ModelFile(architecture: Self.arch, parameters: Self.params()).encoded()
        for i in 0..<3000 {
            var b: [UInt8]
            if i % 3 == 0 { b = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            else { b = valid; for _ in 0..<(1 + Int(rng.next() % 4)) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) } }
            if i % 5 == 0 { b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1)))) }
            _ = try? ModelFile(decoding: b)
        }
        // A header claiming a huge tensor is refused without allocating it (checksum recomputed).
        var huge = Array(valid.dropLast(32))
        let shapeAt = 4 + 2 + 1 + 1 + 2 + "mlp:relu".utf8.count + 4 + 2 + 2 + 1
        huge[shapeAt] = 0xff; huge[shapeAt + 1] = 0xff; huge[shapeAt + 2] = 0xff; huge[shapeAt + 3] = 0x7f
        huge += PureSHA256.hash(huge)
        #expect(throws: ModelFileError.self) { try ModelFile(decoding: huge) }
    }

    @Test func checkpoint_isWrittenAtomically_andRestoresAdamState() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lattica-ckpt-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var adam = Adam(parameterCount: Self.arch.parameterCount, learningRate: 1e-3)
        var p = Self.params()
        adam.step(parameters: &p, gradient: p)
        let path = dir + "/model.ltcm"
        try DataFiles.saveCheckpoint(Checkpoint(architecture: Self.arch, parameters: p, adam: adam, step: 7), to: path)
        try DataFiles.saveCheckpoint(Checkpoint(architecture: Self.arch, parameters: p, adam: adam, step: 8), to: path)
        let back = try DataFiles.loadCheckpoint(path)
        #expect(back.step == 8 && back.parameters == p && back.adam == adam)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.ltcm"])  // no temp file left
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/bad.ltcm"))
        #expect { try DataFiles.loadModel(dir + "/bad.ltcm") } throws: { "\($0)".contains("bad.ltcm") }
    }
}
