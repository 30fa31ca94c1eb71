#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a key file could not be used: what went wrong (`code`) and with which file (`path`).
/// `description` is one line for a human, naming the file and what to do.
public struct KeyFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        /// The file is accessible to group or others (`mode` is the permission bits, e.g. 0o644).
        case insecurePermissions(mode: UInt32)
        /// The file ends before the protobuf does (including an empty file).
        case truncated(byteCount: Int)
        /// The bytes are not a libp2p `PrivateKey` protobuf (`reason` says which rule failed).
        case corrupt(reason: String)
        /// A well-formed key of a type other than Ed25519 (libp2p KeyType number).
        case wrongKeyType(UInt64)
        /// The stored public half is not the one derived from the stored seed.
        case publicKeyMismatch
        /// The path exists but is not a regular file (a directory, a socket, ...).
        case notARegularFile
        /// A system call failed (`operation` is e.g. "open", `errno` its error number).
        case io(operation: String, errno: Int32)
    }

    public var code: Code
    public var path: String

    public init(_ code: Code, path: String) {
        self.code = code
        self.path = path
    }

    public var description: String {
        switch code {
        case .insecurePermissions(let mode):
            let octal = String(mode & 0o7777, radix: 8).leftPadded(4)
            return "key file \(path) has mode \(octal); run chmod 600 \(path)"
        case .truncated(let n):
            return "key file \(path) is truncated (\(n) bytes); restore it from a backup, or move it away to create a new identity"
        case .corrupt(let reason):
            return "key file \(path) is not a libp2p Ed25519 private key (\(reason)); restore it from a backup, or move it away to create a new identity"
        case .wrongKeyType(let type):
            return "key file \(path) holds a \(Self.keyTypeName(type)) key (type \(type)); only Ed25519 (type 1) is supported"
        case .publicKeyMismatch:
            return "key file \(path) is corrupt: its public key does not match its seed"
        case .notARegularFile:
            return "key file \(path) is not a regular file"
        case .io(let operation, let errno):
            return "key file \(path): \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }

    private static func keyTypeName(_ type: UInt64) -> String {
        switch type {
        case 0: "RSA"
        case 1: "Ed25519"
        case 2: "secp256k1"
        case 3: "ECDSA"
        default: "unknown"
        }
    }
}
