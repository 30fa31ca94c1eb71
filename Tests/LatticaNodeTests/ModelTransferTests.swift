import Foundation
import LatticaAPI
import LatticaCore
import LatticaModel
import Testing
@testable import LatticaNode

/// Model transfer (`/lattica/model/1.0.0`) between daemons in this process: whole models, resume
/// after a cut connection, lying peers, and a pull through the DHT's provider records.
@Suite struct ModelTransferTests {
    func daemon(_ tmp: TempDir, _ name: String, services: [any NodeService.Type] = NodeServices.all,
                sections: [String: [String: TOML.Value]] = [:], bootstrap: Daemon? = nil) async throws -> Daemon {
        var c = NodeConfig(dataDir: tmp.path + "/" + name)
        c.metricsAddr = nil
        c.sections = sections
        if let bootstrap { c.bootstrap = [bootstrap.listenAddrs[0].description] }
        return try await Daemon.start(config: c, services: services)
    }

    func client(_ d: Daemon) throws -> ControlClient { try ControlClient(socketPath: d.config.controlSocketPath, timeoutSeconds: 60) }

    func connect(_ a: Daemon, _ b: Daemon) async throws {
        let _: PeerId = try await a.onLoop { s, done in s.dial(b.listenAddrs[0]) { done($0) } }
        _ = try await a.pingPeer(b.peerId, count: 1)  // identify was opened first: answered by now
    }

    /// Writes `bytes` to a file and pushes it into `d`'s store.
    func push(_ d: Daemon, _ tmp: TempDir, _ bytes: [UInt8], chunkShift: Int) async throws -> ModelPushResult {
        let path = tmp.path + "/upload-\(d.peerId.description.suffix(6))-\(bytes.count)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let c = try client(d)
        return try await blocking { try c.call(Methods.ModelPush.self, .init(path: path, chunkShift: chunkShift)) }
    }

    /// The raw answer line of a call (to read error codes).
    func raw(_ d: Daemon, _ method: String, _ params: [String: JSONValue]) async throws -> String {
        let c = try client(d)
        let line = try await blocking { try c.roundTrip(method, params: .object(params)) }
        return String(decoding: line, as: UTF8.self)
    }

    func exported(_ d: Daemon, _ tmp: TempDir, _ hash: String) async throws -> [UInt8] {
        let path = tmp.path + "/export-\(d.peerId.description.suffix(6))-\(hash.prefix(8))"
        let c = try client(d)
        _ = try await blocking { try c.call(Methods.ModelExport.self, .init(hash: hash, path: path)) }
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func aMultiChunkModel_movesBetweenTwoDaemons_andIsStoredPrivately() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = try await daemon(tmp, "a"), b = try await daemon(tmp, "b")
        try await connect(a, b)
        var rng = SeededRandom(seed: testSeed(0x30DE_0001))
        let blob = (0..<(3 << 20) + 123).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let pushed = try await push(b, tmp, blob, chunkShift: 16)
        #expect(pushed.chunks == 49 && pushed.size == UInt64(blob.count))
        let ca = try client(a), hash = pushed.hash, peerB = b.peerId.description
        let r = try await blocking { try ca.call(Methods.ModelPull.self, .init(hash: hash, peer: peerB)) }
        #expect(r.chunksFetched == 49 && r.chunksResumed == 0 && r.bytesFetched == UInt64(blob.count) && r.peer == peerB && !r.alreadyStored)
        #expect(try await exported(a, tmp, hash) == blob)
        let ls = try await blocking { try ca.call(Methods.ModelList.self, NoParams()) }
        #expect(ls.models.map(\.hash) == [hash] && ls.partial.isEmpty)
        let mode = try FileManager.default.attributesOfItem(atPath: tmp.path + "/a/models/" + hash)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A second pull finds it stored; an unknown hash is a clean not_found.
        #expect(try await blocking { try ca.call(Methods.ModelPull.self, .init(hash: hash, peer: peerB)) }.alreadyStored)
        let unknown = String(repeating: "ab", count: 32)
        let line = try await raw(a, "model.pull", ["hash": .string(unknown), "peer": .string(peerB)])
        #expect(line.contains("\"not_found\"") && line.contains("not stored"), "\(line)")
        #expect(try await raw(a, "model.export", ["hash": .string(unknown), "path": .string(tmp.path + "/x")]).contains("\"not_found\""))
        #expect(try await raw(a, "model.push", ["path": .string("relative/file")]).contains("bad_request"))
        #expect(try await raw(a, "model.push", ["path": .string(tmp.path + "/missing")]).contains("cannot open"))
        await a.stop(); await b.stop()
    }

    @Test func aPullCutMidTransfer_resumes_fetchingOnlyTheMissingChunks() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = try await daemon(tmp, "a"), b = try await daemon(tmp, "b")
        try await connect(a, b)
        var rng = SeededRandom(seed: testSeed(0x30DE_0002))
        let blob = (0..<(4 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let pushed = try await push(b, tmp, blob, chunkShift: 14)  // 256 chunks of 16 KiB
        #expect(pushed.chunks == 256)
        // Cut the connection once chunk 40 is on disk (an event, not a sleep).
        let peerB = b.peerId
        try await a.loop.submit { _ in
            let m = a.service(ModelService.self)!
            m.onChunkStored = { [weak m] _, i in
                guard i == 40, let m else { return }
                m.onChunkStored = nil
                m.swarm.disconnect(peerB)  // inside the chunk's callback: no later chunk of this read is written
            }
        }
        let ca = try client(a), hash = pushed.hash
        let first = try await raw(a, "model.pull", ["hash": .string(hash), "peer": .string(peerB.description)])
        #expect(first.contains("pull again to resume"), "\(first)")
        let ls = try await blocking { try ca.call(Methods.ModelList.self, NoParams()) }
        #expect(ls.models.isEmpty && ls.partial.map(\.hash) == [hash] && ls.partial[0].bytesOnDisk == 41 << 14 && ls.partial[0].size == UInt64(blob.count))
        try await connect(a, b)
        let r = try await blocking { try ca.call(Methods.ModelPull.self, .init(hash: hash, peer: peerB.description)) }
        #expect(r.chunksResumed == 41, "\(r)")  // chunks 0...40: the cut came inside chunk 40's callback
        #expect(r.chunksFetched == 256 - r.chunksResumed && r.bytesFetched == UInt64(r.chunksFetched) << 14, "\(r)")
        #expect(try await exported(a, tmp, hash) == blob)
        #expect(try await blocking { try ca.call(Methods.ModelList.self, NoParams()) }.partial.isEmpty)
        await a.stop(); await b.stop()
    }

    @Test(arguments: LyingModel.Lie.allCases)
    func aLyingPeer_isRejected_andNothingBadReachesTheStore(_ lie: LyingModel.Lie) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = try await daemon(tmp, "a", sections: ["model": ["chunk_timeout_s": .float(1)]])
        let b = try await daemon(tmp, "b", services: NodeServices.all.filter { $0 != ModelService.self } + [LyingModel.self],
                                 sections: ["liar": ["lie": .string(lie.rawValue)]])
        try await connect(a, b)
        let t0 = ContinuousClock.now
        let line = try await raw(a, "model.pull", ["hash": .string(LyingModel.fixture.id.hex), "peer": .string(b.peerId.description)])
        #expect(line.contains("\"failed\"") && line.contains(lie.expected), "\(lie): \(line)")
        #expect(ContinuousClock.now - t0 < .seconds(8))
        let ls = try await blocking { try self.client(a).call(Methods.ModelList.self, NoParams()) }
        #expect(ls.models.isEmpty)
        // Only verified chunks were written: those before the lie.
        let onDisk = ls.partial.first?.bytesOnDisk ?? 0
        #expect(onDisk == UInt64(lie.goodChunks) << LyingModel.chunkShift, "\(lie): \(onDisk) bytes on disk")
        await a.stop(); await b.stop()
    }

    @Test func threeDaemons_pullThroughTheDHTsProviderRecords() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let c = try await daemon(tmp, "c")
        let a = try await daemon(tmp, "a", bootstrap: c), b = try await daemon(tmp, "b", bootstrap: c)
        try await connect(a, c)
        try await connect(b, c)
        var rng = SeededRandom(seed: testSeed(0x30DE_0003))
        let blob = (0..<(1 << 20) + 5).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let pushed = try await push(b, tmp, blob, chunkShift: 16)
        #expect(pushed.announced >= 1)
        let ca = try client(a), hash = pushed.hash
        let r = try await blocking { try ca.call(Methods.ModelPull.self, .init(hash: hash)) }
        #expect(r.peer == b.peerId.description && r.chunksFetched == pushed.chunks)
        #expect(try await exported(a, tmp, hash) == blob)
        // a provides it now too: c's lookup finds both.
        for _ in 0..<50 {
            let ps = try await blocking { try self.client(c).call(Methods.DHTProviders.self, .init(key: "/lattica/model/" + hash)) }
            if ps.providers.count >= 2 { break }
            try await Task.sleep(for: .milliseconds(50))  // the announcement runs after the pull answered: no event to wait on
        }
        let ps = try await blocking { try self.client(c).call(Methods.DHTProviders.self, .init(key: "/lattica/model/" + hash)) }
        #expect(Set(ps.providers.map(\.peerId)) == [a.peerId.description, b.peerId.description])
        await a.stop(); await b.stop(); await c.stop()
    }
}

extension ModelTransferTests {
    /// Providers in the DHT, one of them lying. Alone, the liar fails the pull and what was
    /// verified of it stays; with an honest provider beside it, the next pull ends with the model
    /// (whichever it tries first) and fetches only what was missing.
    @Test func aLyingProvider_isPassedOver_forAnHonestOne() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let c = try await daemon(tmp, "c")
        let a = try await daemon(tmp, "a", bootstrap: c), honest = try await daemon(tmp, "h", bootstrap: c)
        let liar = try await daemon(tmp, "l", services: NodeServices.all.filter { $0 != ModelService.self } + [LyingModel.self],
                                    sections: ["liar": ["lie": .string(LyingModel.Lie.flipsAByte.rawValue)]], bootstrap: c)
        for d in [a, honest, liar] { try await connect(d, c) }
        let key = ModelService.providerKey(LyingModel.fixture.id), hash = LyingModel.fixture.id.hex
        let lc = try client(liar), cc = try client(c), ca = try client(a)
        #expect(try await blocking { try lc.call(Methods.DHTProvide.self, .init(key: key)) }.told >= 1)
        let first = try await raw(a, "model.pull", ["hash": .string(hash)])
        #expect(first.contains("hash_mismatch") && first.contains("2 of 10 chunks kept"), "\(first)")
        let pushed = try await push(honest, tmp, LyingModel.blob, chunkShift: LyingModel.chunkShift)
        #expect(pushed.hash == hash && pushed.announced >= 1)
        let providers = try await blocking { try cc.call(Methods.DHTProviders.self, .init(key: key)) }.providers.map(\.peerId)
        #expect(Set(providers) == [honest.peerId.description, liar.peerId.description])
        let r = try await blocking { try ca.call(Methods.ModelPull.self, .init(hash: hash)) }
        #expect(r.peer == honest.peerId.description && r.chunksResumed == 2 && r.chunksFetched == 8, "\(r)")
        #expect(try await exported(a, tmp, hash) == LyingModel.blob)
        for d in [a, honest, liar, c] { await d.stop() }
    }
}

extension ModelTransferTests {
    /// The server's memory bound: with `max_uploads = 1`, a second stream asking for chunks while
    /// the first is being served gets an ERROR frame with code 3 (busy), not a second chunk buffer.
    @Test func uploadsBeyondTheLimit_areAnsweredBusy() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let a = try await daemon(tmp, "a"), b = try await daemon(tmp, "b", sections: ["model": ["max_uploads": .integer(1)]])
        try await connect(a, b)
        var rng = SeededRandom(seed: testSeed(0x30DE_0005))
        let pushed = try await push(b, tmp, (0..<(4 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, chunkShift: 20)
        let id = ModelID(hex: pushed.hash)!, peerB = b.peerId
        // Both requests leave in one loop turn; each stream's first frame byte and ERROR code.
        let firsts: [[UInt8]] = try await a.onLoop { s, done in
            var heads: [[UInt8]] = [[], []]
            var finished = 0
            for k in 0..<2 {
                guard let r = s.openRawStream(peerB, Model.protocolID) else { done(.failure(SwarmError("no stream"))); return }
                r.onData = { bytes in if heads[k].count < 2 { heads[k] += bytes.prefix(2 - heads[k].count) } }
                r.onEnd = { _ in
                    finished += 1
                    if finished == 2 { done(.success(heads)) }
                }
                r.write(Model.Request.chunks(id, first: 0, count: 4).encoded)
                r.closeWrite()
            }
        }
        #expect(firsts.sorted { $0.lexicographicallyPrecedes($1) } == [[0x02, 0x00], [0x03, 0x03]], "\(firsts)")
        await a.stop(); await b.stop()
    }
}

/// A peer that serves one fixed model and lies about it in one way.
final class LyingModel: NodeService, @unchecked Sendable {
    static let name = "liar"
    static let chunkShift = 12
    static let blob: [UInt8] = {
        var rng = SeededRandom(seed: 0x11E5)
        return (0..<(10 << 12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }()
    static let fixture: Model.Manifest = {
        var b = Model.ManifestBuilder(chunkShift: UInt8(chunkShift))
        b.update(blob)
        return b.finish()!
    }()

    enum Lie: String, CaseIterable, Sendable {
        case flipsAByte, oversizesAChunk, truncatesAChunk, streamsSlowlyForever, sendsAHugeManifest, sendsAnotherManifest
        /// The reason named in the error.
        var expected: String {
            switch self {
            case .flipsAByte: "hash_mismatch"
            case .oversizesAChunk: "oversized_chunk"
            case .truncatesAChunk: "truncated_chunk"
            case .streamsSlowlyForever: "timeout"
            case .sendsAHugeManifest: "manifest_too_large"
            case .sendsAnotherManifest: "manifest_mismatch"
            }
        }
        /// Chunks the puller can verify before the lie.
        var goodChunks: Int {
            switch self {
            case .flipsAByte: 2
            case .oversizesAChunk, .streamsSlowlyForever: 1
            case .truncatesAChunk, .sendsAHugeManifest, .sendsAnotherManifest: 0
            }
        }
    }

    static func validate(section: TableReader) throws(ConfigError) {
        var r = section
        _ = try r.string("lie")
        try r.finish()
    }

    let lie: Lie
    let context: ServiceContext

    init(context: ServiceContext) throws(DaemonError) {
        var r = context.section
        lie = (try? r.string("lie")).flatMap { $0.flatMap(Lie.init(rawValue:)) } ?? .flipsAByte
        self.context = context
        let lie = self.lie, m = Self.fixture
        context.swarm.handleRawStreams(Model.protocolID) { [weak self] s in
            var request: [UInt8] = []
            s.onData = { request += $0 }
            s.onEnd = { _ in
                guard case .request(let req) = Model.Request.decode(request[...], finished: true) else { s.reset(); return }
                switch req {
                case .manifest:
                    switch lie {
                    case .sendsAHugeManifest: s.write(Model.Frame.manifestHeader(length: 2 << 20))
                    case .sendsAnotherManifest:
                        var other = m.encoded
                        other[50] ^= 1
                        s.write(Model.Frame.manifestHeader(length: other.count) + other)
                    default: s.write(Model.Frame.manifestHeader(length: m.encoded.count) + m.encoded)
                    }
                    s.closeWrite()
                case .chunks(_, let first, let count):
                    var out: [UInt8] = []
                    for i in first..<first + count {
                        var chunk = Array(Self.blob[Int(m.chunkOffset(i))..<Int(m.chunkOffset(i)) + m.chunkLength(i)])
                        switch (lie, i) {
                        case (.flipsAByte, 2): chunk[7] ^= 0x80
                        case (.oversizesAChunk, 1): chunk.append(0)
                        case (.truncatesAChunk, 0): out += Model.Frame.chunkHeader(index: i, length: chunk.count) + chunk.prefix(100)
                            s.write(out); s.closeWrite(); return
                        case (.streamsSlowlyForever, 1):
                            s.write(out + Model.Frame.chunkHeader(index: i, length: chunk.count))
                            self?.drip(s)
                            return
                        default: break
                        }
                        out += Model.Frame.chunkHeader(index: i, length: chunk.count) + chunk
                    }
                    s.write(out)  // 40 KiB: inside the first window
                    s.closeWrite()
                }
            }
        }
    }

    /// One byte every 100 ms, forever.
    func drip(_ s: RawStream) {
        context.timer(after: .milliseconds(100), repeating: .milliseconds(100)) { t in
            if s.write([0x55]) == 0 { t.cancel() }
        }
    }
}

/// The store's files on their own: the final check, the start-up listing, export.
@Suite struct ModelStoreTests {
    @Test func aFinishedBlobThatDoesNotMatch_isDiscarded_andTheListingSkipsBrokenManifests() throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let store = try ModelStore(dataDir: tmp.path)
        var rng = SeededRandom(seed: testSeed(0x30DE_0004))
        let blob = (0..<20_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let src = tmp.path + "/src"
        try Data(blob).write(to: URL(fileURLWithPath: src))
        let m = try store.importFile(src, chunkShift: 12, settings: Model.Settings())
        #expect(store.load(settings: Model.Settings()).models[m.id] == m)
        // A partial download whose bytes on disk differ from what was verified: refused, deleted.
        var bad = blob
        bad[12_345] ^= 1
        try Data(bad).write(to: URL(fileURLWithPath: store.partialPath(m.id)))
        try store.writeFile(store.partialManifestPath(m.id), m.encoded)
        #expect(store.scanPartial(m.id, m) == [true, true, true, false, true])
        #expect(throws: ModelStoreError.self) { try store.complete(m.id, m) }
        #expect(store.fileSize(store.partialPath(m.id)) == nil && store.fileSize(store.partialManifestPath(m.id)) == nil)
        // A manifest that does not hash to its name, or whose blob is short, is not listed.
        try Data(m.encoded.dropLast()).write(to: URL(fileURLWithPath: store.manifestPath(m.id)))
        #expect(store.load(settings: Model.Settings()) == ([:], 1))
        try store.writeFile(store.manifestPath(m.id), m.encoded)
        #expect(truncate(store.blobPath(m.id), 100) == 0)
        #expect(store.load(settings: Model.Settings()).models.isEmpty)
        // The check that trails a pull: chunks arrive out of order, it reads them in order.
        try Data(blob).write(to: URL(fileURLWithPath: store.partialPath(m.id)))
        var check = BlobCheck(store: store, id: m.id, manifest: m, have: [false, true, false, false, false])
        for i in [2, 0, 4] { try check.written(i) }
        #expect(check.verdict == nil)  // chunk 3 not yet
        try check.written(3)
        #expect(check.verdict == true)
        try Data(bad).write(to: URL(fileURLWithPath: store.partialPath(m.id)))
        var badCheck = BlobCheck(store: store, id: m.id, manifest: m, have: [Bool](repeating: true, count: 5))
        try badCheck.advance()
        #expect(badCheck.verdict == false)
        // What a crash leaves half-done is removed at start; a partial download stays.
        try Data([1]).write(to: URL(fileURLWithPath: store.partialDir + "/import-1-2.tmp"))
        try Data([1]).write(to: URL(fileURLWithPath: store.manifestPath(m.id) + ".tmp"))
        #expect(store.removeTemporaries() == 2 && store.fileSize(store.partialPath(m.id)) != nil)
        // Export never overwrites.
        #expect(throws: ModelStoreError.self) { try store.export(m.id, size: m.size, to: src) }
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: src))) == blob)
    }
}
