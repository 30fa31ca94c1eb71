import Dispatch
import FoundationEssentials
import LatticaCore
import LatticaModel
import Metrics
import Synchronization

/// The in-memory model source: θ of an outer step published as a content-addressed `LMF2` model
/// (Docs/MODEL.md, "Models in memory") without a file and without a copy. The manifest is built
/// from the chunk hashes of the caller's buffer, hashed once per publish on worker threads (off
/// the loop), never per puller; uploads read chunks straight out of that buffer. Each slot (one
/// per run) keeps only its latest model: an upload in progress holds its own reference to the
/// buffer it serves, so a superseded model lives exactly as long as a stream still sends it.
extension ModelService {
    struct MemoryModel {
        let manifest: Model.Manifest
        let theta: [Float]
        let slot: String
    }

    /// Publishes `theta` as the latest model of `slot`; `done` (on the loop) gets its manifest
    /// once every chunk is hashed. Loop thread.
    func publishMemory(slot: String, _ theta: [Float], chunkShift: UInt8 = Model.defaultChunkShift,
                       done: @escaping (Model.Manifest) -> Void) {
        precondition(!theta.isEmpty)
        let started = loop.now
        let size = 4 * theta.count
        let chunks = Int(Model.Manifest.chunkCount(size: UInt64(size), chunkShift: chunkShift))
        nonisolated(unsafe) let done = done  // called on the loop thread only, where it was made
        DispatchQueue.global().async { [self, theta] in
            let hashes = Self.hashInParallel(theta, chunkShift: chunkShift, chunks: chunks)
            let m = Model.Manifest(chunkListShift: chunkShift, size: UInt64(size), chunkHashes: hashes)
            _ = loop.execute { [self] in
                if let old = memorySlots[slot], old != m.id { memory[old] = nil }
                memory[m.id] = MemoryModel(manifest: m, theta: theta, slot: slot)
                memorySlots[slot] = m.id
                Counter(label: "lattica_model_memory_published_total").increment()
                Recorder(label: "lattica_model_memory_hash_ms").record((loop.now - started).secondsDouble * 1000)
                done(m)
            }
        }
    }

    /// Forgets the latest model of `slot` (the run ended). Loop thread.
    func unpublishMemory(slot: String) {
        if let id = memorySlots.removeValue(forKey: slot) { memory[id] = nil }
    }

    /// The chunk hashes of θ, cut into as many contiguous ranges as there are cores (at most 4).
    static func hashInParallel(_ theta: [Float], chunkShift: UInt8, chunks: Int) -> [[UInt8]] {
        let parts = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount, chunks / 8))
        let out = Mutex<[[[UInt8]]]>(Array(repeating: [], count: parts))
        theta.withUnsafeBytes { raw in
            nonisolated(unsafe) let raw = raw
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let range = (chunks * p / parts)..<(chunks * (p + 1) / parts)
                let h = Model.chunkHashes(raw, chunkShift: chunkShift, range: range)
                out.withLock { $0[p] = h }
            }
        }
        return out.withLock { $0.flatMap { $0 } }
    }
}
