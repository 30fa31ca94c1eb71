import LatticaCrypto

extension Noise {
    /// Noise SymmetricState (spec §5.2) with its CipherState, for the handshake only.
    struct SymmetricState: Sendable {
        var ck: [UInt8]
        var h: [UInt8]
        var k: [UInt8]?
        var n: UInt64 = 0

        init(prologue: [UInt8]) {
            // The protocol name is exactly 32 bytes (HASHLEN), so h = name unhashed.
            h = Array(Noise.protocolName.utf8)
            precondition(h.count == 32)
            ck = h
            mixHash(prologue)
        }

        mutating func mixHash(_ data: some Collection<UInt8>) {
            var hasher = SHA256.Hasher()
            hasher.update(h)
            hasher.update(data)
            h = hasher.finalize()
        }

        mutating func mixKey(_ ikm: [UInt8]) {
            let out = HKDF.noise(chainingKey: ck, inputKeyMaterial: ikm, outputs: 2)
            ck = out[0]
            k = out[1]
            n = 0
        }

        mutating func encryptAndHash(_ plaintext: some Collection<UInt8>) -> [UInt8] {
            let c: [UInt8]
            if let k {
                c = ChaChaPoly.seal(key: k, nonce: n, plaintext: plaintext, ad: h)
                n += 1
            } else {
                c = Array(plaintext)
            }
            mixHash(c)
            return c
        }

        mutating func decryptAndHash(_ ciphertext: ArraySlice<UInt8>) throws(Failure) -> [UInt8] {
            let p: [UInt8]
            if let k {
                do { p = try ChaChaPoly.open(key: k, nonce: n, ciphertext: ciphertext, ad: h) } catch {
                    throw .decryptionFailed
                }
                n += 1
            } else {
                p = Array(ciphertext)
            }
            mixHash(ciphertext)
            return p
        }

        func split() -> (initiatorToResponder: [UInt8], responderToInitiator: [UInt8]) {
            let out = HKDF.noise(chainingKey: ck, inputKeyMaterial: [], outputs: 2)
            return (out[0], out[1])
        }
    }

    /// The XX pattern without framing or libp2p semantics (raw payloads), so it can be checked
    /// against published test vectors.
    ///
    ///     -> e
    ///     <- e, ee, s, es
    ///     -> s, se
    struct XXHandshake: Sendable {
        let initiator: Bool
        var symmetric: SymmetricState
        let s: X25519PrivateKey
        /// Our ephemeral key: key material is an input (drawn by the shell), never drawn here.
        let e: X25519PrivateKey
        var re: [UInt8]?
        var rs: [UInt8]?
        var messageIndex = 0

        init(initiator: Bool, staticKey: X25519PrivateKey, ephemeral: X25519PrivateKey, prologue: [UInt8] = []) {
            self.initiator = initiator
            self.s = staticKey
            self.e = ephemeral
            self.symmetric = SymmetricState(prologue: prologue)
        }

        var isComplete: Bool { messageIndex >= 3 }
        var isMyTurn: Bool { !isComplete && (messageIndex % 2 == 0) == initiator }

        private mutating func dh(_ key: X25519PrivateKey, _ pub: [UInt8]) throws(Failure) -> [UInt8] {
            do { return try key.sharedSecret(with: pub) } catch { throw .weakKey }
        }

        private func ephemeral() -> X25519PrivateKey { e }

        mutating func writeMessage(payload: some Collection<UInt8>) throws(Failure) -> [UInt8] {
            precondition(isMyTurn, "Noise XX: writeMessage out of turn")
            var out: [UInt8] = []
            switch messageIndex {
            case 0:
                let e = ephemeral()
                out += e.publicKey
                symmetric.mixHash(e.publicKey)
            case 1:
                let e = ephemeral()
                out += e.publicKey
                symmetric.mixHash(e.publicKey)
                symmetric.mixKey(try dh(e, re!))                         // ee
                out += symmetric.encryptAndHash(s.publicKey)             // s
                symmetric.mixKey(try dh(s, re!))                         // es
            default:
                out += symmetric.encryptAndHash(s.publicKey)             // s
                symmetric.mixKey(try dh(s, re!))                         // se
            }
            out += symmetric.encryptAndHash(payload)
            messageIndex += 1
            return out
        }

        mutating func readMessage(_ m: ArraySlice<UInt8>) throws(Failure) -> [UInt8] {
            precondition(!isMyTurn && !isComplete, "Noise XX: readMessage out of turn")
            var rest = m
            func take(_ n: Int) throws(Failure) -> ArraySlice<UInt8> {
                guard rest.count >= n else { throw .truncatedMessage }
                defer { rest = rest.dropFirst(n) }
                return rest.prefix(n)
            }
            switch messageIndex {
            case 0:
                let re = Array(try take(32))
                self.re = re
                symmetric.mixHash(re)
            case 1:
                let re = Array(try take(32))
                self.re = re
                symmetric.mixHash(re)
                symmetric.mixKey(try dh(ephemeral(), re))                // ee
                let rs = try symmetric.decryptAndHash(try take(48))      // s
                self.rs = rs
                symmetric.mixKey(try dh(ephemeral(), rs))                // es
            default:
                let rs = try symmetric.decryptAndHash(try take(48))      // s
                self.rs = rs
                symmetric.mixKey(try dh(ephemeral(), rs))                // se
            }
            if symmetric.k != nil && rest.count < Noise.tagLength { throw .truncatedMessage }
            let payload = try symmetric.decryptAndHash(rest)
            messageIndex += 1
            return payload
        }

        /// After message 3: (send key, receive key) for this side.
        func split() -> (send: [UInt8], receive: [UInt8]) {
            let (c1, c2) = symmetric.split()
            return initiator ? (c1, c2) : (c2, c1)
        }
    }
}
