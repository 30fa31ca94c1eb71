extension Yamux {
    /// Where yamux writes its frames. In `.plain` mode it is just a byte array. In `.noiseFramed`
    /// mode (inside a `Connection`) the bytes are laid out directly as Noise transport frames —
    /// `u16be(len) || plaintext (<= 65519) || 16-byte tag slot` — so the Noise layer seals them in
    /// place (`Noise.Transport.sealFrames`) instead of copying the plaintext once more.
    struct Output: Sendable {
        var bytes: [UInt8] = []
        let noiseFramed: Bool
        /// Offset of the open Noise frame's length prefix, and its plaintext so far.
        var frameStart = -1
        var frameFill = 0

        init(noiseFramed: Bool) { self.noiseFramed = noiseFramed }

        var isEmpty: Bool { bytes.isEmpty }

        mutating func reserve(_ plaintext: Int) {
            let overhead = noiseFramed ? (plaintext / Noise.maxPlaintextLength + 2) * (2 + Noise.tagLength) : 0
            bytes.reserveCapacity(bytes.count + plaintext + overhead)
        }

        @inline(__always) mutating func append(_ chunk: ArraySlice<UInt8>) {
            guard noiseFramed else { bytes.append(contentsOf: chunk); return }
            var rest = chunk
            while !rest.isEmpty {
                if frameStart < 0 {
                    frameStart = bytes.count
                    bytes.append(0); bytes.append(0)
                    frameFill = 0
                }
                let n = min(rest.count, Noise.maxPlaintextLength - frameFill)
                bytes.append(contentsOf: rest.prefix(n))
                rest = rest.dropFirst(n)
                frameFill += n
                if frameFill == Noise.maxPlaintextLength { closeFrame() }
            }
        }

        mutating func appendHeader(_ h: Header) {
            guard noiseFramed else { h.encode(into: &bytes); return }
            let f = h.flags.rawValue, id = h.streamID, n = h.length
            appendByte(h.version); appendByte(h.type)
            appendByte(UInt8(truncatingIfNeeded: f >> 8)); appendByte(UInt8(truncatingIfNeeded: f))
            for shift in [24, 16, 8, 0] as [UInt32] { appendByte(UInt8(truncatingIfNeeded: id >> shift)) }
            for shift in [24, 16, 8, 0] as [UInt32] { appendByte(UInt8(truncatingIfNeeded: n >> shift)) }
        }

        @inline(__always) mutating func appendByte(_ b: UInt8) {
            if frameStart < 0 {
                frameStart = bytes.count
                bytes.append(0); bytes.append(0)
                frameFill = 0
            }
            bytes.append(b)
            frameFill += 1
            if frameFill == Noise.maxPlaintextLength { closeFrame() }
        }

        mutating func closeFrame() {
            guard frameStart >= 0 else { return }
            let length = frameFill + Noise.tagLength
            bytes[frameStart] = UInt8(truncatingIfNeeded: length >> 8)
            bytes[frameStart + 1] = UInt8(truncatingIfNeeded: length)
            bytes.append(contentsOf: repeatElement(0, count: Noise.tagLength))
            frameStart = -1
            frameFill = 0
        }

        /// Hands the bytes over (closing the open Noise frame) and starts afresh.
        mutating func take() -> [UInt8] {
            closeFrame()
            defer { bytes = [] }
            return bytes
        }
    }
}
