import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaCore
import LatticaCrypto
import LatticaModel
import LatticaSHA

/// The model-transfer benchmark behind `lattica-bench model`: two daemons in this process (each
/// with its own loop thread and data directory), a model of `megabytes` random bytes pushed into
/// one and pulled by the other over loopback through the whole path (manifest, chunks with
/// back-pressure, per-chunk SHA-256, writes into the partial file, the final read-back check and
/// the rename). Beside it, in the same run: the raw one-stream throughput of `lattica-bench wire`
/// and libsodium's SHA-256 on one core. Returns `(metric, value)` pairs.
public enum ModelBenchmark {
    public struct Options: Sendable {
        public var megabytes = 100
        public var chunkShift = Int(Model.defaultChunkShift)
        /// Also measure the raw stream (`lattica-bench wire`'s `stream_MBps`) with as many bytes.
        public var rawStream = true
        public init() {}
    }

    public static func run(_ o: Options) async throws -> [(String, Double)] {
        let root = "/tmp/lattica-bench-model-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bytes = o.megabytes * 1_000_000
        var out: [(String, Double)] = []
        var a = NodeConfig(dataDir: root + "/a"), b = NodeConfig(dataDir: root + "/b")
        a.metricsAddr = nil; b.metricsAddr = nil
        let da = try await Daemon.start(config: a), db = try await Daemon.start(config: b)
        do {
            let file = root + "/model.bin"
            try writeRandom(file, bytes: bytes)
            let _: PeerId = try await da.onLoop { s, done in s.dial(db.listenAddrs[0]) { done($0) } }
            let ca = try await da.loop.submit { _ in da.control!.dispatcher }
            let cb = try await db.loop.submit { _ in db.control!.dispatcher }
            var t0 = ContinuousClock.now
            let pushed = try await cb.callInProcess(Methods.ModelPush.self, .init(path: file, chunkShift: o.chunkShift))
            out.append(("model_push_\(o.megabytes)MB_MBps", mbps(bytes, ContinuousClock.now - t0)))
            t0 = ContinuousClock.now
            let pulled = try await ca.callInProcess(Methods.ModelPull.self, .init(hash: pushed.hash, peer: db.peerId.description))
            let d = ContinuousClock.now - t0
            guard pulled.chunksFetched == pushed.chunks, pulled.bytesFetched == UInt64(bytes) else {
                throw ControlErrorBody(code: "failed", message: "pulled \(pulled.chunksFetched) of \(pushed.chunks) chunks")
            }
            out.append(("model_pull_\(o.megabytes)MB_s", d.secondsDouble))
            out.append(("model_pull_\(o.megabytes)MB_MBps", mbps(bytes, d)))
        } catch {
            await da.stop(); await db.stop()
            throw error
        }
        await da.stop(); await db.stop()
        out.append(("sha256_libsodium_MBps_one_core", sha256MBps(bytes: min(bytes, 256 << 20))))
        if FastSHA256.isAvailable { out.append(("sha256_sha_ni_MBps_one_core", sha256MBps(bytes: min(bytes, 256 << 20), fast: true))) }
        if o.rawStream {
            var w = WireBenchmark.Options()
            w.dials = 1; w.roundTrips = 10; w.requests = 10; w.inFlight = 1; w.streamBytes = bytes
            if let raw = try await WireBenchmark.run(w).first(where: { $0.0 == "stream_MBps" }) { out.append(("wire_stream_MBps", raw.1)) }
        }
        return out
    }

    static func mbps(_ bytes: Int, _ d: Duration) -> Double { Double(bytes) / 1e6 / d.secondsDouble }

    static func writeRandom(_ path: String, bytes: Int) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ControlErrorBody(code: "failed", message: "cannot create \(path)") }
        defer { close(fd) }
        var rng = SeededRandom(seed: 0x30DE_BE7C)
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var done = 0
        while done < bytes {
            let n = min(buf.count, bytes - done)
            buf.withUnsafeMutableBytes { p in
                for i in stride(from: 0, to: n - 7, by: 8) { p.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) }
            }
            try ModelStore.writeAll(fd, buf[..<n], at: UInt64(done), path: path)
            done += n
        }
    }

    /// SHA-256 throughput on one core: libsodium, or the SHA-NI code the transfer uses.
    static func sha256MBps(bytes: Int, fast: Bool = false) -> Double {
        let buf = [UInt8](repeating: 0x5A, count: 1 << 20)
        var sodium = SHA256.Hasher(), ni = fast ? Model.Hasher() : nil
        let t0 = ContinuousClock.now
        var done = 0
        while done < bytes {
            if ni != nil { ni!.update(buf) } else { sodium.update(buf) }
            done += buf.count
        }
        _ = ni?.finalize() ?? sodium.finalize()
        return mbps(done, ContinuousClock.now - t0)
    }
}
