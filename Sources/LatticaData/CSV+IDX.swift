public import LatticaLearning
import Foundation

extension DataFiles {
    /// Reads a CSV data set: one record per line, comma-separated numbers, the label (an integer
    /// 0..<classes) in the LAST column. A first line that does not parse as numbers is a header
    /// and is skipped; blank lines and lines starting with '#' are ignored. Every record must have
    /// the same number of columns. Errors name the file and line.
    public static func readCSV(_ path: String, classes: Int? = nil) throws(DataFileError) -> Dataset {
        let bytes = try readBytes(path)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw DataFileError(path: path, message: "not UTF-8 text") }
        var features: [Float] = []
        var labels: [Int32] = []
        var width: Int?
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let numbers = cells.map { Float($0) }
            if numbers.contains(where: { $0 == nil }) {
                if labels.isEmpty && width == nil { width = cells.count; continue }  // header
                let col = numbers.firstIndex { $0 == nil }!
                throw DataFileError(path: path, location: "line \(lineNo)", message: "column \(col + 1) is not a number: \"\(cells[col])\"")
            }
            if let w = width, w != cells.count {
                throw DataFileError(path: path, location: "line \(lineNo)", message: "\(cells.count) columns, expected \(w)")
            }
            width = cells.count
            guard cells.count >= 2 else { throw DataFileError(path: path, location: "line \(lineNo)", message: "need at least one feature and a label") }
            let values = numbers.map { $0! }
            guard values.allSatisfy(\.isFinite) else { throw DataFileError(path: path, location: "line \(lineNo)", message: "NaN or infinite value") }
            let y = values.last!
            guard y >= 0, y == y.rounded(), y < 65536 else { throw DataFileError(path: path, location: "line \(lineNo)", message: "label \(y) is not a class index") }
            if let c = classes, Int(y) >= c { throw DataFileError(path: path, location: "line \(lineNo)", message: "label \(Int(y)) ≥ \(c) classes") }
            features += values.dropLast()
            labels.append(Int32(y))
        }
        guard let w = width, !labels.isEmpty else { throw DataFileError(path: path, message: "no records") }
        let c = classes ?? Int(labels.max()! + 1)
        return Dataset(features: features, labels: labels, featureCount: w - 1, classes: max(c, 2))
    }

    /// Reads a pair of IDX files (LeCun's MNIST format: magic 0x0000 08 dims, big-endian u32 dims;
    /// images u8 [n, rows, cols], labels u8 [n]); `.gz` files are decompressed with gzip -dc.
    /// Pixels are scaled to [0, 1]. `limit` keeps the first rows.
    public static func readIDX(images: String, labels: String, classes: Int = 10, limit: Int? = nil) throws(DataFileError) -> Dataset {
        let img = try readMaybeGzip(images), lab = try readMaybeGzip(labels)
        func header(_ b: [UInt8], _ path: String, dims: Int) throws(DataFileError) -> [Int] {
            guard b.count >= 4 + 4 * dims else { throw DataFileError(path: path, location: "header", message: "truncated") }
            guard b[0] == 0, b[1] == 0, b[2] == 0x08 else { throw DataFileError(path: path, location: "header", message: "not an unsigned-byte IDX file") }
            guard Int(b[3]) == dims else { throw DataFileError(path: path, location: "header", message: "\(b[3]) dimensions, expected \(dims)") }
            return (0..<dims).map { i in (0..<4).reduce(0) { $0 << 8 | Int(b[4 + 4 * i + $1]) } }
        }
        let di = try header(img, images, dims: 3), dl = try header(lab, labels, dims: 1)
        guard di[0] == dl[0] else { throw DataFileError(path: labels, message: "\(dl[0]) labels for \(di[0]) images") }
        let n = min(di[0], limit ?? di[0]), d = di[1] * di[2]
        let io = 16, lo = 8
        guard img.count >= io + di[0] * d else { throw DataFileError(path: images, location: "record \((img.count - io) / max(d, 1))", message: "truncated") }
        guard lab.count >= lo + dl[0] else { throw DataFileError(path: labels, location: "record \(lab.count - lo)", message: "truncated") }
        var f = [Float](repeating: 0, count: n * d)
        for i in 0..<(n * d) { f[i] = Float(img[io + i]) / 255 }
        var y = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            guard Int(lab[lo + i]) < classes else { throw DataFileError(path: labels, location: "record \(i)", message: "label \(lab[lo + i]) ≥ \(classes)") }
            y[i] = Int32(lab[lo + i])
        }
        return Dataset(features: f, labels: y, featureCount: d, classes: classes)
    }

    static func readMaybeGzip(_ path: String) throws(DataFileError) -> [UInt8] {
        guard path.hasSuffix(".gz") else { return try readBytes(path) }
        guard FileManager.default.fileExists(atPath: path) else { throw DataFileError(path: path, message: "no such file") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gzip", "-dc", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        do { try p.run() } catch { throw DataFileError(path: path, message: "cannot run gzip: \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw DataFileError(path: path, message: "gzip -dc failed (corrupt gzip?)") }
        return [UInt8](data)
    }
}
