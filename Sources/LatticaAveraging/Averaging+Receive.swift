public import LatticaCore

extension Averaging.Wire {
    /// A reply (`/lattica/avg/1.0.0` response, the bytes after the swarm's length prefix) decoded
    /// as it arrives, with the same outcomes as `decodeReply` on the whole message (tested). The
    /// header is checked first (version, status, a `count` equal to the run's model, else refused
    /// before anything is allocated); the floats then go straight from the stream's chunks into
    /// one buffer (a reused one when given), in the same pass:
    ///
    /// - for a model of a step in `deltaSteps`, as its delta θ − φ, with the finiteness check and
    ///   ‖θ − φ‖² (what `Averaging.Instance.onDelta` checks);
    /// - otherwise (a peer far ahead: a catch-up candidate) as θ itself, with the finiteness check.
    ///
    /// So a 100 MB model costs one copy into warm memory instead of a copy into a fresh message
    /// buffer, a decoding copy, a check pass, a distance pass and a delta allocation.
    public struct ReplyReceiver: Sendable {
        public enum Kind: Sendable, Equatable { case delta, theta }

        public struct Received: Sendable {
            public var status: Status
            public var step: Int
            public var kind: Kind
            /// count floats (empty unless status is `.model`): θ − φ or θ, as `kind` says.
            public var values: [Float]
            public var finite: Bool
            /// ‖θ − φ‖ (delta kind only; 0 otherwise).
            public var norm: Double
            /// The reply's version byte (1 from a daemon that predates model-refs).
            public var version: UInt8 = Averaging.Wire.version
            /// With `.modelRef`: the model's id; `values` is then the buffer to fetch it into.
            public var ref: [UInt8] = []

            public init(status: Status, step: Int, kind: Kind, values: [Float], finite: Bool, norm: Double) {
                self.status = status; self.step = step; self.kind = kind; self.values = values; self.finite = finite; self.norm = norm
            }
        }

        public let expectedCount: Int
        public let deltaSteps: ClosedRange<Int>
        var header: [UInt8] = []
        var status: Status?
        var step = 0
        var count = 0
        var headerDone = false
        public private(set) var kind: Kind = .theta
        var values: [Float]
        var filled = 0
        var carry: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var carried = 0
        var finite = true
        var sumSquares = 0.0
        var version: UInt8 = Averaging.Wire.version
        var ref: [UInt8] = []

        /// `reuse`: a buffer of an earlier step to decode into (its contents are overwritten).
        public init(expectedCount: Int, deltaSteps: ClosedRange<Int>, reuse: [Float]? = nil) {
            self.expectedCount = expectedCount
            self.deltaSteps = deltaSteps
            values = reuse ?? []
        }

        /// The delta kind needs φ: the run's slow weights, unchanged for the whole reply.
        public var needsPhi: Bool { headerDone ? status != .modelRef && kind == .delta && filled < count : true }

        /// The next bytes of the reply. `phi` (count floats) is read in delta mode only.
        public mutating func onBytes(_ bytes: UnsafeRawBufferPointer, phi: UnsafeBufferPointer<Float>?) throws(DecodeError) {
            var rest = bytes[...]
            while !headerDone, let b = rest.first {
                rest = rest.dropFirst()
                header.append(b)
                try parseHeader()
            }
            guard headerDone, !rest.isEmpty else { return }
            if status == .modelRef {
                guard rest.count <= Averaging.Wire.refLength - ref.count else { throw .trailingBytes }
                ref += rest
                return
            }
            guard rest.count <= 4 * (count - filled) - carried else { throw .trailingBytes }
            if kind == .delta { precondition(phi?.count == count, "φ of the wrong shape") }
            var buffer = values
            values = []  // uniquely referenced while it is written
            defer { values = buffer }
            buffer.withUnsafeMutableBufferPointer { out in
                var p = UnsafeRawBufferPointer(rebasing: rest)
                // A float split across chunks: completed from the carry.
                if carried > 0 {
                    let take = min(4 - carried, p.count)
                    withUnsafeMutableBytes(of: &carry) { c in for j in 0..<take { c[carried + j] = p[j] } }
                    carried += take
                    p = UnsafeRawBufferPointer(rebasing: p[take...])
                    if carried == 4 {
                        withUnsafeBytes(of: carry) { c in put(c.baseAddress!, 1, into: out, phi: phi) }
                        carried = 0
                    }
                }
                let whole = p.count / 4
                if whole > 0 { put(p.baseAddress!, whole, into: out, phi: phi) }
                let left = p.count - 4 * whole
                if left > 0 {
                    withUnsafeMutableBytes(of: &carry) { c in for j in 0..<left { c[j] = p[4 * whole + j] } }
                    carried = left
                }
            }
        }

        mutating func put(_ src: UnsafeRawPointer, _ n: Int, into out: UnsafeMutableBufferPointer<Float>, phi: UnsafeBufferPointer<Float>?) {
            let dst = out.baseAddress! + filled
            switch kind {
            case .delta:
                let (ok, s) = Kernels.subtractChecked(src, phi!.baseAddress! + filled, dst, count: n)
                finite = finite && ok
                sumSquares += s
            case .theta:
                finite = Kernels.copyChecked(src, dst, count: n) && finite
            }
            filled += n
        }

        mutating func parseHeader() throws(DecodeError) {
            let b = header
            guard b.count >= 2 else { return }
            guard b[0] == Averaging.Wire.version || b[0] == Averaging.Wire.versionModelRef else { throw .badVersion(b[0]) }
            guard let s = Status(rawValue: b[1]), s != .modelRef || b[0] == Averaging.Wire.versionModelRef else { throw .badStatus(b[1]) }
            var i = 2
            guard let st = try Self.uvarintIfComplete(b, &i, "step") else { return }
            guard st <= UInt64(Int32.max) else { throw .tooLong("step") }
            guard let c = try Self.uvarintIfComplete(b, &i, "count") else { return }
            let want = s == .model || s == .modelRef ? expectedCount : 0
            guard c == UInt64(want) else { throw .wrongCount(got: Int(clamping: c), expected: want) }
            version = b[0]
            status = s
            step = Int(st)
            count = want
            if s == .modelRef {
                // The floats come over `/lattica/model/1.0.0`; the buffer is allocated then.
                kind = deltaSteps.contains(step) ? .delta : .theta
                headerDone = true
                return
            }
            kind = s == .model && deltaSteps.contains(step) ? .delta : .theta
            headerDone = true
            // Every element is written before it is read (`finish` refuses a short reply).
            if values.count != count { values = [Float](unsafeUninitializedCapacity: count) { _, n in n = count } }
        }

        static func uvarintIfComplete(_ b: [UInt8], _ i: inout Int, _ what: String) throws(DecodeError) -> UInt64? {
            let r: (value: UInt64, length: Int)?
            do { r = try Varint.decode(b[i...]) } catch { throw .tooLong(what) }
            guard let (v, n) = r else { return nil }
            i += n
            return v
        }

        /// The whole reply has arrived: its outcome, or why it is refused.
        public mutating func finish() throws(DecodeError) -> Received {
            guard headerDone, let status else { throw .truncated(header.count < 2 ? "header" : "step or count") }
            if status == .modelRef {
                guard ref.count == Averaging.Wire.refLength else { throw .truncated("model id") }
                var out = Received(status: status, step: step, kind: kind, values: values, finite: true, norm: 0)
                out.version = version
                out.ref = ref
                values = []
                return out
            }
            guard filled == count, carried == 0 else { throw .truncated("parameters") }
            var out = Received(status: status, step: step, kind: kind, values: values, finite: finite,
                               norm: kind == .delta ? sumSquares.squareRoot() : 0)
            out.version = version
            values = []
            return out
        }
    }
}
