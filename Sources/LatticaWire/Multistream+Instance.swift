extension Multistream {
    /// One side of a negotiation. Feed it the peer's bytes; it returns what to send and, once,
    /// `.negotiated` or `.failed`. After that it ignores input (the caller switches protocols).
    public struct Instance: Sendable {
        public enum Role: Hashable, Sendable { case dialer, listener }

        enum State: Hashable, Sendable {
            case idle
            /// Dialer: waiting for the listener's header (proposal already sent).
            case awaitingHeader
            /// Dialer: waiting for the answer to `protocols[index]`.
            case awaitingAnswer(index: Int)
            /// Listener: waiting for the dialer's header.
            case awaitingDialerHeader
            /// Listener: waiting for a proposal or `ls`.
            case awaitingProposal
            case done
        }

        public let role: Role
        public let protocols: [String]
        public let settings: Settings
        var state: State = .idle
        var buffer: [UInt8] = []
        var attempts = 0
        var headerSeen = false

        /// A dialer proposing `protocols` in order of preference.
        public init(dialing protocols: [String], settings: Settings = Settings()) {
            self.role = .dialer
            self.protocols = protocols
            self.settings = settings
        }

        /// A listener accepting any of `supported`.
        public init(listening supported: [String], settings: Settings = Settings()) {
            self.role = .listener
            self.protocols = supported
            self.settings = settings
        }

        public var isFinished: Bool { state == .done }

        /// The first bytes to send: dialer header + first proposal, listener header.
        public mutating func start() -> [Directive] {
            guard state == .idle else { return [] }
            var out: [UInt8] = []
            Multistream.encode(Multistream.protocolID, into: &out)
            switch role {
            case .dialer:
                guard let first = protocols.first else {
                    state = .done
                    return [.failed(.nothingToPropose)]
                }
                Multistream.encode(first, into: &out)
                state = .awaitingHeader
            case .listener:
                state = .awaitingDialerHeader
            }
            return [.send(out)]
        }

        /// Feeds bytes received from the peer.
        public mutating func onBytes(_ bytes: some Collection<UInt8>) -> [Directive] {
            if state == .idle {
                var d = start()
                if state == .done { return d }
                d += onBytes(bytes)
                return d
            }
            guard state != .done else { return [] }
            buffer.append(contentsOf: bytes)
            var out: [UInt8] = []
            var directives: [Directive] = []
            var offset = 0
            loop: while state != .done {
                let parsed = Multistream.parse(buffer[offset...], maxLength: settings.maxMessageLength)
                switch parsed {
                case .needMore:
                    break loop
                case .failure(let f):
                    finish(.failed(f), out: &out, into: &directives)
                    break loop
                case .message(let text, let consumed):
                    offset += consumed
                    if let result = handle(text, out: &out) {
                        let leftover = Array(buffer[offset...])
                        switch result {
                        case .negotiated(let p, _):
                            finish(.negotiated(protocol: p, leftover: leftover), out: &out, into: &directives)
                        default:
                            finish(result, out: &out, into: &directives)
                        }
                    }
                }
            }
            if state == .done {
                buffer = []
            } else if offset > 0 {
                buffer.removeFirst(offset)
            }
            if directives.isEmpty && !out.isEmpty { directives.append(.send(out)) }
            return directives
        }

        private mutating func finish(_ d: Directive, out: inout [UInt8], into directives: inout [Directive]) {
            state = .done
            if !out.isEmpty { directives.append(.send(out)); out = [] }
            directives.append(d)
        }

        /// Handles one message; returns the terminal directive if negotiation ended.
        private mutating func handle(_ text: String, out: inout [UInt8]) -> Directive? {
            switch state {
            case .awaitingHeader, .awaitingDialerHeader:
                guard text == Multistream.protocolID else { return .failed(.badHeader(text)) }
                state = role == .dialer ? .awaitingAnswer(index: 0) : .awaitingProposal
                return nil
            case .awaitingAnswer(let index):
                let proposed = protocols[index]
                if text == proposed { return .negotiated(protocol: proposed, leftover: []) }
                guard text == Multistream.notAvailable else { return .failed(.unexpectedResponse(text)) }
                let next = index + 1
                guard next < protocols.count else { return .failed(.noCommonProtocol(protocols)) }
                Multistream.encode(protocols[next], into: &out)
                state = .awaitingAnswer(index: next)
                return nil
            case .awaitingProposal:
                if text == Multistream.list {
                    Multistream.encodeList(protocols, into: &out)
                    return nil
                }
                if protocols.contains(text) {
                    Multistream.encode(text, into: &out)
                    return .negotiated(protocol: text, leftover: [])
                }
                attempts += 1
                guard attempts <= settings.maxAttempts else { return .failed(.tooManyAttempts) }
                Multistream.encode(Multistream.notAvailable, into: &out)
                return nil
            case .idle, .done:
                preconditionFailure("multistream: message handled in state \(state)")
            }
        }
    }
}
