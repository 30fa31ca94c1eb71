#if canImport(Glibc)
import Glibc
#endif
import LatticaAPI
import LatticaAveraging

/// The trainer's shared-memory file (Docs/TRAINER-API.md, "Transport"): θ in, the new θ out.
///
/// A file under /dev/shm, or a memfd named by `/proc/<trainer pid>/fd/<n>`. When the file is a
/// memfd sealed against shrinking (`F_SEAL_SHRINK`, and not against writing), the daemon maps it:
/// θ is copied out of the mapping into the daemon's own buffer in one pass that also checks it
/// for NaN/Inf, and the answer is copied into the mapping. A mapping of a file that shrinks under
/// it faults (SIGBUS) on the next access, so without the seal the daemon never maps: it reads with
/// pread and writes with pwrite, and a file that shrank mid-read is a clear error.
enum SharedTheta {
    static let getSeals: Int32 = 1034  // F_GET_SEALS (F_LINUX_SPECIFIC_BASE + 10)
    static let sealShrink: Int32 = 0x0002, sealWrite: Int32 = 0x0008, sealFutureWrite: Int32 = 0x0010

    enum Mode: String { case mapped, read }

    /// Test hook: runs after the file was opened and checked, before θ is read (a trainer that
    /// truncates the file at the worst moment).
    nonisolated(unsafe) static var afterCheck: ((Int32) -> Void)?

    /// A path the daemon accepts: any path (opened with O_NOFOLLOW), or exactly
    /// `/proc/<digits>/fd/<digits>` (a memfd of the trainer; a magic link, so followed).
    static func isProcFD(_ path: String) -> Bool { TrainerAPI.procFD(path) != nil }

    /// Opens `path` and checks it: a regular file of this user, mode 0600, exactly `4 × count` bytes.
    static func open(_ path: String, count: Int, write: Bool) throws(ControlErrorBody) -> Int32 {
        let flags = (write ? O_RDWR : O_RDONLY) | (isProcFD(path) ? 0 : O_NOFOLLOW)
        let fd = Glibc.open(path, flags)
        guard fd >= 0 else { throw .badRequest("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == getuid() else {
            close(fd)
            throw .badRequest("'\(path)' is not a regular file of this user")
        }
        guard st.st_mode & 0o077 == 0 else {
            close(fd)
            throw .badRequest("'\(path)' is readable or writable by others (mode \(String(st.st_mode & 0o777, radix: 8))); it must be 0600")
        }
        guard Int(st.st_size) == 4 * count else {
            close(fd)
            throw .badRequest("'\(path)' holds \(st.st_size) bytes; \(count) parameters need \(4 * count)")
        }
        return fd
    }

    /// May the file be mapped for reading (and, with `write`, for writing)? Only when it cannot shrink.
    static func mappable(_ fd: Int32, write: Bool) -> Bool {
        let seals = fcntl(fd, getSeals)
        guard seals >= 0, seals & sealShrink != 0 else { return false }
        return !write || seals & (sealWrite | sealFutureWrite) == 0
    }

    /// θ from the file into `buffer` (reused when it has `count` elements and is uniquely
    /// referenced), checked for NaN/Inf in the same pass. Throws a clear error for a file that is
    /// not acceptable, shrank while it was read, or holds a non-finite value.
    static func read(_ path: String, count: Int, into buffer: inout [Float]) throws(ControlErrorBody) -> Mode {
        let fd = try open(path, count: count, write: false)
        defer { close(fd) }
        afterCheck?(fd)
        if buffer.count != count { buffer = [Float](unsafeUninitializedCapacity: count) { b, n in b.initialize(repeating: 0); n = count } }
        let bytes = 4 * count
        let mode: Mode = mappable(fd, write: false) ? .mapped : .read
        let finite: Bool? = buffer.withUnsafeMutableBufferPointer { out -> Bool? in
            guard let dst = out.baseAddress, bytes > 0 else { return true }
            if mode == .mapped {
                guard let m = mmap(nil, bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0), m != MAP_FAILED else { return nil }
                defer { munmap(m, bytes) }
                return Kernels.copyChecked(UnsafeRawPointer(m), dst, count: count)
            }
            // pread in 4 MiB pieces, each checked while it is in cache.
            var ok = true, whole = true
            var off = 0
            let raw = UnsafeMutableRawPointer(dst)
            while off < bytes {
                let n = pread(fd, raw + off, min(4 << 20, bytes - off), off_t(off))
                guard n > 0 else { return nil }  // the file shrank (or failed) under us
                if n % 4 != 0 || off % 4 != 0 { whole = false }
                if whole { ok = Kernels.allFinite(UnsafeRawPointer(raw + off), count: n / 4) && ok }
                off += n
            }
            return whole ? ok : Kernels.allFinite(UnsafeRawPointer(raw), count: count)
        }
        guard let finite else {
            throw .badRequest("cannot read θ from '\(path)': \(String(cString: strerror(errno))) (did the trainer truncate it mid-hand-off?)")
        }
        guard finite else { throw .badRequest("θ from the trainer holds NaN or Inf") }
        return mode
    }

    /// The new θ into the file, in place when it may be mapped; refused when its size changed.
    static func write(_ path: String, _ p: [Float]) throws(ControlErrorBody) -> Mode {
        let fd: Int32
        do { fd = try open(path, count: p.count, write: true) } catch {
            throw ControlErrorBody(code: "failed", message: "cannot write θ back: \(error.message)")
        }
        defer { close(fd) }
        let bytes = 4 * p.count
        let mode: Mode = mappable(fd, write: true) ? .mapped : .read
        let ok = p.withUnsafeBytes { b -> Bool in
            guard let src = b.baseAddress, bytes > 0 else { return true }
            if mode == .mapped {
                guard let m = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0), m != MAP_FAILED else { return false }
                defer { munmap(m, bytes) }
                m.copyMemory(from: src, byteCount: bytes)
                return true
            }
            var off = 0
            while off < bytes {
                let n = pwrite(fd, src + off, bytes - off, off_t(off))
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        guard ok else { throw ControlErrorBody(code: "failed", message: "cannot write θ back to '\(path)': \(String(cString: strerror(errno)))") }
        return mode
    }
}

extension TrainingService {
    /// A memfd path must be one of the attached trainer's own descriptors (`/proc/<its pid>/fd/<n>`),
    /// never another process's. Loop thread.
    func checkMemfdOwner(_ shm: String) throws(ControlErrorBody) {
        guard let (pid, _) = TrainerAPI.procFD(shm) else { return }
        guard let trainer = run?.trainerPid, Int(trainer) == pid else {
            throw .badRequest("'\(shm.prefix(64))' is not a descriptor of this run's trainer (pid \(run?.trainerPid.map { String($0) } ?? "none"), from trainer.attach)")
        }
    }
}
