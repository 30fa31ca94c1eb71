import LatticaCore
import LatticaCrypto

extension Model {
    /// What a model is made of. Canonical encoding (Docs/MODEL.md), all integers big-endian:
    ///
    ///     "LMF1" (4C 4D 46 31) ‖ u8 chunkShift ‖ u64 size ‖ 32 B SHA-256(blob) ‖ n × 32 B SHA-256(chunk i)
    ///
    /// with n = ceil(size / 2^chunkShift). Exactly 45 + 32·n bytes; anything else is malformed.
    ///
    /// `LMF2` (4C 4D 46 32) has the same layout, but its 32-byte hash field is SHA-256 of the
    /// concatenated chunk hashes instead of the blob's hash (checked when it decodes): the chunk
    /// hashes already authenticate every byte, so a model published from memory (an averaging
    /// pull's θ, `ModelService+Memory.swift`) costs one SHA-256 pass over its bytes, not two.
    public struct Manifest: Equatable, Sendable {
        public static let magic: [UInt8] = [0x4C, 0x4D, 0x46, 0x31]  // "LMF1"
        public static let magicChunkList: [UInt8] = [0x4C, 0x4D, 0x46, 0x32]  // "LMF2"
        public static let headerLength = 4 + 1 + 8 + 32

        /// What the 32-byte hash field holds.
        public enum Kind: Sendable, Equatable {
            /// `LMF1`: SHA-256 of the whole blob.
            case blob
            /// `LMF2`: SHA-256 of the chunk hashes, concatenated in order.
            case chunkList
        }

        public let kind: Kind
        public let chunkShift: UInt8
        public let size: UInt64
        public let blobHash: [UInt8]
        public let chunkHashes: [[UInt8]]

        public init(chunkShift: UInt8, size: UInt64, blobHash: [UInt8], chunkHashes: [[UInt8]]) {
            precondition(Model.chunkShifts.contains(chunkShift) && blobHash.count == 32 && chunkHashes.allSatisfy { $0.count == 32 })
            precondition(UInt64(chunkHashes.count) == Self.chunkCount(size: size, chunkShift: chunkShift))
            kind = .blob
            self.chunkShift = chunkShift; self.size = size; self.blobHash = blobHash; self.chunkHashes = chunkHashes
        }

        /// An `LMF2` manifest of chunks hashed elsewhere (`Model.chunkHashes`).
        public init(chunkListShift chunkShift: UInt8, size: UInt64, chunkHashes: [[UInt8]]) {
            precondition(Model.chunkShifts.contains(chunkShift) && size >= 1 && chunkHashes.allSatisfy { $0.count == 32 })
            precondition(UInt64(chunkHashes.count) == Self.chunkCount(size: size, chunkShift: chunkShift))
            kind = .chunkList
            self.chunkShift = chunkShift; self.size = size; self.chunkHashes = chunkHashes
            blobHash = Self.chunkListHash(chunkHashes)
        }

        static func chunkListHash(_ hashes: [[UInt8]]) -> [UInt8] {
            var h = Model.Hasher()
            for c in hashes { h.update(c) }
            return h.finalize()
        }

        public var chunkSize: Int { 1 << Int(chunkShift) }
        public var chunkCount: Int { chunkHashes.count }

        public static func chunkCount(size: UInt64, chunkShift: UInt8) -> UInt64 {
            let c = UInt64(1) << UInt64(chunkShift)
            return size / c + (size % c == 0 ? 0 : 1)
        }

        /// Bytes of chunk `i` (the last one may be shorter).
        public func chunkLength(_ i: Int) -> Int {
            precondition(i >= 0 && i < chunkCount)
            let start = UInt64(i) << UInt64(chunkShift)
            return Int(min(UInt64(chunkSize), size - start))
        }

        /// Byte offset of chunk `i` in the blob.
        public func chunkOffset(_ i: Int) -> UInt64 { UInt64(i) << UInt64(chunkShift) }

        public var encoded: [UInt8] {
            var out = kind == .blob ? Self.magic : Self.magicChunkList
            out.reserveCapacity(Self.headerLength + 32 * chunkCount)
            out.append(chunkShift)
            Model.appendBE(&out, size, bytes: 8)
            out += blobHash
            for h in chunkHashes { out += h }
            return out
        }

        public var id: ModelID { ModelID(manifestBytes: encoded) }

        /// Decodes a manifest of at most `maxChunks` chunks and `maxSize` bytes of blob; nil when
        /// malformed. Bounded: it looks at the length before reading any hash.
        public init?(decoding b: ArraySlice<UInt8>, maxSize: UInt64, maxChunks: Int) {
            guard b.count >= Self.headerLength else { return nil }
            let kind: Kind
            if b.prefix(4).elementsEqual(Self.magic) { kind = .blob } else if b.prefix(4).elementsEqual(Self.magicChunkList) { kind = .chunkList } else { return nil }
            let s = b.startIndex
            let shift = b[s + 4]
            guard Model.chunkShifts.contains(shift) else { return nil }
            let size = Model.readBE(b, at: s + 5, bytes: 8)
            guard size >= 1, size <= maxSize else { return nil }
            let n = Self.chunkCount(size: size, chunkShift: shift)
            guard n <= UInt64(maxChunks), b.count == Self.headerLength + 32 * Int(n) else { return nil }
            var hs: [[UInt8]] = []
            hs.reserveCapacity(Int(n))
            for i in 0..<Int(n) { hs.append(Array(b[(s + 45 + 32 * i)..<(s + 77 + 32 * i)])) }
            let field = Array(b[(s + 13)..<(s + 45)])
            guard kind == .blob || field == Self.chunkListHash(hs) else { return nil }
            self.kind = kind
            chunkShift = shift
            self.size = size
            blobHash = field
            chunkHashes = hs
        }
    }

    /// Builds a manifest from a blob fed in any pieces (the shell reads the file, this hashes).
    public struct ManifestBuilder: Sendable {
        public let chunkShift: UInt8
        private var whole = Model.Hasher()
        private var chunk = Model.Hasher()
        private var inChunk = 0
        private var hashes: [[UInt8]] = []
        public private(set) var size: UInt64 = 0

        public init(chunkShift: UInt8 = Model.defaultChunkShift) {
            precondition(Model.chunkShifts.contains(chunkShift))
            self.chunkShift = chunkShift
        }

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            whole.update(raw: bytes)
            let c = 1 << Int(chunkShift)
            var rest = bytes
            while !rest.isEmpty {
                let take = min(rest.count, c - inChunk)
                chunk.update(raw: UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
                inChunk += take
                rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
                if inChunk == c { hashes.append(chunk.finalize()); chunk = Model.Hasher(); inChunk = 0 }
            }
            size += UInt64(bytes.count)
        }

        public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

        /// The manifest; nil for an empty blob (a model has at least one byte).
        public mutating func finish() -> Manifest? {
            guard size > 0 else { return nil }
            if inChunk > 0 { hashes.append(chunk.finalize()); inChunk = 0 }
            return Manifest(chunkShift: chunkShift, size: size, blobHash: whole.finalize(), chunkHashes: hashes)
        }
    }

    static func appendBE(_ out: inout [UInt8], _ v: UInt64, bytes: Int) {
        for i in (0..<bytes).reversed() { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    static func readBE(_ b: ArraySlice<UInt8>, at i: Int, bytes: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<bytes { v = v << 8 | UInt64(b[i + k]) }
        return v
    }
}
