public import LatticaCore

extension Averaging {
    /// `/lattica/avg/1.0.0` (ours, Docs/WIRE.md): one pull per stream, in the swarm's
    /// length-prefixed request/response framing.
    ///
    ///     request:  u8 version (1) | uvarint run length | run (UTF-8) | uvarint step
    ///     response: u8 version (1) | u8 status | uvarint step | uvarint count | count × f32 LE
    ///
    /// `status` 0 = θ follows (of outer step `step`, the answerer's latest within its staleness
    /// bound); 1 = unknown run; 2 = no model for a step that close (count 0). The receiver checks
    /// `count` against the run's model before it allocates.
    ///
    /// Version 2 (the first byte of request and reply; same layout) adds status 3, model-ref:
    /// `count` is the run's parameter count and 32 bytes follow instead of the floats, the id of
    /// an `LMF2` model (`/lattica/model/1.0.0`) of exactly `4 × count` bytes that is θ of `step`.
    /// A version-2 request says "a model-ref is welcome"; the answer to it has version 2 (status
    /// 0 to 3). A version-1 request gets a version-1 answer (0 to 2), as before. A daemon from
    /// before version 2 answers a version-2 request `01 01 00 00` (it did not decode): a
    /// version-1 reply to a version-2 request tells the puller to ask that peer again in version 1.
    public enum Wire {
        public static let protocolID = "/lattica/avg/1.0.0"
        public static let version: UInt8 = 1
        public static let versionModelRef: UInt8 = 2
        public static let refLength = 32

        public enum Status: UInt8, Sendable { case model = 0, unknownRun = 1, noModel = 2, modelRef = 3 }

        public struct Pull: Hashable, Sendable {
            public var run: String
            public var step: Int
            /// 1, or 2 (`versionModelRef`: a model-ref answer is welcome).
            public var version: UInt8
            public init(run: String, step: Int, version: UInt8 = Wire.version) { self.run = run; self.step = step; self.version = version }
        }

        public struct Reply: Hashable, Sendable {
            public var status: Status
            public var step: Int
            public var parameters: [Float]
            public var version: UInt8
            /// With `.modelRef`: the model's id (32 bytes); `count` is then `refCount`.
            public var ref: [UInt8]
            public var refCount: Int
            public init(status: Status, step: Int, parameters: [Float], version: UInt8 = Wire.version) {
                self.status = status; self.step = step; self.parameters = parameters; self.version = version; ref = []; refCount = 0
            }
            public init(ref: [UInt8], step: Int, count: Int) {
                precondition(ref.count == Wire.refLength)
                status = .modelRef; self.step = step; parameters = []; version = Wire.versionModelRef; self.ref = ref; refCount = count
            }
        }

        public enum DecodeError: Error, Hashable, Sendable {
            case truncated(String)
            case badVersion(UInt8)
            case badStatus(UInt8)
            case tooLong(String)
            case trailingBytes
            case wrongCount(got: Int, expected: Int)
            case badRun
        }

        public static func encode(_ p: Pull) -> [UInt8] {
            var out: [UInt8] = [p.version]
            let run = Array(p.run.utf8)
            out += Varint.encoded(UInt64(run.count))
            out += run
            out += Varint.encoded(UInt64(max(0, p.step)))
            return out
        }

        public static func decodePull(_ b: [UInt8], maxRunLength: Int = 256) throws(DecodeError) -> Pull {
            var i = 0
            guard b.count >= 1 else { throw .truncated("version") }
            guard b[0] == version || b[0] == versionModelRef else { throw .badVersion(b[0]) }
            i = 1
            let n = try uvarint(b, &i, "run length")
            guard n <= UInt64(maxRunLength) else { throw .tooLong("run") }
            guard b.count - i >= Int(n) else { throw .truncated("run") }
            guard let run = String(validating: b[i..<(i + Int(n))], as: UTF8.self) else { throw .badRun }
            i += Int(n)
            let step = try uvarint(b, &i, "step")
            guard step <= UInt64(Int32.max) else { throw .tooLong("step") }
            guard i == b.count else { throw .trailingBytes }
            return Pull(run: run, step: Int(step), version: b[0])
        }

        public static func encode(_ r: Reply) -> [UInt8] {
            var out: [UInt8] = [r.version, r.status.rawValue]
            out += Varint.encoded(UInt64(max(0, r.step)))
            if r.status == .modelRef { return out + Varint.encoded(UInt64(r.refCount)) + r.ref }
            out += Varint.encoded(UInt64(r.parameters.count))
            out.reserveCapacity(out.count + 4 * r.parameters.count)
            r.parameters.withUnsafeBytes { out.append(contentsOf: $0) }  // little endian on every platform we build for
            return out
        }

        /// The same bytes as `encode(r)`, written into `out` (its storage reused when it is
        /// uniquely referenced and large enough: no allocation and no page faults per reply).
        public static func encode(_ r: Reply, into out: inout [UInt8]) {
            out.removeAll(keepingCapacity: true)
            out.reserveCapacity(24 + 4 * r.parameters.count)
            out.append(r.version)
            out.append(r.status.rawValue)
            out += Varint.encoded(UInt64(max(0, r.step)))
            out += Varint.encoded(UInt64(r.parameters.count))
            r.parameters.withUnsafeBytes { out.append(contentsOf: $0) }
        }

        /// `expectedCount`: the run's parameter count; any other count (but 0 with a non-model
        /// status) is refused before a float is read. Version 1 or 2; model-ref only in version 2.
        public static func decodeReply(_ b: [UInt8], expectedCount: Int) throws(DecodeError) -> Reply {
            guard b.count >= 2 else { throw .truncated("header") }
            guard b[0] == version || b[0] == versionModelRef else { throw .badVersion(b[0]) }
            guard let status = Status(rawValue: b[1]), status != .modelRef || b[0] == versionModelRef else { throw .badStatus(b[1]) }
            var i = 2
            let step = try uvarint(b, &i, "step")
            guard step <= UInt64(Int32.max) else { throw .tooLong("step") }
            let count = try uvarint(b, &i, "count")
            if status == .modelRef {
                guard count == UInt64(expectedCount) else { throw .wrongCount(got: Int(clamping: count), expected: expectedCount) }
                guard b.count - i == refLength else { throw b.count - i < refLength ? .truncated("model id") : .trailingBytes }
                return Reply(ref: Array(b[i...]), step: Int(step), count: expectedCount)
            }
            let want = status == .model ? expectedCount : 0
            guard count == UInt64(want) else { throw .wrongCount(got: Int(clamping: count), expected: want) }
            guard b.count - i == 4 * want else { throw b.count - i < 4 * want ? .truncated("parameters") : .trailingBytes }
            // Copied once into uninitialised storage (no zero-filling pass over a 100 MB model first).
            let p = [Float](unsafeUninitializedCapacity: want) { dst, initialized in
                b.withUnsafeBytes { src in UnsafeMutableRawBufferPointer(dst).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[i...])) }
                initialized = want
            }
            return Reply(status: status, step: Int(step), parameters: p, version: b[0])
        }

        static func uvarint(_ b: [UInt8], _ i: inout Int, _ what: String) throws(DecodeError) -> UInt64 {
            let r: (value: UInt64, length: Int)?
            do { r = try Varint.decode(b[i...]) } catch { throw .tooLong(what) }
            guard let (v, n) = r else { throw .truncated(what) }
            i += n
            return v
        }
    }
}
