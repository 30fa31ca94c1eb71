import LatticaCrypto
import LatticaSHA

extension Model {
    /// SHA-256 of chunks and blobs: with the CPU's SHA extensions when it has them (4 to 5 times
    /// libsodium's portable code here), else libsodium. The same digest either way.
    public static func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        FastSHA256.isAvailable ? FastSHA256.hash(bytes) : SHA256.hash(bytes)
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { sha256($0) } }

    /// Incremental SHA-256, dispatched as `sha256`.
    public struct Hasher: Sendable {
        private enum Impl: Sendable {
            case fast(FastSHA256.Hasher)
            case sodium(SHA256.Hasher)
        }
        private var impl: Impl

        public init() { impl = FastSHA256.isAvailable ? .fast(FastSHA256.Hasher()) : .sodium(SHA256.Hasher()) }

        public mutating func update(raw bytes: UnsafeRawBufferPointer) {
            switch impl {
            case .fast(var h): h.update(bytes); impl = .fast(h)
            case .sodium(var h): h.update(raw: bytes); impl = .sodium(h)
            }
        }

        public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update(raw: $0) } }

        public mutating func finalize() -> [UInt8] {
            switch impl {
            case .fast(var h): h.finalize()
            case .sodium(var h): h.finalize()
            }
        }
    }
}
