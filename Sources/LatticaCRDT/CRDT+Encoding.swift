import LatticaCore

extension CRDT.Dot {
    public func encode(into w: inout CRDT.ByteWriter) { w.peer(author); w.uvarint(seq) }

    public init(from r: inout CRDT.ByteReader) throws(CRDT.DecodeError) {
        author = try r.peer()
        seq = try r.uvarint()
        guard seq > 0 else { throw .badValue("dot seq 0") }
    }
}

extension CRDT.Op {
    public func encode(into w: inout CRDT.ByteWriter) {
        w.u8(tag)
        switch self {
        case .register(let v): v.encode(into: &w)
        case .mapSet(let k, let v): w.string(k); v.encode(into: &w)
        case .mapRemove(let k): w.string(k)
        case .setAdd(let v, let o), .setRemove(let v, let o), .multiValue(let v, let o):
            v.encode(into: &w)
            w.count(o.count)
            for d in o { d.encode(into: &w) }
        case .counter(let p, let n): w.uvarint(p); w.uvarint(n)
        }
    }

    public init(from r: inout CRDT.ByteReader, limits: CRDT.Limits) throws(CRDT.DecodeError) {
        let tag = try r.u8()
        func value(_ r: inout CRDT.ByteReader) throws(CRDT.DecodeError) -> CRDT.Value {
            try CRDT.Value(from: &r, maxLength: limits.maxValueLength)
        }
        func observed(_ r: inout CRDT.ByteReader) throws(CRDT.DecodeError) -> [CRDT.Dot] {
            let n = try r.count(max: limits.maxObservedDots, minElementBytes: 3, "observed dots")
            var dots: [CRDT.Dot] = []
            dots.reserveCapacity(n)
            for _ in 0..<n { dots.append(try CRDT.Dot(from: &r)) }
            return dots
        }
        switch tag {
        case 1: self = .register(try value(&r))
        case 2:
            let k = try r.string(max: limits.maxKeyLength, "map key")
            self = .mapSet(key: k, try value(&r))
        case 3: self = .mapRemove(key: try r.string(max: limits.maxKeyLength, "map key"))
        case 4: let v = try value(&r); self = .setAdd(v, observed: try observed(&r))
        case 5: let v = try value(&r); self = .setRemove(v, observed: try observed(&r))
        case 6: let p = try r.uvarint(); self = .counter(p: p, n: try r.uvarint())
        case 7: let v = try value(&r); self = .multiValue(v, observed: try observed(&r))
        default: throw .badTag(tag)
        }
    }
}

extension CRDT.Delta {
    /// `wall ‖ logical ‖ path ‖ op` (the seq is implicit: the batch's first seq + index).
    public func encode(into w: inout CRDT.ByteWriter) {
        w.uvarint(time.wall)
        w.uvarint(UInt64(time.logical))
        w.string(path)
        op.encode(into: &w)
    }

    public init(from r: inout CRDT.ByteReader, seq: UInt64, limits: CRDT.Limits) throws(CRDT.DecodeError) {
        let wall = try r.uvarint()
        let logical = try r.uvarint()
        guard logical <= UInt64(UInt32.max) else { throw .badValue("logical clock") }
        self.seq = seq
        time = CRDT.Timestamp(wall: wall, logical: UInt32(logical))
        path = try r.string(max: limits.maxPathLength, "path")
        op = try CRDT.Op(from: &r, limits: limits)
    }
}

extension CRDT.Message {
    public func encoded() -> [UInt8] {
        var w = CRDT.ByteWriter()
        switch self {
        case .push(let batches):
            w.u8(1)
            Self.encode(batches, into: &w)
        case .versions(let vv, let wantsReply):
            w.u8(2)
            w.u8(wantsReply ? 1 : 0)
            vv.encode(into: &w)
        case .missing(let batches, let more):
            w.u8(3)
            w.u8(more ? 1 : 0)
            Self.encode(batches, into: &w)
        case .summary(let digest, let wantsReply):
            w.u8(4)
            w.u8(wantsReply ? 1 : 0)
            w.raw(digest)
        }
        return w.bytes
    }

    static func encode(_ batches: [CRDT.SignedBatch], into w: inout CRDT.ByteWriter) {
        w.count(batches.count)
        for b in batches {
            w.count(b.body.count + b.signature.count)
            w.raw(b.body)
            w.raw(b.signature)
        }
    }

    /// Decodes one message (one frame body). Never traps; see `DecodeError`.
    public static func decode(_ bytes: ArraySlice<UInt8>, limits: CRDT.Limits = .init()) throws(CRDT.DecodeError) -> CRDT.Message {
        guard bytes.count <= limits.maxMessageBytes else { throw .overLimit("message bytes", UInt64(bytes.count)) }
        var r = CRDT.ByteReader(bytes)
        let tag = try r.u8()
        let message: CRDT.Message
        switch tag {
        case 1: message = .push(try batches(&r, limits: limits))
        case 2, 3, 4:
            let flag = try r.u8()
            guard flag <= 1 else { throw .badValue("flag \(flag)") }
            switch tag {
            case 2: message = .versions(try CRDT.VersionVector(from: &r, maxAuthors: limits.maxAuthors), wantsReply: flag == 1)
            case 3: message = .missing(try batches(&r, limits: limits), more: flag == 1)
            default: message = .summary(digest: Array(try r.raw(32)), wantsReply: flag == 1)
            }
        default: throw .badTag(tag)
        }
        try r.expectEnd()
        return message
    }

    static func batches(_ r: inout CRDT.ByteReader, limits: CRDT.Limits) throws(CRDT.DecodeError) -> [CRDT.SignedBatch] {
        let n = try r.count(max: limits.maxBatchesPerMessage, minElementBytes: 2, "batches")
        var out: [CRDT.SignedBatch] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            out.append(try CRDT.SignedBatch(decoding: r.lengthPrefixed(max: limits.maxMessageBytes, "batch"), limits: limits))
        }
        return out
    }
}
