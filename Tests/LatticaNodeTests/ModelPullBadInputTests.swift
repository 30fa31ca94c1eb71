import Foundation
import LatticaAPI
import LatticaCore
import LatticaModel
import Testing
@testable import LatticaNode

/// A responder whose model-ref answer leads to bad bytes: node 1 publishes a tampered in-memory
/// model under the id it answers with, and node 0's pull refuses it before it touches the
/// model, counts it (`rejected`) and reports it (the run's reports, with the reason).
@Suite(.serialized) struct ModelPullBadInputTests {
    let h = TrainingServiceTests()
    let p = ModelPullTests()
    let n = 40_000  // 160 KB: 3 chunks of 64 KiB

    static func manifest(_ t: [Float]) -> Model.Manifest {
        let size = 4 * t.count
        // One thread (Model.chunkHashes itself): `hashInParallel`'s concurrentPerform is for the
        // daemon's worker threads, not a test's task.
        let hashes = t.withUnsafeBytes { Model.chunkHashes($0, chunkShift: 16, range: 0..<((size + (1 << 16) - 1) >> 16)) }
        return Model.Manifest(chunkListShift: 16, size: UInt64(size), chunkHashes: hashes)
    }

    /// Node 1 publishes θ1 as step `step` and answers with the id of `manifest`, serving `served`.
    func publishTampered(_ d: Daemon, step: Int, theta: [Float], manifest m: Model.Manifest, served: [Float]) async throws {
        let t = try await h.train(d)
        try await d.loop.submit { _ in
            t.run?.published = (step, theta)
            t.refs.published = (t.refKey(step: step, theta), m.id)
            d.service(ModelService.self)!.memory[m.id] = ModelService.MemoryModel(manifest: m, theta: served, slot: "test")
        }
    }

    /// Node 0 steps alone against node 1's tampered answer; returns its result and its report on node 1.
    func pullTampered(manifest: (_ honest: [Float]) -> (Model.Manifest, [Float])) async throws -> (OuterStepResult, String?, [Float]) {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await p.daemons(2, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        let run = try await h.startRun(ds, name: "bad")
        for d in ds { let t = try await h.train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [Float](repeating: 0, count: n)) } }
        let honest = p.theta(1, n)
        let (m, served) = manifest(honest)
        try await publishTampered(ds[1], step: 0, theta: honest, manifest: m, served: served)
        let own = p.theta(0, n)
        let (phi, res) = try await h.step(ds[0], 0, own)
        return (res, try await p.reportReason(ds, run, by: 0, against: 1), phi)
    }

    /// `fetched`: the model arrived whole and the averaging core refused it (it is then listed
    /// among the partners pulled, as for an inline reply it refuses).
    func expectRefused(_ r: (OuterStepResult, String?, [Float]), _ reason: String, fetched: Bool = false) {
        #expect((fetched || r.0.partners.isEmpty) && r.0.rejected >= 1, "\(r.0)")
        #expect(r.1 == reason, "reported \(r.1 ?? "nothing")")
        // Nothing of the bad model reached φ: it is our own θ (mean of one, α = 1).
        #expect(h.close(r.2, p.theta(0, n)))
    }

    @Test func aChunkThatDoesNotMatchItsHash_isRefused() async throws {
        expectRefused(try await pullTampered { honest in
            var served = honest
            served[20_000] += 1  // in chunk 1
            return (Self.manifest(honest), served)
        }, "model_hash_mismatch")
    }

    @Test func aModelOfAnotherShape_isRefused_beforeAnyChunk() async throws {
        expectRefused(try await pullTampered { honest in
            let other = honest + [1]
            return (Self.manifest(other), other)
        }, "model_shape")
    }

    @Test func aModelWithNaN_isRefused() async throws {
        expectRefused(try await pullTampered { honest in
            var bad = honest
            bad[39_999] = .nan
            return (Self.manifest(bad), bad)
        }, "nonFinite", fetched: true)
    }

    @Test func theModelOfAnotherStep_givenAgain_isRefused() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await p.daemons(2, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        let run = try await h.startRun(ds, name: "replay")
        for d in ds { let t = try await h.train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [Float](repeating: 0, count: n)) } }
        let honest = p.theta(1, n), m = Self.manifest(honest)
        try await publishTampered(ds[1], step: 0, theta: honest, manifest: m, served: honest)
        let (_, first) = try await h.step(ds[0], 0, p.theta(0, n))
        #expect(first.partners == [ds[1].peerId.description] && first.rejected == 0, "\(first)")
        // Step 1: the same model again, claimed as θ of step 1.
        try await publishTampered(ds[1], step: 1, theta: honest, manifest: m, served: honest)
        let (_, second) = try await h.step(ds[0], 1, p.theta(0, n))
        #expect(second.partners.isEmpty && second.rejected >= 1, "\(second)")
        #expect(try await p.reportReason(ds, run, by: 0, against: 1) == "model_step_mismatch")
    }
}
