import LatticaCore
import Testing
@testable import LatticaCRDT

@Suite struct BenchmarkTests {
    /// Applies 100,000 signed deltas in batches of 100 (one signature each) and prints the rate.
    /// Asserts what was applied, not the speed (debug builds and shared CPUs vary).
    @Test func test_applyingSignedBatches_appliesEveryDelta_andPrintsTheRate() {
        var rng = SeededRandom(seed: 41)
        let author = makeSigner(&rng)
        var node = CRDT.Instance(signer: makeSigner(&rng), seed: 1)
        let n = 100_000
        let messages = CRDT.Benchmark.signedMessages(count: n, batchSize: 100, batchesPerMessage: 10, signer: author, wall: wall0)
        let clock = ContinuousClock()
        var result = (deltas: 0, persists: 0)
        let elapsed = clock.measure {
            result = CRDT.Benchmark.apply(messages, to: &node, from: author.peerId, wall: wall0)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("CRDT apply: \(n) signed deltas in batches of 100 in \(seconds) s = \(Int(Double(n) / seconds)) deltas/s (persist directives: \(result.persists))")
        #expect(result.deltas == n && result.persists == n / 100)
        #expect(node.state.entries.count == 10_000)
        #expect(node.versions[author.peerId] == UInt64(n))
    }
}
