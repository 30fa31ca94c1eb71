import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// An error preparing the data directory: one line naming the path and the problem.
public struct DataDirError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { message }
}

/// The daemon's data directory: created 0700 when missing, checked to be usable, and locked so
/// that only one `latticad` uses it at a time.
///
/// Layout: `identity.key` (0600), `node.sqlite3` (+ WAL files), `latticad.lock`, `control.sock`.
public final class DataDirectory: @unchecked Sendable {
    public let path: String
    private var lockFD: Int32 = -1

    public var keyPath: String { path + "/identity.key" }
    public var databasePath: String { path + "/node.sqlite3" }
    public var lockPath: String { path + "/latticad.lock" }

    /// Creates the directory if needed and checks that it is a writable directory.
    public init(path: String) throws(DataDirError) {
        self.path = path
        var st = stat()
        if stat(path, &st) != 0 {
            guard errno == ENOENT else { throw Self.err(path, "cannot access data directory \(path): \(Self.errnoString())") }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw Self.err(path, "cannot create data directory \(path): \(NodeConfig.reason(error))")
            }
            guard stat(path, &st) == 0 else { throw Self.err(path, "cannot access data directory \(path): \(Self.errnoString())") }
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw Self.err(path, "data directory \(path) is not a directory") }
        guard access(path, R_OK | W_OK | X_OK) == 0 else {
            throw Self.err(path, "data directory \(path) is not readable and writable by this user: \(Self.errnoString())")
        }
    }

    deinit { unlock() }

    /// Takes the exclusive lock (`flock` on `latticad.lock`, which holds the owner's pid).
    /// Fails, naming the running daemon's pid, when another process holds it.
    public func lock() throws(DataDirError) {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.err(path, "cannot open lock file \(lockPath): \(Self.errnoString())") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let owner = (try? String(contentsOfFile: lockPath, encoding: .utf8)).map { String($0.filter { !$0.isWhitespace }) }
            close(fd)
            let who = owner.flatMap { $0.isEmpty ? nil : " (pid \($0))" } ?? ""
            throw Self.err(path, "another latticad\(who) is already running with data directory \(path)")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        lockFD = fd
    }

    /// Removes the lock file and releases the lock (on clean shutdown).
    public func unlock() {
        guard lockFD >= 0 else { return }
        unlink(lockPath)
        close(lockFD)
        lockFD = -1
    }

    static func err(_ path: String, _ m: String) -> DataDirError { DataDirError(path: path, message: m) }
    static func errnoString() -> String { String(cString: strerror(errno)) }
}

extension DataDirectory {
    /// Writes `bytes` to `path` atomically (mode 0600): a temporary file beside it, fsync, rename,
    /// fsync of the directory; the directory is created if needed. A crash leaves the old file or
    /// the new one, never a mix. (LatticaData has the same for the trainer and tools; latticad does
    /// not link it, to keep Foundation out of the daemon.)
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(SwarmError) {
        var failure: SwarmError?
        bytes.withUnsafeBytes { b in
            do throws(SwarmError) { try writeAtomically(b, to: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    static func writeAtomically(_ bytes: UnsafeRawBufferPointer, to path: String) throws(SwarmError) {
        let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw SwarmError("cannot create \(dir): \(error)")
        }
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw SwarmError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let ok = { (b: UnsafeRawBufferPointer) -> Bool in
            var off = 0
            while off < b.count {
                let n = write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 { return false }
                off += n
            }
            return fsync(fd) == 0
        }(bytes)
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw SwarmError("cannot write \(path): \(e)")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
