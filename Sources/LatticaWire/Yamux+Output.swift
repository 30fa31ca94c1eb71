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
            bytes.reserve(additional: plaintext + overhead)
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
            if frameStart >= 0, frameFill + Yamux.headerLength <= Noise.maxPlaintextLength {
                // Fast path: the header fits in the open Noise frame.
                h.encode(into: &bytes)
                frameFill += Yamux.headerLength
                if frameFill == Noise.maxPlaintextLength { closeFrame() }
                return
            }
            let f = h.flags.rawValue, id = h.streamID, n = h.length
            appendByte(h.version); appendByte(h.type)
            appendByte(UInt8(truncatingIfNeeded: f >> 8)); appendByte(UInt8(truncatingIfNeeded: f))
            appendByte(UInt8(truncatingIfNeeded: id >> 24)); appendByte(UInt8(truncatingIfNeeded: id >> 16))
            appendByte(UInt8(truncatingIfNeeded: id >> 8)); appendByte(UInt8(truncatingIfNeeded: id))
            appendByte(UInt8(truncatingIfNeeded: n >> 24)); appendByte(UInt8(truncatingIfNeeded: n >> 16))
            appendByte(UInt8(truncatingIfNeeded: n >> 8)); appendByte(UInt8(truncatingIfNeeded: n))
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

extension Array where Element == UInt8 {
    /// Makes room for `additional` more bytes, growing geometrically. (`reserveCapacity` grows to
    /// exactly the amount asked for, so reserving before each of many small appends copies the
    /// whole buffer every time.)
    @inline(__always) mutating func reserve(additional: Int) {
        let needed = count + additional
        if capacity < needed { reserveCapacity(Swift.max(needed, capacity * 2)) }
    }
}
