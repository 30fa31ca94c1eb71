import Foundation
public import LatticaLearning

/// An error reading a data or model file: names the file and, where it applies, the line (CSV) or
/// record (IDX, fixtures).
public struct DataFileError: Error, CustomStringConvertible, Sendable, Hashable {
    public var path: String
    public var location: String?
    public var message: String
    public init(path: String, location: String? = nil, message: String) {
        self.path = path; self.location = location; self.message = message
    }
    public var description: String { "\(path)\(location.map { ":" + $0 } ?? ""): \(message)" }
}

/// The I/O side of the learning layer: reading data sets (fixtures, CSV, IDX) and writing model
/// checkpoints atomically. Formats: Docs/LEARNING.md.
public enum DataFiles {
    /// The repository's committed fixtures (Tests/Fixtures/learning), found relative to this
    /// source file at build time, or `LATTICA_FIXTURES` if set.
    public static var fixtureDirectory: String {
        if let env = ProcessInfo.processInfo.environment["LATTICA_FIXTURES"] { return env }
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/Fixtures/learning").path
    }

    public static func readBytes(_ path: String) throws(DataFileError) -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw DataFileError(path: path, message: "cannot read file")
        }
        return [UInt8](d)
    }

    /// A committed LDS1 fixture by name ("digits", "breast_cancer").
    public static func fixture(_ name: String) throws(DataFileError) -> Dataset {
        let path = fixtureDirectory + "/\(name).lds"
        do { return try DatasetFile.decode(try readBytes(path)) } catch let e as DatasetFileError {
            guard case .malformed(let m) = e else { throw DataFileError(path: path, message: "\(e)") }
            throw DataFileError(path: path, message: m)
        } catch let e as DataFileError { throw e } catch { throw DataFileError(path: path, message: "\(error)") }
    }

    /// Reads a model file; errors name the file.
    public static func loadModel(_ path: String) throws(DataFileError) -> ModelFile {
        let bytes = try readBytes(path)
        do { return try ModelFile(decoding: bytes) } catch { throw DataFileError(path: path, message: error.description) }
    }

    /// Writes `bytes` atomically: a temporary file in the same directory, fsync, rename over the
    /// target, fsync of the directory. A crash leaves either the old or the new file, never a mix.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(DataFileError) {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DataFileError(path: tmp, message: "cannot create: \(String(cString: strerror(errno)))") }
        var ok = bytes.withUnsafeBytes { buf -> Bool in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw DataFileError(path: path, message: "write failed: \(String(cString: strerror(errno)))")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Saves a checkpoint (model parameters + Adam state + step counter) atomically.
    public static func saveCheckpoint(_ checkpoint: Checkpoint, to path: String) throws(DataFileError) {
        try writeAtomically(checkpoint.modelFile().encoded(), to: path)
    }

    public static func loadCheckpoint(_ path: String) throws(DataFileError) -> Checkpoint {
        let file = try loadModel(path)
        guard let c = Checkpoint(file) else { throw DataFileError(path: path, message: "not a checkpoint (kind \(file.kind))") }
        return c
    }
}
