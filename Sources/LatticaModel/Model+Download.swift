import LatticaCore
import LatticaCrypto

extension Model {
    /// Limits a downloader holds a peer to.
    public struct Settings: Sendable, Equatable {
        /// Largest model accepted (bytes of blob).
        public var maxModelBytes: UInt64 = 64 << 30
        /// Largest manifest accepted: 1 MiB holds 32,766 chunk hashes (32 GiB at 1 MiB chunks).
        public var maxManifestBytes = 1 << 20
        /// Each chunk (and the manifest) must arrive whole within this time of the previous one:
        /// a peer that streams slowly forever fails here.
        public var chunkTimeout: Duration = .seconds(30)

        public init() {}

        public var maxChunks: Int { (maxManifestBytes - Manifest.headerLength) / Model.hashLength }
    }

    /// The downloader's side of one stream: it parses the server's frames, checks each against
    /// what was asked for and against the manifest, and says what to store. Sans-I/O: bytes and
    /// time come in, events go out; the shell writes a `.chunk` to disk only after this verified
    /// it, so a bad chunk never touches the store. Holds at most one chunk in memory.
    public struct Download: Sendable {
        public enum Mode: Sendable, Equatable {
            /// Fetch the manifest of `id` and check it hashes to `id`.
            case manifest(ModelID)
            /// Fetch chunks `first ..< first + count` of `manifest`, in order.
            case chunks(Manifest, first: Int, count: Int)
        }

        public enum Event: Sendable, Equatable {
            case manifest(Manifest)
            /// A verified chunk: write `bytes` at the chunk's offset.
            case chunk(index: Int, bytes: [UInt8])
            /// Everything asked for arrived and was verified.
            case done
            /// The peer sent bytes we refuse; the stream is to be reset.
            case rejected(Rejection, String)
            /// The peer answered with an ERROR frame.
            case peerError(ErrorCode, String)
        }

        private enum State: Sendable {
            case header
            case manifestBody(length: Int)
            case chunkBody(index: Int, length: Int)
            case errorBody(code: UInt8, length: Int)
            case finished
        }

        public let mode: Mode
        public let settings: Settings
        public private(set) var deadline: Instant
        /// Chunks verified on this stream.
        public private(set) var verified = 0
        private var state = State.header
        private var header: [UInt8] = []
        private var body: [UInt8] = []
        private var next: Int

        public init(mode: Mode, settings: Settings, now: Instant) {
            self.mode = mode
            self.settings = settings
            deadline = now + settings.chunkTimeout
            if case .chunks(let m, let first, let count) = mode {
                precondition(first >= 0 && count >= 1 && first + count <= m.chunkCount)
                next = first
            } else {
                next = 0
            }
        }

        public var request: Request {
            switch mode {
            case .manifest(let id): .manifest(id)
            case .chunks(let m, let first, let count): .chunks(m.id, first: first, count: count)
            }
        }

        public var isFinished: Bool { if case .finished = state { true } else { false } }

        /// Bytes from the server.
        public mutating func onData(_ bytes: ArraySlice<UInt8>, now: Instant) -> [Event] {
            var out: [Event] = []
            var rest = bytes
            while !rest.isEmpty {
                switch state {
                case .finished:
                    return out  // after done or a rejection nothing more is read
                case .header:
                    if header.isEmpty, let t = rest.first, Frame.headerLength(t) == nil {
                        return out + fail(.malformedFrame, "unknown frame type \(t)")
                    }
                    let need = Frame.headerLength(header.first ?? rest.first!)! - header.count
                    let take = min(need, rest.count)
                    header += rest.prefix(take)
                    rest = rest.dropFirst(take)
                    if take == need, let e = onHeader() { return out + [e] }
                case .manifestBody(let n), .chunkBody(_, let n), .errorBody(_, let n):
                    let take = min(n - body.count, rest.count)
                    body += rest.prefix(take)
                    rest = rest.dropFirst(take)
                    if body.count == n { out += onBody(now: now) }
                }
            }
            return out
        }

        /// The server closed its side.
        public mutating func onFinished(now: Instant) -> [Event] {
            switch state {
            case .finished: return []
            case .chunkBody(let i, let n): return fail(.truncatedChunk, "stream ended after \(body.count) of \(n) bytes of chunk \(i)")
            case .manifestBody: return fail(.incomplete, "stream ended inside the manifest")
            case .errorBody, .header:
                switch mode {
                case .manifest: return fail(.incomplete, "stream ended before the manifest")
                case .chunks(_, let first, let count): return fail(.incomplete, "stream ended after \(next - first) of \(count) chunks")
                }
            }
        }

        /// The shell's clock passed `deadline`.
        public mutating func onTimeout(now: Instant) -> [Event] {
            guard !isFinished, now >= deadline else { return [] }
            return fail(.timeout, "no whole chunk within \(settings.chunkTimeout)")
        }

        private mutating func fail(_ r: Rejection, _ why: String) -> [Event] {
            state = .finished
            body = []
            return [.rejected(r, why)]
        }

        /// A complete frame header: checks it against the request before any body byte is kept.
        private mutating func onHeader() -> Event? {
            let h = header[...]
            header = []
            let type = h.first!
            switch type {
            case Frame.error:
                let n = Int(Model.readBE(h, at: 2, bytes: 2))
                guard n <= Frame.maxErrorMessage else { return fail(.malformedFrame, "error message of \(n) bytes").first }
                state = .errorBody(code: h[1], length: n)
                if n == 0 { return finishError(code: h[1]) }
                return nil
            case Frame.manifest:
                guard case .manifest = mode else { return fail(.malformedFrame, "a manifest frame where chunks were asked for").first }
                let n = Int(Model.readBE(h, at: 1, bytes: 4))
                guard n <= settings.maxManifestBytes else { return fail(.manifestTooLarge, "manifest of \(n) bytes; at most \(settings.maxManifestBytes)").first }
                guard n >= Manifest.headerLength else { return fail(.manifestMalformed, "manifest of \(n) bytes").first }
                body.reserveCapacity(n)
                state = .manifestBody(length: n)
                return nil
            default:  // chunk
                guard case .chunks(let m, _, _) = mode else { return fail(.malformedFrame, "a chunk frame where the manifest was asked for").first }
                let i = Int(Model.readBE(h, at: 1, bytes: 4)), n = Int(Model.readBE(h, at: 5, bytes: 4))
                guard i == next else { return fail(.unexpectedChunk, "chunk \(i) where chunk \(next) was due").first }
                let want = m.chunkLength(i)
                guard n <= want else { return fail(.oversizedChunk, "chunk \(i) of \(n) bytes; it has \(want)").first }
                guard n == want else { return fail(.truncatedChunk, "chunk \(i) of \(n) bytes; it has \(want)").first }
                body.reserveCapacity(n)
                state = .chunkBody(index: i, length: n)
                return nil
            }
        }

        private mutating func finishError(code: UInt8) -> Event {
            let msg = String(decoding: body, as: UTF8.self)
            state = .finished
            body = []
            return .peerError(ErrorCode(byte: code), msg)
        }

        private mutating func onBody(now: Instant) -> [Event] {
            switch state {
            case .errorBody(let code, _):
                return [finishError(code: code)]
            case .manifestBody:
                guard case .manifest(let id) = mode else { preconditionFailure("manifest body in chunk mode") }
                guard ModelID(manifestBytes: body) == id else { return fail(.manifestMismatch, "the manifest does not hash to \(id.hex)") }
                guard let m = Manifest(decoding: body[...], maxSize: settings.maxModelBytes, maxChunks: settings.maxChunks) else {
                    return fail(.manifestMalformed, "the manifest does not decode (or the model is over \(settings.maxModelBytes) bytes)")
                }
                state = .finished
                body = []
                return [.manifest(m), .done]
            case .chunkBody(let i, _):
                guard case .chunks(let m, let first, let count) = mode else { preconditionFailure("chunk body in manifest mode") }
                guard Model.sha256(body) == m.chunkHashes[i] else { return fail(.hashMismatch, "chunk \(i) does not match its hash") }
                let chunk = body
                body = []
                verified += 1
                next += 1
                deadline = now + settings.chunkTimeout
                if next == first + count {
                    state = .finished
                    return [.chunk(index: i, bytes: chunk), .done]
                }
                state = .header
                return [.chunk(index: i, bytes: chunk)]
            case .header, .finished:
                preconditionFailure("body complete outside a body")
            }
        }
    }

    /// Missing chunks as runs `(first, count)` of at most `maxRun` chunks, in order.
    public static func missingRuns(have: [Bool], maxRun: Int = .max) -> [(first: Int, count: Int)] {
        var runs: [(Int, Int)] = []
        var i = 0
        while i < have.count {
            if have[i] { i += 1; continue }
            let start = i
            while i < have.count, !have[i], i - start < maxRun { i += 1 }
            runs.append((start, i - start))
        }
        return runs
    }
}
