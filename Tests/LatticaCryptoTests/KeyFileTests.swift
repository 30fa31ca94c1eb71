#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import LatticaCrypto

/// A fresh directory under /tmp for one test, removed (with its files) afterwards.
private final class TempDir {
    let path: String

    init() {
        var template = Array("/tmp/lattica-keyfile-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        for name in entries() { unlink("\(path)/\(name)") }
        rmdir(path)
    }

    func entries() -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    func put(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o600) -> String {
        let file = "\(path)/\(name)"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, mode)
        precondition(fd >= 0)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        close(fd)
        return file
    }
}

private func contents(_ file: String) -> [UInt8] {
    let fd = open(file, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return Array(buffer.prefix(max(n, 0)))
}

private func mode(_ file: String) -> UInt32 {
    var st = stat()
    precondition(stat(file, &st) == 0)
    return UInt32(st.st_mode) & 0o7777
}

private func keyFileError(_ body: () throws(KeyFileError) -> Ed25519PrivateKey) -> KeyFileError? {
    do { _ = try body(); return nil } catch { return error }
}

@Suite struct KeyFileTests {
    static let rfcSeed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    static let rfcPublic = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")

    @Test func loadOrCreate_createsA0600FileThatReloadsToTheSameKey() throws {
        let dir = TempDir()
        let file = "\(dir.path)/identity.key"
        let created = try KeyFile.loadOrCreate(path: file)
        #expect(mode(file) == 0o600)
        let bytes = contents(file)
        #expect(bytes.count == 68)
        #expect(Array(bytes.prefix(4)) == [0x08, 0x01, 0x12, 0x40])
        #expect(Array(bytes.suffix(32)) == created.publicKey.bytes)
        let reloaded = try KeyFile.loadOrCreate(path: file)
        #expect(reloaded.hasSameSecret(as: created))
        #expect(try KeyFile.load(path: file).publicKey == created.publicKey)
        #expect(dir.entries() == ["identity.key"])   // no temporary file left behind
    }

    @Test func encode_isTheLibp2pPrivateKeyProtobuf() throws {
        let key = try Ed25519PrivateKey(seed: Self.rfcSeed)
        #expect(KeyFile.encode(key) == [0x08, 0x01, 0x12, 0x40] + Self.rfcSeed + Self.rfcPublic)
        let decoded = try KeyFile.decode([0x08, 0x01, 0x12, 0x40] + Self.rfcSeed + Self.rfcPublic, path: "x")
        #expect(decoded.publicKey.bytes == Self.rfcPublic)
        // Fields in the other order, and go-libp2p's legacy 96-byte Data, are accepted too.
        let reordered = try KeyFile.decode([0x12, 0x40] + Self.rfcSeed + Self.rfcPublic + [0x08, 0x01], path: "x")
        #expect(reordered.hasSameSecret(as: key))
        let legacy = try KeyFile.decode([0x08, 0x01, 0x12, 0x60] + Self.rfcSeed + Self.rfcPublic + Self.rfcPublic, path: "x")
        #expect(legacy.hasSameSecret(as: key))
    }

    @Test func load_refusesGroupOrWorldAccessibleFile_withChmodAdvice() throws {
        let dir = TempDir()
        let key = try Ed25519PrivateKey(seed: Self.rfcSeed)
        for badMode: mode_t in [0o644, 0o640, 0o604, 0o660, 0o602] {
            let file = dir.put("id-\(String(badMode, radix: 8))", KeyFile.encode(key), mode: badMode)
            let error = keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: file) }
            #expect(error == KeyFileError(.insecurePermissions(mode: UInt32(badMode)), path: file))
            #expect(contents(file) == KeyFile.encode(key))   // untouched
        }
        let file = "\(dir.path)/id-644"
        let description = KeyFile.loadOrCreateDescription(file)
        #expect(description == "key file \(file) has mode 0644; run chmod 600 \(file)")
    }

    @Test func load_refusesTruncatedFiles() throws {
        let dir = TempDir()
        let full = KeyFile.encode(Ed25519PrivateKey.generate())
        for length in [0, 1, 2, 4, 5, 36, 67] {
            let file = dir.put("cut-\(length)", Array(full.prefix(length)))
            let error = keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: file) }
            #expect(error == KeyFileError(.truncated(byteCount: length), path: file))
            #expect(contents(file) == Array(full.prefix(length)))   // never replaced by a new key
        }
    }

    @Test func load_refusesGarbageWrongTypeAndMismatchedPublicKey() throws {
        let dir = TempDir()
        let garbage = dir.put("garbage", bytes("hello, world\n"))
        let g = keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: garbage) }
        guard case .corrupt = g?.code else { Issue.record("expected corrupt, got \(String(describing: g))"); return }
        #expect(g?.description.contains(garbage) == true)
        #expect(contents(garbage) == bytes("hello, world\n"))

        // secp256k1 (type 2) with a 33-byte compressed key; RSA (type 0).
        let secp = dir.put("secp", [0x08, 0x02, 0x12, 0x21] + [UInt8](repeating: 2, count: 33))
        #expect(keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: secp) }
            == KeyFileError(.wrongKeyType(2), path: secp))
        let rsa = dir.put("rsa", [0x08, 0x00, 0x12, 0x03, 1, 2, 3])
        let rsaError = keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: rsa) }
        #expect(rsaError == KeyFileError(.wrongKeyType(0), path: rsa))
        #expect(rsaError?.description.contains("RSA") == true)

        var otherPublic = Self.rfcPublic
        otherPublic[5] ^= 1
        let mismatch = dir.put("mismatch", [0x08, 0x01, 0x12, 0x40] + Self.rfcSeed + otherPublic)
        #expect(keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: mismatch) }
            == KeyFileError(.publicKeyMismatch, path: mismatch))
        #expect(contents(mismatch) == [0x08, 0x01, 0x12, 0x40] + Self.rfcSeed + otherPublic)
    }

    @Test func loadOrCreate_reportsMissingDirectoryAndNonRegularFiles() {
        let dir = TempDir()
        let missing = "\(dir.path)/no/such/dir/identity.key"
        let error = keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: missing) }
        guard case .io(_, let e) = error?.code else { Issue.record("expected io error"); return }
        #expect(e == ENOENT)
        #expect(error?.description.contains(missing) == true)
        #expect(error?.description.contains("\n") == false)
        #expect(keyFileError { () throws(KeyFileError) in try KeyFile.loadOrCreate(path: dir.path) }
            == KeyFileError(.notARegularFile, path: dir.path))
    }

    @Test func loadOrCreate_concurrentCallersAllGetTheOneKeyOnDisk() async throws {
        let dir = TempDir()
        let file = "\(dir.path)/identity.key"
        let keys = try await withThrowingTaskGroup(of: Ed25519PrivateKey.self) { group in
            for _ in 0..<8 { group.addTask { try KeyFile.loadOrCreate(path: file) } }
            var keys: [Ed25519PrivateKey] = []
            for try await key in group { keys.append(key) }
            return keys
        }
        let onDisk = try KeyFile.load(path: file)
        #expect(keys.count == 8)
        #expect(keys.allSatisfy { $0.hasSameSecret(as: onDisk) })
        #expect(dir.entries() == ["identity.key"])
    }

    /// Every single-byte change of a valid file is rejected; random, truncated and mutated inputs
    /// never crash the decoder (seeded, reproducible).
    @Test func decode_rejectsEveryByteMutation_andSurvivesRandomInput() throws {
        let valid = KeyFile.encode(try Ed25519PrivateKey(seed: Self.rfcSeed))
        for i in valid.indices {
            for delta: UInt8 in [1, 0x40, 0x80, 0xFF] {
                var mutated = valid
                mutated[i] &+= delta
                #expect(throws: KeyFileError.self) { try KeyFile.decode(mutated, path: "m") }
            }
        }
        var rng = LatticaCryptoTestRandom(seed: 0x6b65_7966)
        var accepted = 0
        for round in 0..<5000 {
            var input: [UInt8]
            switch round % 3 {
            case 0: input = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1: input = Array(valid.prefix(Int(rng.next() % UInt64(valid.count))))
            default:
                input = valid
                for _ in 0..<(1 + rng.next() % 4) { input[Int(rng.next() % UInt64(input.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            if (try? KeyFile.decode(input, path: "fuzz")) != nil { accepted += 1 }
        }
        #expect(accepted < 50)   // only mutations that happened to rewrite a byte to itself (~2 expected)
    }
}

/// SplitMix64, so the fuzz test replays without depending on LatticaCore internals.
struct LatticaCryptoTestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension KeyFile {
    fileprivate static func loadOrCreateDescription(_ path: String) -> String {
        do { _ = try loadOrCreate(path: path); return "" } catch { return error.description }
    }
}
