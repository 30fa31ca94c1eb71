import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import LatticaCore
import LatticaCrypto
import LatticaModel

/// The model store's files (Docs/MODEL.md, "Storage"). Complete models live in
/// `<data-dir>/models/<id>` (the blob) beside `<id>.manifest`; downloads in progress in
/// `models/partial/<id>` (chunks written at their offsets as they are verified) beside
/// `partial/<id>.manifest`. Every file is 0600. The index is the directory listing: a model is
/// stored exactly when its blob has been renamed into `models/` (an atomic step), so no second
/// index can disagree with the files after a crash.
///
/// Methods are thread-agnostic file operations on paths; the caller decides where they run (whole-
/// file passes run in control-method tasks, never on the loop thread; the per-chunk `pread` and
/// `pwrite` of a transfer run on the loop).
struct ModelStore: Sendable {
    let dir: String
    var partialDir: String { dir + "/partial" }

    init(dataDir: String) throws(ModelStoreError) {
        dir = dataDir + "/models"
        for d in [dir, dir + "/partial"] where mkdir(d, 0o700) != 0 && errno != EEXIST {
            throw ModelStoreError("cannot create \(d): \(Self.errnoString())")
        }
    }

    func blobPath(_ id: ModelID) -> String { dir + "/" + id.hex }
    func manifestPath(_ id: ModelID) -> String { dir + "/" + id.hex + ".manifest" }
    func partialPath(_ id: ModelID) -> String { partialDir + "/" + id.hex }
    func partialManifestPath(_ id: ModelID) -> String { partialDir + "/" + id.hex + ".manifest" }

    /// The stored models: every `<id>.manifest` that hashes to its name, decodes, and has a blob of
    /// the manifest's size beside it. Blobs are not re-hashed here (they were verified when stored).
    func load(settings: Model.Settings) -> (models: [ModelID: Model.Manifest], skipped: Int) {
        var out: [ModelID: Model.Manifest] = [:]
        var skipped = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".manifest") {
            guard let id = ModelID(hex: String(name.dropLast(".manifest".count))),
                  let m = readManifest(manifestPath(id), id: id, settings: settings),
                  fileSize(blobPath(id)) == m.size else { skipped += 1; continue }
            out[id] = m
        }
        return (out, skipped)
    }

    /// Removes what a crash can leave behind: pushes being copied (`partial/import-*.tmp`) and
    /// half-written manifests (`*.tmp`). Partial downloads stay (they are resumed). Returns the
    /// number of files removed.
    func removeTemporaries() -> Int {
        var n = 0
        for d in [dir, partialDir] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? [] where name.hasSuffix(".tmp") {
                if unlink(d + "/" + name) == 0 { n += 1 }
            }
        }
        return n
    }

    /// A manifest file, checked against `id`; nil when missing or wrong.
    func readManifest(_ path: String, id: ModelID, settings: Model.Settings) -> Model.Manifest? {
        guard let size = fileSize(path), size <= UInt64(settings.maxManifestBytes), let bytes = try? readAll(path, limit: Int(size)),
              ModelID(manifestBytes: bytes) == id else { return nil }
        return Model.Manifest(decoding: bytes[...], maxSize: settings.maxModelBytes, maxChunks: settings.maxChunks)
    }

    func fileSize(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(st.st_size)
    }

    /// Writes `bytes` to `path` (0600) through a temporary file and a rename.
    func writeFile(_ path: String, _ bytes: [UInt8]) throws(ModelStoreError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ModelStoreError("cannot create \(tmp): \(Self.errnoString())") }
        defer { close(fd) }
        try Self.writeAll(fd, bytes, at: 0, path: tmp)
        guard fsync(fd) == 0, rename(tmp, path) == 0 else { throw ModelStoreError("cannot write \(path): \(Self.errnoString())") }
    }

    func readAll(_ path: String, limit: Int) throws(ModelStoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelStoreError("cannot open \(path): \(Self.errnoString())") }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: limit)
        let n = try Self.readFully(fd, into: &out, at: 0, count: limit, path: path)
        out.removeLast(limit - n)
        return out
    }

    /// Copies the file at `source` into the store, hashing it on the way (one pass, one chunk in
    /// memory); returns its manifest. The blob appears under its id only once complete.
    func importFile(_ source: String, chunkShift: UInt8, settings: Model.Settings) throws(ModelStoreError) -> Model.Manifest {
        let src = open(source, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw ModelStoreError("cannot open \(source): \(Self.errnoString())") }
        defer { close(src) }
        var st = stat()
        guard fstat(src, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw ModelStoreError("\(source) is not a regular file") }
        guard st.st_size > 0 else { throw ModelStoreError("\(source) is empty") }
        guard UInt64(st.st_size) <= settings.maxModelBytes else {
            throw ModelStoreError("\(source) has \(st.st_size) bytes; the store takes models of at most \(settings.maxModelBytes)")
        }
        guard Model.Manifest.chunkCount(size: UInt64(st.st_size), chunkShift: chunkShift) <= UInt64(settings.maxChunks) else {
            throw ModelStoreError("\(source) would have more than \(settings.maxChunks) chunks; use larger chunks")
        }
        let tmp = partialDir + "/import-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).tmp"
        let dst = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw ModelStoreError("cannot create \(tmp): \(Self.errnoString())") }
        var ok = false
        defer { close(dst); if !ok { unlink(tmp) } }
        var builder = Model.ManifestBuilder(chunkShift: chunkShift)
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var off: UInt64 = 0
        while true {
            let n = try Self.readFully(src, into: &buf, at: off, count: buf.count, path: source)
            if n == 0 { break }
            buf.withUnsafeBytes { builder.update(UnsafeRawBufferPointer(rebasing: $0.prefix(n))) }
            try Self.writeAll(dst, buf[..<n], at: off, path: tmp)
            off += UInt64(n)
            guard off <= settings.maxModelBytes else { throw ModelStoreError("\(source) grew past the size limit while being read") }
        }
        guard let m = builder.finish() else { throw ModelStoreError("\(source) is empty") }
        guard fsync(dst) == 0 else { throw ModelStoreError("cannot write \(tmp): \(Self.errnoString())") }
        let id = m.id
        try writeFile(manifestPath(id), m.encoded)
        guard rename(tmp, blobPath(id)) == 0 else { throw ModelStoreError("cannot store \(blobPath(id)): \(Self.errnoString())") }
        ok = true
        return m
    }

    /// Which chunks of a partial download are present and correct (each re-hashed: a chunk the
    /// disk lost or a crash left half-written is fetched again).
    func scanPartial(_ id: ModelID, _ m: Model.Manifest) -> [Bool] {
        var have = [Bool](repeating: false, count: m.chunkCount)
        let fd = open(partialPath(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return have }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: m.chunkSize)
        for i in 0..<m.chunkCount {
            let want = m.chunkLength(i)
            guard let n = try? Self.readFully(fd, into: &buf, at: m.chunkOffset(i), count: want, path: ""), n == want else { break }
            have[i] = buf.withUnsafeBytes { Model.sha256(UnsafeRawBufferPointer(rebasing: $0.prefix(n))) == m.chunkHashes[i] }
        }
        return have
    }

    /// A finished download: the whole blob read back from disk and checked against the
    /// manifest's blob hash (every chunk was checked against its own hash before it was written,
    /// or by the resume scan), then committed. A blob that does not match is deleted with its
    /// manifest (it is fetched from scratch). A pull runs this check alongside the transfer
    /// (`BlobCheck`) and calls `complete` only when that could not cover the whole blob.
    func complete(_ id: ModelID, _ m: Model.Manifest) throws(ModelStoreError) {
        var check = BlobCheck(store: self, id: id, manifest: m, have: [Bool](repeating: true, count: m.chunkCount))
        try check.advance()
        guard check.verdict == true else {
            discardPartial(id)
            throw ModelStoreError.blobMismatch(id)
        }
        try commit(id, m)
    }

    /// Stores a checked partial blob: its manifest written (fsynced), then the blob renamed to
    /// `models/<id>`, the commit point.
    func commit(_ id: ModelID, _ m: Model.Manifest) throws(ModelStoreError) {
        try writeFile(manifestPath(id), m.encoded)
        guard rename(partialPath(id), blobPath(id)) == 0 else { throw ModelStoreError("cannot store \(blobPath(id)): \(Self.errnoString())") }
        unlink(partialManifestPath(id))
    }

    func discardPartial(_ id: ModelID) {
        unlink(partialPath(id))
        unlink(partialManifestPath(id))
    }

    /// Copies a stored blob to `path` (created 0600; an existing file is not overwritten).
    func export(_ id: ModelID, size: UInt64, to path: String) throws(ModelStoreError) {
        let src = open(blobPath(id), O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw ModelStoreError("cannot open \(blobPath(id)): \(Self.errnoString())") }
        defer { close(src) }
        let dst = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw ModelStoreError("cannot create \(path): \(Self.errnoString())") }
        var ok = false
        defer { close(dst); if !ok { unlink(path) } }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var off: UInt64 = 0
        while off < size {
            let n = try Self.readFully(src, into: &buf, at: off, count: buf.count, path: blobPath(id))
            if n == 0 { throw ModelStoreError("\(blobPath(id)) is shorter than its manifest") }
            try Self.writeAll(dst, buf[..<n], at: off, path: path)
            off += UInt64(n)
        }
        guard fsync(dst) == 0 else { throw ModelStoreError("cannot write \(path): \(Self.errnoString())") }
        ok = true
    }

    // MARK: POSIX helpers

    /// Reads up to `count` bytes at `offset` (fewer only at the end of the file).
    static func readFully(_ fd: Int32, into buf: inout [UInt8], at offset: UInt64, count: Int, path: String) throws(ModelStoreError) -> Int {
        precondition(count <= buf.count)
        var done = 0
        while done < count {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelStoreError("cannot read \(path): \(errnoString())")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    static func writeAll(_ fd: Int32, _ bytes: some Collection<UInt8>, at offset: UInt64, path: String) throws(ModelStoreError) {
        let r: Int32 = withContiguous(bytes) { p in
            var done = 0
            while done < p.count {
                let n = pwrite(fd, p.baseAddress! + done, p.count - done, off_t(offset) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; return errno }
                done += n
            }
            return 0
        }
        guard r == 0 else { throw ModelStoreError("cannot write \(path): \(String(cString: strerror(r)))") }
    }

    static func withContiguous<R>(_ bytes: some Collection<UInt8>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let r = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return r }
        return Array(bytes).withUnsafeBytes(body)
    }

    static func errnoString() -> String { String(cString: strerror(errno)) }
}

/// The final check of a pull, read back from the partial file in chunk order as chunks become
/// present (`written`), hashing the blob: run in the pull's task alongside the transfer, so the
/// read-back costs no time after the last chunk. Not thread-safe: one owner.
struct BlobCheck: ~Copyable {
    let store: ModelStore
    let id: ModelID
    let manifest: Model.Manifest
    private var have: [Bool]
    private var next = 0
    private var whole = Model.Hasher()
    private var buf: [UInt8]
    private var fd: Int32 = -1
    private var chunksMatch = true

    init(store: ModelStore, id: ModelID, manifest: Model.Manifest, have: [Bool]) {
        self.store = store; self.id = id; self.manifest = manifest; self.have = have
        buf = [UInt8](repeating: 0, count: manifest.chunkSize)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Chunk `i` is on disk now.
    mutating func written(_ i: Int) throws(ModelStoreError) {
        have[i] = true
        try advance()
    }

    /// Hashes the chunks present from `next` on.
    mutating func advance() throws(ModelStoreError) {
        let path = store.partialPath(id)
        if fd < 0 {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ModelStoreError("cannot open \(path): \(ModelStore.errnoString())") }
        }
        while next < manifest.chunkCount, have[next] {
            let want = manifest.chunkLength(next)
            let n = try ModelStore.readFully(fd, into: &buf, at: manifest.chunkOffset(next), count: want, path: path)
            guard n == want else { throw ModelStoreError("\(path) is shorter than chunk \(next)") }
            buf.withUnsafeBytes { b in
                let piece = UnsafeRawBufferPointer(rebasing: b.prefix(n))
                // LMF2: its hash field is over the chunk hashes, so each chunk is checked instead.
                if manifest.kind == .blob { whole.update(raw: piece) } else if Model.sha256(piece) != manifest.chunkHashes[next] { chunksMatch = false }
            }
            next += 1
        }
    }

    /// nil until every chunk was read; then whether the blob matches (nothing past its size).
    var verdict: Bool? {
        mutating get {
            guard next == manifest.chunkCount else { return nil }
            let hashOK = manifest.kind == .blob ? whole.finalize() == manifest.blobHash : chunksMatch
            return store.fileSize(store.partialPath(id)) == manifest.size && hashOK
        }
    }
}

/// A failed file operation of the model store: one line naming the path.
struct ModelStoreError: Error, CustomStringConvertible, Sendable {
    var message: String
    var isBlobMismatch = false
    var description: String { message }
    init(_ message: String) { self.message = message }

    static func blobMismatch(_ id: ModelID) -> ModelStoreError {
        var e = ModelStoreError("the downloaded blob does not match the manifest of \(id.hex); discarded")
        e.isBlobMismatch = true
        return e
    }
}
