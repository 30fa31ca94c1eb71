import LatticaCore

/// The on-disk model format: versioned, self-describing, content-addressed. Byte layout in
/// Docs/LEARNING.md ("Model file"). All integers little-endian.
///
///     "LTCM" | u16 version=1 | u8 dtype=1 (float32) | u8 flags=0 | u16 K | kind (K bytes UTF-8)
///     | u32 T | T × (u16 L | name (L bytes) | u8 rank | rank × u32 dim)
///     | tensor data in order, float32 LE | 32-byte SHA-256 of everything before
///
/// The trailing SHA-256 is the model's content address (`ModelFile.id`).
public struct ModelFile: Hashable, Sendable {
    public static let magic: [UInt8] = Array("LTCM".utf8)
    public static let version: UInt16 = 1
    public static let dtypeFloat32: UInt8 = 1
    /// Refuse headers describing more than this many scalars (a 4 GiB model) before allocating.
    public static let maxScalars = 1 << 30

    /// Free-form architecture tag, e.g. "mlp:relu" or "mlp:relu:optimizer-state".
    public var kind: String
    public var tensors: [(name: String, tensor: Tensor)]

    public init(kind: String, tensors: [(name: String, tensor: Tensor)]) {
        self.kind = kind; self.tensors = tensors
    }

    public static func == (a: ModelFile, b: ModelFile) -> Bool {
        a.kind == b.kind && a.tensors.count == b.tensors.count
            && zip(a.tensors, b.tensors).allSatisfy { $0.name == $1.name && $0.tensor == $1.tensor }
    }

    public func hash(into h: inout Hasher) { h.combine(kind); for t in tensors { h.combine(t.name); h.combine(t.tensor) } }

    /// An MLP's parameters as a model file.
    public init(architecture: MLPArchitecture, parameters: [Float]) {
        self.init(kind: "mlp:\(architecture.activation.rawValue)", tensors: architecture.tensors(parameters))
    }

    /// The MLP architecture and flat parameters this file describes, or nil if it is not an MLP.
    public func mlp() -> (MLPArchitecture, [Float])? {
        let parts = kind.split(separator: ":")
        guard parts.count >= 2, parts[0] == "mlp", let act = Activation(rawValue: String(parts[1])),
              tensors.count >= 2, tensors.count % 2 == 0 else { return nil }
        var sizes = [Int]()
        var flat = [Float]()
        for l in 0..<(tensors.count / 2) {
            let w = tensors[2 * l].tensor, b = tensors[2 * l + 1].tensor
            guard w.rank == 2, b.rank == 1, b.shape[0] == w.shape[1] else { return nil }
            if l == 0 { sizes.append(w.shape[0]) } else if sizes.last != w.shape[0] { return nil }
            sizes.append(w.shape[1])
            flat += w.scalars; flat += b.scalars
        }
        return (MLPArchitecture(sizes: sizes, activation: act), flat)
    }

    /// Serialises; the last 32 bytes are the SHA-256 of the rest.
    public func encoded() -> [UInt8] {
        var out = Self.magic
        out.appendLE(Self.version)
        out.append(Self.dtypeFloat32)
        out.append(0)
        let k = Array(kind.utf8)
        out.appendLE(UInt16(k.count)); out += k
        out.appendLE(UInt32(tensors.count))
        for (name, t) in tensors {
            let n = Array(name.utf8)
            out.appendLE(UInt16(n.count)); out += n
            out.append(UInt8(t.rank))
            for d in t.shape { out.appendLE(UInt32(d)) }
        }
        for (_, t) in tensors { out.appendFloats(t.scalars) }
        out += PureSHA256.hash(out)
        return out
    }

    /// Content address: SHA-256 of the encoding without its trailer (= the trailer).
    public var id: [UInt8] { Array(encoded().suffix(32)) }

    /// Parses and validates a model file. Never traps; every failure names what was wrong.
    public init(decoding bytes: [UInt8]) throws(ModelFileError) {
        var r = ByteReader(bytes)
        do {
            guard Array(try r.take(4, "magic")) == Self.magic else { throw ModelFileError.notAModelFile }
            let version = try r.u16("version")
            guard version == Self.version else { throw ModelFileError.unsupportedVersion(found: Int(version), supported: Int(Self.version)) }
            let dtype = try r.u8("dtype")
            guard dtype == Self.dtypeFloat32 else { throw ModelFileError.unsupportedDType(Int(dtype)) }
            _ = try r.u8("flags")
            guard bytes.count >= r.offset + 32 else { throw ModelFileError.truncated(what: "header", offset: bytes.count) }
            let body = bytes[..<(bytes.count - 32)]
            if PureSHA256.hash(body) != Array(bytes.suffix(32)) {
                throw ModelFileError.checksumMismatch
            }
            let kLen = Int(try r.u16("kind length"))
            guard let kind = String(validating: try r.take(kLen, "kind"), as: UTF8.self) else { throw ModelFileError.malformed("kind is not UTF-8") }
            let count = Int(try r.u32("tensor count"))
            guard count <= 1 << 16 else { throw ModelFileError.malformed("\(count) tensors") }
            var headers: [(String, [Int])] = []
            var total = 0
            for i in 0..<count {
                let nLen = Int(try r.u16("tensor \(i) name length"))
                guard let name = String(validating: try r.take(nLen, "tensor \(i) name"), as: UTF8.self) else {
                    throw ModelFileError.malformed("tensor \(i) name is not UTF-8")
                }
                let rank = Int(try r.u8("tensor \(i) rank"))
                var shape: [Int] = []
                var c = 1
                for _ in 0..<rank {
                    let d = Int(try r.u32("tensor \(name) shape"))
                    c = c.multipliedReportingOverflow(by: d).overflow ? Self.maxScalars + 1 : c * d
                    guard c <= Self.maxScalars else { throw ModelFileError.malformed("tensor \(name) too large") }
                    shape.append(d)
                }
                total += c
                guard total <= Self.maxScalars else { throw ModelFileError.malformed("model too large") }
                headers.append((name, shape))
            }
            guard r.remaining - 32 == total * 4 else {
                throw r.remaining - 32 < total * 4
                    ? ModelFileError.truncated(what: "tensor data", offset: bytes.count)
                    : ModelFileError.malformed("\(r.remaining - 32 - total * 4) trailing bytes")
            }
            var tensors: [(String, Tensor)] = []
            for (name, shape) in headers {
                let n = shape.reduce(1, *)
                let raw = try r.take(n * 4, "tensor \(name) data")
                var values = [Float](repeating: 0, count: n)
                var o = raw.startIndex
                for j in 0..<n {
                    let bits = UInt32(raw[o]) | UInt32(raw[o + 1]) << 8 | UInt32(raw[o + 2]) << 16 | UInt32(raw[o + 3]) << 24
                    let v = Float(bitPattern: bits)
                    guard v.isFinite else { throw ModelFileError.nonFinite(tensor: name, index: j) }
                    values[j] = v
                    o += 4
                }
                tensors.append((name, Tensor(shape: shape, scalars: values)))
            }
            self.init(kind: kind, tensors: tensors)
        } catch let e as DecodeFailure {
            throw ModelFileError.truncated(what: e.what, offset: e.offset)
        } catch let e as ModelFileError {
            throw e
        } catch {
            throw ModelFileError.malformed("\(error)")
        }
    }
}

public enum ModelFileError: Error, Hashable, Sendable, CustomStringConvertible {
    case notAModelFile
    case unsupportedVersion(found: Int, supported: Int)
    case unsupportedDType(Int)
    case truncated(what: String, offset: Int)
    case checksumMismatch
    case nonFinite(tensor: String, index: Int)
    case malformed(String)

    public var description: String {
        switch self {
        case .notAModelFile: "not a Lattica model file (magic is not LTCM)"
        case .unsupportedVersion(let f, let s): "model file version \(f) is not supported (this build reads version \(s))"
        case .unsupportedDType(let d): "model file dtype \(d) is not supported (1 = float32)"
        case .truncated(let what, let o): "model file truncated: \(what) missing at byte \(o)"
        case .checksumMismatch: "model file is truncated or corrupt: SHA-256 does not match"
        case .nonFinite(let t, let i): "model file holds a NaN or infinity in tensor \(t) at index \(i)"
        case .malformed(let s): "malformed model file: \(s)"
        }
    }
}
