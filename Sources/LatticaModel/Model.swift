import LatticaCore
import LatticaCrypto

/// Content-addressed model transfer (`/lattica/model/1.0.0`, ours; Docs/MODEL.md).
///
/// A model is a blob of bytes (a `ModelFile`, a checkpoint, any file) cut into chunks of
/// `1 << chunkShift` bytes (1 MiB by default; the last chunk is shorter). Its `Manifest` lists
/// the blob's size, the SHA-256 of the whole blob and the SHA-256 of every chunk; the model's id
/// is the SHA-256 of the manifest's canonical encoding. A downloader therefore checks the
/// manifest against the id before trusting anything in it, every chunk against the manifest as
/// it arrives (before it touches the disk), and the whole blob against the manifest at the end.
///
/// Pure: the logic here does no I/O. The shell (`ModelService`) reads and writes files and
/// carries the bytes; `Download` tells it what to store, `Upload` what to read and send.
public enum Model {
    public static let protocolID = "/lattica/model/1.0.0"
    /// 2^20 = 1 MiB chunks unless a manifest says otherwise.
    public static let defaultChunkShift: UInt8 = 20
    /// Chunk sizes a manifest may declare: 4 KiB ... 16 MiB.
    public static let chunkShifts: ClosedRange<UInt8> = 12...24
    public static let hashLength = 32
}

/// A model's id: SHA-256 of its manifest. Written as 64 lowercase hex digits.
public struct ModelID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Model.hashLength else { return nil }
        self.bytes = Array(bytes)
    }

    /// Parses 64 hex digits (either case); nil otherwise.
    public init?(hex: String) {
        let u = Array(hex.utf8)
        guard u.count == 2 * Model.hashLength else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(Model.hashLength)
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let hi = Self.nibble(u[i]), let lo = Self.nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        bytes = out
    }

    /// The id of a manifest's encoding.
    public init(manifestBytes: some Collection<UInt8>) { bytes = SHA256.hash(manifestBytes) }

    public var hex: String { Model.hex(bytes) }
    public var description: String { hex }
    public static func < (a: ModelID, b: ModelID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Model {
    public static func hex(_ b: some Collection<UInt8>) -> String { Hex.encode(b) }

    /// Why a peer's bytes were refused; the label of `lattica_model_rejected_total{reason}`.
    public enum Rejection: String, Sendable, CaseIterable {
        /// A chunk frame declared more bytes than its chunk has.
        case oversizedChunk = "oversized_chunk"
        /// A chunk frame declared fewer bytes than its chunk has, or the stream ended inside one.
        case truncatedChunk = "truncated_chunk"
        /// A chunk whose SHA-256 is not the manifest's.
        case hashMismatch = "hash_mismatch"
        /// A chunk other than the next one asked for.
        case unexpectedChunk = "unexpected_chunk"
        /// A manifest frame over the limit.
        case manifestTooLarge = "manifest_too_large"
        /// A manifest that does not decode, or declares a model over the size limit.
        case manifestMalformed = "manifest_malformed"
        /// A manifest whose SHA-256 is not the id asked for.
        case manifestMismatch = "manifest_mismatch"
        /// A frame type we do not know, or a frame the request did not ask for.
        case malformedFrame = "malformed_frame"
        /// The stream ended before everything asked for arrived (between frames).
        case incomplete
        /// No progress within the deadline (a peer that streams slowly forever).
        case timeout
        /// The whole blob, read back from disk, does not match the manifest.
        case blobMismatch = "blob_mismatch"
        /// An inbound request that does not decode.
        case malformedRequest = "malformed_request"
    }
}
