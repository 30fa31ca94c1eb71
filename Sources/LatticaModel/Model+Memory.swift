import LatticaCore

extension Model {
    /// SHA-256 of chunks `range` of `bytes` cut at 2^`chunkShift`: the shell runs disjoint ranges
    /// on several threads and builds an `LMF2` manifest (`Manifest(chunkListShift:…)`) of them.
    public static func chunkHashes(_ bytes: UnsafeRawBufferPointer, chunkShift: UInt8, range: Range<Int>) -> [[UInt8]] {
        let c = 1 << Int(chunkShift)
        return range.map { i in
            let start = i * c, end = min(bytes.count, start + c)
            return sha256(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        }
    }

    /// The downloader's side of one CHUNKS stream whose chunks go straight into memory the caller
    /// owns (an averaging pull's buffer, `4 × count` bytes: `manifest.size`), with no chunk-sized
    /// buffer of its own: each body byte is copied from the stream into its place and hashed in
    /// the same step. A chunk counts only once its hash matched (`.chunk(index)`); the bytes of a
    /// chunk that did not match, or did not finish, are in the destination but never reported as
    /// verified, and the next attempt overwrites them. The same frame checks, in the same order,
    /// as `Download` (Docs/MODEL.md), so the same `Rejection`s. Sans-I/O: bytes and time in,
    /// events out.
    public struct MemoryDownload: Sendable {
        public enum Event: Sendable, Equatable {
            /// Chunk `index` is in the destination and matches its hash (with `verifiesHashes`;
            /// otherwise it is whole and still to be checked).
            case chunk(index: Int)
            /// Every chunk asked for arrived and was verified.
            case done
            case rejected(Rejection, String)
            case peerError(ErrorCode, String)
        }

        private enum State: Sendable {
            case header
            case chunkBody(index: Int, length: Int, got: Int)
            case errorBody(code: UInt8, length: Int)
            case finished
        }

        public let manifest: Manifest
        public let first: Int
        public let count: Int
        public let chunkTimeout: Duration
        /// false: a whole chunk is reported as `.chunk` without its hash checked here; the shell
        /// checks it (on another thread) before it uses the bytes.
        public let verifiesHashes: Bool
        public private(set) var deadline: Instant
        /// The next chunk due: everything before it (from `first`) is verified.
        public private(set) var next: Int
        private var state = State.header
        private var header: [UInt8] = []
        private var message: [UInt8] = []
        private var hasher = Model.Hasher()

        public init(manifest: Manifest, first: Int, count: Int, chunkTimeout: Duration, verifiesHashes: Bool = true, now: Instant) {
            precondition(first >= 0 && count >= 1 && first + count <= manifest.chunkCount)
            self.verifiesHashes = verifiesHashes
            self.manifest = manifest
            self.first = first
            self.count = count
            self.chunkTimeout = chunkTimeout
            next = first
            deadline = now + chunkTimeout
        }

        public var request: Request { .chunks(manifest.id, first: first, count: count) }
        public var isFinished: Bool { if case .finished = state { true } else { false } }

        /// Bytes from the server; chunk bodies are written into `destination` (`manifest.size` bytes).
        public mutating func onData(_ bytes: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, now: Instant) -> [Event] {
            precondition(destination.count == Int(manifest.size), "destination of the wrong size")
            var out: [Event] = []
            var rest = bytes[...]
            while !rest.isEmpty {
                switch state {
                case .finished:
                    return out
                case .header:
                    let t = header.first ?? rest.first!
                    guard let need = Frame.headerLength(t), t != Frame.manifest else {
                        return out + fail(.malformedFrame, t == Frame.manifest ? "a manifest frame where chunks were asked for" : "unknown frame type \(t)")
                    }
                    let take = min(need - header.count, rest.count)
                    header += rest.prefix(take)
                    rest = rest.dropFirst(take)
                    if header.count == need, let e = onHeader() { return out + [e] }
                case .chunkBody(let i, let n, let got):
                    let take = min(n - got, rest.count)
                    let at = Int(manifest.chunkOffset(i)) + got
                    let piece = UnsafeRawBufferPointer(rebasing: rest.prefix(take))
                    UnsafeMutableRawBufferPointer(rebasing: destination[at..<(at + take)]).copyMemory(from: piece)
                    if verifiesHashes { hasher.update(raw: piece) }
                    rest = rest.dropFirst(take)
                    state = .chunkBody(index: i, length: n, got: got + take)
                    if got + take == n { out += onChunk(i, now: now) }
                case .errorBody(let code, let n):
                    let take = min(n - message.count, rest.count)
                    message += rest.prefix(take)
                    rest = rest.dropFirst(take)
                    if message.count == n { return out + [finishError(code)] }
                }
            }
            return out
        }

        public mutating func onFinished(now: Instant) -> [Event] {
            switch state {
            case .finished: return []
            case .chunkBody(let i, let n, let got): return fail(.truncatedChunk, "stream ended after \(got) of \(n) bytes of chunk \(i)")
            case .header, .errorBody: return fail(.incomplete, "stream ended after \(next - first) of \(count) chunks")
            }
        }

        public mutating func onTimeout(now: Instant) -> [Event] {
            guard !isFinished, now >= deadline else { return [] }
            return fail(.timeout, "no whole chunk within \(chunkTimeout)")
        }

        private mutating func fail(_ r: Rejection, _ why: String) -> [Event] {
            state = .finished
            return [.rejected(r, why)]
        }

        private mutating func finishError(_ code: UInt8) -> Event {
            state = .finished
            return .peerError(ErrorCode(byte: code), String(decoding: message, as: UTF8.self))
        }

        private mutating func onHeader() -> Event? {
            let h = header[...]
            header = []
            if h.first == Frame.error {
                let n = Int(Model.readBE(h, at: 2, bytes: 2))
                guard n <= Frame.maxErrorMessage else { return fail(.malformedFrame, "error message of \(n) bytes").first }
                state = .errorBody(code: h[1], length: n)
                return n == 0 ? finishError(h[1]) : nil
            }
            let i = Int(Model.readBE(h, at: 1, bytes: 4)), n = Int(Model.readBE(h, at: 5, bytes: 4))
            guard i == next else { return fail(.unexpectedChunk, "chunk \(i) where chunk \(next) was due").first }
            let want = manifest.chunkLength(i)
            guard n <= want else { return fail(.oversizedChunk, "chunk \(i) of \(n) bytes; it has \(want)").first }
            guard n == want else { return fail(.truncatedChunk, "chunk \(i) of \(n) bytes; it has \(want)").first }
            hasher = Model.Hasher()
            state = .chunkBody(index: i, length: n, got: 0)
            return nil
        }

        private mutating func onChunk(_ i: Int, now: Instant) -> [Event] {
            guard !verifiesHashes || hasher.finalize() == manifest.chunkHashes[i] else { return fail(.hashMismatch, "chunk \(i) does not match its hash") }
            next += 1
            deadline = now + chunkTimeout
            if next == first + count {
                state = .finished
                return [.chunk(index: i), .done]
            }
            state = .header
            return [.chunk(index: i)]
        }
    }
}
