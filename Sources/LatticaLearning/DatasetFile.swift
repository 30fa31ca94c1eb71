import LatticaCore

/// Decoder of the "LDS1" data-set fixture written by Scripts/make-learning-fixtures.py
/// (layout in Docs/LEARNING.md): magic | u32 count | u32 features | u32 classes | u8 dtype (1 = u8,
/// 2 = float32) | 3 zero bytes | features | u8 labels | SHA-256 of everything before.
public enum DatasetFile {
    public static func decode(_ bytes: [UInt8]) throws(DatasetFileError) -> Dataset {
        guard bytes.count >= 20 + 32, Array(bytes[0..<4]) == Array("LDS1".utf8) else { throw .malformed("not an LDS1 file") }
        guard PureSHA256.hash(bytes[..<(bytes.count - 32)]) == Array(bytes.suffix(32)) else { throw .malformed("SHA-256 mismatch (truncated or corrupt)") }
        var r = ByteReader(bytes)
        do {
            _ = try r.take(4, "magic")
            let n = Int(try r.u32("count")), d = Int(try r.u32("features")), c = Int(try r.u32("classes"))
            let dtype = try r.u8("dtype")
            _ = try r.take(3, "padding")
            guard n > 0, d > 0, c > 1, c <= 256, n <= 1 << 26, d <= 1 << 20 else { throw DatasetFileError.malformed("bad header \(n)×\(d), \(c) classes") }
            let width = dtype == 1 ? 1 : dtype == 2 ? 4 : 0
            guard width > 0 else { throw DatasetFileError.malformed("dtype \(dtype)") }
            guard r.remaining == n * d * width + n + 32 else { throw DatasetFileError.malformed("length does not match header") }
            let raw = try r.take(n * d * width, "features")
            var f = [Float](repeating: 0, count: n * d)
            var o = raw.startIndex
            for i in 0..<(n * d) {
                if width == 1 { f[i] = Float(raw[o]); o += 1 } else {
                    f[i] = Float(bitPattern: UInt32(raw[o]) | UInt32(raw[o + 1]) << 8 | UInt32(raw[o + 2]) << 16 | UInt32(raw[o + 3]) << 24)
                    guard f[i].isFinite else { throw DatasetFileError.malformed("non-finite feature in record \(i / d)") }
                    o += 4
                }
            }
            let labels = try r.take(n, "labels").map { Int32($0) }
            if let bad = labels.firstIndex(where: { Int($0) >= c }) { throw DatasetFileError.malformed("record \(bad): label out of range") }
            return Dataset(features: f, labels: labels, featureCount: d, classes: c)
        } catch let e as DecodeFailure {
            throw .malformed("truncated at \(e.what)")
        } catch let e as DatasetFileError {
            throw e
        } catch {
            throw .malformed("\(error)")
        }
    }
}

public enum DatasetFileError: Error, Hashable, Sendable { case malformed(String) }
