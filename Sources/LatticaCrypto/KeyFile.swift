#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LatticaCore

/// The node identity on disk: a libp2p `crypto.pb` `PrivateKey` protobuf (Type = 1 Ed25519,
/// Data = seed || public key), raw bytes, mode 0600. Byte layout and rules: Docs/KEYS.md.
public enum KeyFile {
    /// Largest file we read; a valid one is 68 bytes (100 in go-libp2p's legacy 96-byte layout).
    static let maximumSize = 1024

    /// Loads the key at `path`, or creates a fresh one there when no file exists.
    /// Never overwrites an existing file; refuses files readable by group or others.
    public static func loadOrCreate(path: String) throws(KeyFileError) -> Ed25519PrivateKey {
        for _ in 0..<3 {
            switch try openExisting(path) {
            case .some(let fd): return try load(fd: fd, path: path)
            case .none:
                if let key = try create(path: path) { return key }
                // Lost a race with another creator: the file exists now, load theirs.
            }
        }
        throw KeyFileError(.io(operation: "create", errno: EEXIST), path: path)
    }

    /// Loads the key at `path`; a missing file is an error.
    public static func load(path: String) throws(KeyFileError) -> Ed25519PrivateKey {
        guard let fd = try openExisting(path) else { throw KeyFileError(.io(operation: "open", errno: ENOENT), path: path) }
        return try load(fd: fd, path: path)
    }

    /// The file contents for `key`: 08 01 12 40 || seed (32) || public key (32).
    public static func encode(_ key: Ed25519PrivateKey) -> [UInt8] {
        var seed = key.seed
        defer { Sodium.zero(&seed) }
        return [0x08, 0x01, 0x12, 0x40] + seed + key.publicKey.bytes
    }

    /// Parses file contents (see `encode`). `path` only names the file in errors.
    /// Accepts fields in any order and go-libp2p's legacy 96-byte Data (seed || pk || pk).
    public static func decode(_ bytes: [UInt8], path: String) throws(KeyFileError) -> Ed25519PrivateKey {
        func fail(_ code: KeyFileError.Code) -> KeyFileError { KeyFileError(code, path: path) }
        if bytes.isEmpty { throw fail(.truncated(byteCount: 0)) }
        var type: UInt64?
        var data: ArraySlice<UInt8>?
        var reader = ProtobufReader(bytes[...])
        while true {
            let field: ProtobufField?
            do { field = try reader.next() } catch {
                throw fail(error == .truncated ? .truncated(byteCount: bytes.count) : .corrupt(reason: "malformed protobuf: \(error)"))
            }
            guard let field else { break }
            switch field {
            case .varint(1, let v):
                guard type == nil else { throw fail(.corrupt(reason: "Type field repeated")) }
                type = v
            case .bytes(2, let b):
                guard data == nil else { throw fail(.corrupt(reason: "Data field repeated")) }
                data = b
            default:
                throw fail(.corrupt(reason: "unexpected field \(field.field) or wire type"))
            }
        }
        guard let type else { throw fail(.corrupt(reason: "missing Type field")) }
        guard type == 1 else { throw fail(.wrongKeyType(type)) }
        // A file that stops after its Type field is most likely cut short (Data comes second).
        guard let data else { throw fail(.truncated(byteCount: bytes.count)) }
        guard data.count == 64 || data.count == 96 else {
            throw fail(data.count < 64 ? .truncated(byteCount: bytes.count) : .corrupt(reason: "Data is \(data.count) bytes, expected 64"))
        }
        let base = data.startIndex
        let storedPublic = Array(data[(base + 32)..<(base + 64)])
        if data.count == 96, Array(data[(base + 64)..<(base + 96)]) != storedPublic { throw fail(.publicKeyMismatch) }
        var seed = Array(data[base..<(base + 32)])
        defer { Sodium.zero(&seed) }
        let key: Ed25519PrivateKey
        do { key = try Ed25519PrivateKey(seed: seed) } catch { throw fail(.corrupt(reason: "bad seed")) }
        guard Sodium.constantTimeEquals(key.publicKey.bytes, storedPublic) else { throw fail(.publicKeyMismatch) }
        return key
    }

    // MARK: - Files

    /// An open read-only descriptor, or nil when nothing exists at `path`.
    private static func openExisting(_ path: String) throws(KeyFileError) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { return fd }
        let e = errno
        if e == ENOENT { return nil }
        throw KeyFileError(.io(operation: "open", errno: e), path: path)
    }

    private static func load(fd: Int32, path: String) throws(KeyFileError) -> Ed25519PrivateKey {
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw KeyFileError(.io(operation: "fstat", errno: errno), path: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw KeyFileError(.notARegularFile, path: path) }
        let mode = UInt32(st.st_mode) & 0o7777
        guard mode & 0o077 == 0 else { throw KeyFileError(.insecurePermissions(mode: mode), path: path) }

        var contents = [UInt8](repeating: 0, count: maximumSize + 1)
        defer { Sodium.zero(&contents) }
        var filled = 0
        while filled < contents.count {
            let n = contents.withUnsafeMutableBytes { p in read(fd, p.baseAddress! + filled, p.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KeyFileError(.io(operation: "read", errno: errno), path: path)
            }
            if n == 0 { break }
            filled += n
        }
        guard filled <= maximumSize else { throw KeyFileError(.corrupt(reason: "file larger than \(maximumSize) bytes"), path: path) }
        var bytes = Array(contents.prefix(filled))
        defer { Sodium.zero(&bytes) }
        return try decode(bytes, path: path)
    }

    /// Writes a new key to a temporary file (O_CREAT|O_EXCL, 0600), fsyncs it, then hard-links it
    /// to `path`: `link` fails with EEXIST instead of replacing a file that appeared meanwhile, so
    /// an existing key is never overwritten (rename would replace it). Returns nil on that race.
    private static func create(path: String) throws(KeyFileError) -> Ed25519PrivateKey? {
        let key = Ed25519PrivateKey.generate()
        var contents = encode(key)
        defer { Sodium.zero(&contents) }

        let suffix = SecureRandom.bytes(6).map { String($0, radix: 16).leftPadded(2) }.joined()
        let temporary = "\(path).tmp-\(suffix)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode_t(0o600))
        guard fd >= 0 else { throw KeyFileError(.io(operation: "create \(temporary)", errno: errno), path: path) }
        defer { unlink(temporary) }   // after a successful link, `path` keeps the data
        do {
            defer { close(fd) }
            guard fchmod(fd, mode_t(0o600)) == 0 else { throw KeyFileError(.io(operation: "fchmod", errno: errno), path: path) }
            var written = 0
            while written < contents.count {
                let n = contents.withUnsafeBytes { p in write(fd, p.baseAddress! + written, p.count - written) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw KeyFileError(.io(operation: "write", errno: errno), path: path)
                }
                written += n
            }
            guard fsync(fd) == 0 else { throw KeyFileError(.io(operation: "fsync", errno: errno), path: path) }
        }
        guard link(temporary, path) == 0 else {
            let e = errno
            if e == EEXIST { return nil }
            throw KeyFileError(.io(operation: "link", errno: e), path: path)
        }
        syncDirectory(of: path)
        return key
    }

    /// Makes the new directory entry durable; best effort (some file systems refuse to fsync a directory).
    private static func syncDirectory(of path: String) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }
}
