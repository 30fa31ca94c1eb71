import LatticaCrypto

extension Noise {
    /// The two transport CipherStates after the handshake. Encrypts and decrypts in place
    /// (no per-frame allocation beyond the output buffer); nonces never repeat: at 2^64 - 1
    /// messages in one direction it refuses with `.nonceExhausted`.
    public struct Transport: Sendable {
        var sendKey: [UInt8]
        var receiveKey: [UInt8]
        public private(set) var sendNonce: UInt64 = 0
        public private(set) var receiveNonce: UInt64 = 0
        /// An incomplete frame carried over between `decrypt` calls (at most 65537 bytes).
        var partial: [UInt8] = []
        public private(set) var failed: Failure?

        init(sendKey: [UInt8], receiveKey: [UInt8]) {
            self.sendKey = sendKey
            self.receiveKey = receiveKey
        }

        /// Test hook: start the counters elsewhere (nonce exhaustion tests).
        mutating func setNonces(send: UInt64, receive: UInt64) {
            sendNonce = send
            receiveNonce = receive
        }

        /// Appends `plaintext` to `out` as Noise frames of at most 65519 plaintext bytes each.
        /// Returns false (and appends nothing more) when the nonce space is exhausted.
        public mutating func encrypt(_ plaintext: ArraySlice<UInt8>, into out: inout [UInt8]) -> Bool {
            guard failed == nil else { return false }
            var rest = plaintext
            repeat {
                guard sendNonce < UInt64.max else { failed = .nonceExhausted; return false }
                let n = min(rest.count, Noise.maxPlaintextLength)
                let frameLength = n + Noise.tagLength
                out.append(UInt8(truncatingIfNeeded: frameLength >> 8))
                out.append(UInt8(truncatingIfNeeded: frameLength))
                let start = out.count
                out.append(contentsOf: rest.prefix(n))
                out.append(contentsOf: repeatElement(0, count: Noise.tagLength))
                let nonce = sendNonce
                sendKey.withUnsafeBytes { key in
                    out.withUnsafeMutableBytes { buf in
                        ChaChaPoly.sealInPlace(key: key, nonce: nonce, buffer: buf.baseAddress! + start,
                                               count: n, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                }
                sendNonce += 1
                rest = rest.dropFirst(n)
            } while !rest.isEmpty
            return true
        }

        public mutating func encrypt(_ plaintext: [UInt8], into out: inout [UInt8]) -> Bool {
            encrypt(plaintext[...], into: &out)
        }

        /// Seals in place a buffer laid out as `u16be(len) || plaintext || 16 spare bytes` frames
        /// (see `Yamux.Output`). Returns false when the nonce space is exhausted.
        public mutating func sealFrames(_ buffer: inout [UInt8]) -> Bool {
            guard failed == nil else { return false }
            var offset = 0
            let total = buffer.count
            while offset + 2 <= total {
                guard sendNonce < UInt64.max else { failed = .nonceExhausted; return false }
                let length = Int(buffer[offset]) << 8 | Int(buffer[offset + 1])
                precondition(length >= Noise.tagLength && offset + 2 + length <= total, "Noise: malformed frame layout")
                let nonce = sendNonce
                let start = offset + 2
                sendKey.withUnsafeBytes { key in
                    buffer.withUnsafeMutableBytes { buf in
                        ChaChaPoly.sealInPlace(key: key, nonce: nonce, buffer: buf.baseAddress! + start,
                                               count: length - Noise.tagLength, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                }
                sendNonce += 1
                offset = start + length
            }
            return true
        }

        /// Decrypts every complete frame in `partial || chunk`, in place, and returns the plaintexts
        /// as slices (no copies for frames wholly inside `chunk`). On failure returns the error;
        /// the transport is then dead.
        public mutating func decrypt(_ chunk: consuming [UInt8]) -> Result<[ArraySlice<UInt8>], Failure> {
            if let failed { return .failure(failed) }
            var buffer = chunk
            var out: [ArraySlice<UInt8>] = []
            var offset = 0
            if !partial.isEmpty {
                // Complete the carried-over frame first.
                if partial.count < 2 {
                    let take = min(2 - partial.count, buffer.count)
                    partial += buffer[0..<take]
                    offset = take
                    if partial.count < 2 { return .success([]) }
                }
                let need = 2 + (Int(partial[0]) << 8 | Int(partial[1])) - partial.count
                let take = min(need, buffer.count - offset)
                partial += buffer[offset..<(offset + take)]
                offset += take
                if take < need { return .success([]) }
                var frame = partial
                partial = []
                switch openFrame(&frame, at: 0) {
                case .failure(let f): return fail(f)
                case .success(let range): if !range.isEmpty { out.append(frame[range]) }
                }
            }
            var ranges: [Range<Int>] = []
            while buffer.count - offset >= 2 {
                let length = Int(buffer[offset]) << 8 | Int(buffer[offset + 1])
                guard buffer.count - offset - 2 >= length else { break }
                switch openFrame(&buffer, at: offset) {
                case .failure(let f): return fail(f)
                case .success(let range): if !range.isEmpty { ranges.append(range) }
                }
                offset += 2 + length
            }
            if offset < buffer.count { partial = Array(buffer[offset...]) }
            for r in ranges { out.append(buffer[r]) }
            return .success(out)
        }

        /// `decrypt` for bytes the caller does not own (the loop's read buffer): every complete
        /// frame is decrypted straight out of `chunk` into one new array (the copy and the
        /// decryption in one pass), the plaintexts packed back to back. Same results as `decrypt`.
        public mutating func decrypt(copying chunk: UnsafeRawBufferPointer) -> Result<[ArraySlice<UInt8>], Failure> {
            if let failed { return .failure(failed) }
            var out: [ArraySlice<UInt8>] = []
            var offset = 0
            if !partial.isEmpty {
                // Complete the carried-over frame first, through `decrypt` (at most one frame per read).
                let need: Int
                if partial.count >= 2 {
                    need = 2 + (Int(partial[0]) << 8 | Int(partial[1])) - partial.count
                } else if chunk.count >= 1 {
                    need = 2 + (Int(partial[0]) << 8 | Int(chunk[0])) - partial.count
                } else {
                    return .success([])
                }
                offset = min(need, chunk.count)
                switch decrypt(Array(UnsafeRawBufferPointer(rebasing: chunk[0..<offset]))) {
                case .failure(let f): return .failure(f)
                case .success(let p): out = p
                }
                if !partial.isEmpty { return .success(out) }  // the chunk ended inside that frame
            }
            // The complete frames in the rest of the chunk.
            var end = offset, plain = 0, frames = 0
            while chunk.count - end >= 2 {
                let length = Int(chunk[end]) << 8 | Int(chunk[end + 1])
                guard chunk.count - end - 2 >= length else { break }
                guard length >= Noise.tagLength else { return fail(.decryptionFailed) }
                plain += length - Noise.tagLength
                frames += 1
                end += 2 + length
            }
            if frames > 0 {
                guard receiveNonce <= UInt64.max - UInt64(frames) else { return fail(.nonceExhausted) }
                var ok = true
                let nonce0 = receiveNonce
                let buffer = [UInt8](unsafeUninitializedCapacity: plain) { dst, initialized in
                    var at = offset, written = 0, nonce = nonce0
                    receiveKey.withUnsafeBytes { key in
                        while at < end {
                            let length = Int(chunk[at]) << 8 | Int(chunk[at + 1])
                            do {
                                written += try ChaChaPoly.open(
                                    key: key, nonce: nonce, source: chunk.baseAddress! + at + 2, count: length,
                                    destination: UnsafeMutableRawPointer(dst.baseAddress! + written), ad: UnsafeRawBufferPointer(start: nil, count: 0))
                            } catch {
                                ok = false
                                break
                            }
                            nonce += 1
                            at += 2 + length
                        }
                    }
                    if !ok { dst.initialize(repeating: 0) }
                    initialized = plain
                }
                guard ok else { return fail(.decryptionFailed) }
                receiveNonce += UInt64(frames)
                // One slice per frame, as `decrypt` returns them (empty frames are skipped).
                var at = offset, start = 0
                while at < end {
                    let n = (Int(chunk[at]) << 8 | Int(chunk[at + 1])) - Noise.tagLength
                    if n > 0 { out.append(buffer[start..<(start + n)]) }
                    start += n
                    at += 2 + n + Noise.tagLength
                }
            }
            if end < chunk.count { partial = Array(UnsafeRawBufferPointer(rebasing: chunk[end...])) }
            return .success(out)
        }

        private mutating func fail(_ f: Failure) -> Result<[ArraySlice<UInt8>], Failure> {
            failed = f
            partial = []
            return .failure(f)
        }

        /// Opens the frame whose length prefix is at `offset`; returns the plaintext range.
        private mutating func openFrame(_ buffer: inout [UInt8], at offset: Int) -> Result<Range<Int>, Failure> {
            let length = Int(buffer[offset]) << 8 | Int(buffer[offset + 1])
            guard length >= Noise.tagLength else { return .failure(.decryptionFailed) }
            guard receiveNonce < UInt64.max else { return .failure(.nonceExhausted) }
            let nonce = receiveNonce
            let ok: Bool = receiveKey.withUnsafeBytes { key in
                buffer.withUnsafeMutableBytes { buf in
                    do {
                        _ = try ChaChaPoly.openInPlace(key: key, nonce: nonce, buffer: buf.baseAddress! + offset + 2,
                                                       count: length, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                        return true
                    } catch {
                        return false
                    }
                }
            }
            guard ok else { return .failure(.decryptionFailed) }
            receiveNonce += 1
            return .success((offset + 2)..<(offset + 2 + length - Noise.tagLength))
        }
    }
}
