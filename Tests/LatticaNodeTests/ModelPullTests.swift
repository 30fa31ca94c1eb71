import Foundation
import LatticaAPI
import LatticaCore
import LatticaCRDT
import LatticaLearning
import LatticaModel
import Testing
@testable import LatticaNode

/// Averaging pulls over `/lattica/model/1.0.0` between in-process daemons: the avg reply names
/// the responder's θ as an in-memory model (status 03), and the puller fetches its chunks into
/// its pull buffer, each checked against the manifest. Models of several chunks (64 KiB each in
/// these tests, to keep the test process small beside the leak tests; 1 MiB in a run).
@Suite(.serialized) struct ModelPullTests {
    let h = TrainingServiceTests()

    /// `TrainingServiceTests`' connected daemons, publishing 64 KiB chunks.
    func daemons(_ n: Int, _ tmp: TempDir) async throws -> [Daemon] {
        let out = try await h.daemons(n, tmp)
        for d in out { let t = try await h.train(d); try await d.loop.submit { _ in t.refs.chunkShift = 16 } }
        return out
    }

    /// θ_i = i + 1 + a ramp, so that every chunk differs.
    func theta(_ i: Int, _ n: Int) -> [Float] { (0..<n).map { Float(i + 1) + Float($0 % 89) * 1e-4 } }

    func refs(_ d: Daemon) async throws -> (chunks: Int, resumes: Int, bytes: Int) {
        let t = try await h.train(d)
        return try await d.loop.submit { _ in (t.refs.chunksFetched, t.refs.resumes, t.refs.bytesFetched) }
    }

    func reportReason(_ ds: [Daemon], _ run: String, by: Int, against: Int) async throws -> String? {
        try await ds[by].loop.submit { _ -> String? in
            guard case .map(let m)? = ds[by].service(CRDTService.self)!.crdt.state.object(at: "run/\(run)/reports/\(ds[by].peerId)") else { return nil }
            return m[ds[against].peerId.description].flatMap(CRDT.Report.init(value:))?.reason
        }
    }

    @Test func threeDaemons_averageOverTheModelProtocol_everyChunkFetchedOnce() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(3, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        _ = try await h.startRun(ds, name: "mp")
        let n = 40_000  // 160 KB: 3 chunks
        for d in ds { let t = try await h.train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [Float](repeating: 0, count: n)) } }
        async let a = h.step(ds[0], 0, theta(0, n))
        async let b = h.step(ds[1], 0, theta(1, n))
        async let c = h.step(ds[2], 0, theta(2, n))
        let results = try await [a, b, c]
        let ts = (0..<3).map { theta($0, n) }
        let mean = (0..<n).map { j in (ts[0][j] + ts[1][j] + ts[2][j]) / 3 }
        for (phi, res) in results {
            #expect(res.partners.count == 2, "\(res)")
            #expect(h.close(phi, mean))
            #expect(res.rejected == 0)
        }
        for d in ds {
            let r = try await refs(d)
            #expect(r.chunks == 6 && r.bytes == 2 * 4 * n && r.resumes == 0, "\(r)")  // 2 peers × 3 chunks, each once
        }
    }

    @Test func aPullCutAfterFourChunks_resumesFromTheFifth_fromTheSamePeer() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(2, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        _ = try await h.startRun(ds, name: "cut")
        let n = 160_000  // 640 KB: 10 chunks
        for d in ds { let t = try await h.train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [Float](repeating: 0, count: n)) } }
        let t0 = try await h.train(ds[0])
        let peer = ds[1].peerId, addr = ds[1].listenAddrs[0]
        try await ds[0].loop.submit { _ in
            t0.refs.onChunk = { [weak t0] p, i in
                guard let t0, p == peer, i == 3 else { return }
                t0.refs.onChunk = nil
                t0.swarm.disconnect(peer)  // inside chunk 3's callback: the connection is gone
                _ = t0.loop.scheduleTimer(after: .milliseconds(200)) { _ in t0.swarm.dial(addr) { _ in } }
            }
        }
        async let a = h.step(ds[0], 0, theta(0, n))
        async let b = h.step(ds[1], 0, theta(1, n))
        let (ra, _) = try await (a, b)
        #expect(ra.1.partners == [peer.description], "\(ra.1)")
        let (x, y) = (theta(0, n), theta(1, n))
        let mean = (0..<n).map { j in (x[j] + y[j]) / 2 }
        #expect(h.close(ra.0, mean))
        let r = try await refs(ds[0])
        let resumedFrom = try await ds[0].loop.submit { _ in t0.refs.chunksResumedFrom }
        // Resumed, not restarted: chunks 0–3 are kept, 4–9 come on the new stream, each counted once.
        #expect(r.resumes >= 1 && resumedFrom == 4 && r.chunks == 10 && r.bytes == 4 * n, "\(r) from \(resumedFrom)")
        #expect(ra.1.bytesIn < 4 * n + 4 * n / 5, "bytes in \(ra.1.bytesIn): the first four chunks were not fetched again")
    }

    @Test func aDaemonFromBeforeModelRefs_isPulledInline() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let ds = try await daemons(2, tmp)
        defer { Task { for d in ds { await d.stop() } } }
        _ = try await h.startRun(ds, name: "old")
        let n = 30_000
        for d in ds { let t = try await h.train(d); try await d.loop.submit { _ in try t.setStart(step: 0, phi: [Float](repeating: 0, count: n)) } }
        let t1 = try await h.train(ds[1])
        try await ds[1].loop.submit { _ in t1.decodesVersion2 = false }
        async let a = h.step(ds[0], 0, theta(0, n))
        async let b = h.step(ds[1], 0, theta(1, n))
        let (ra, _) = try await (a, b)
        #expect(ra.1.partners == [ds[1].peerId.description] && ra.1.rejected == 0, "\(ra.1)")
        let t0 = try await h.train(ds[0])
        let legacy = try await ds[0].loop.submit { _ in t0.refs.legacy }
        #expect(legacy == [ds[1].peerId])
        #expect(try await refs(ds[0]).chunks == 0)
    }
}
