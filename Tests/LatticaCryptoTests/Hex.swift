/// Test helper: hex strings (spaces, colons and newlines ignored) to bytes.
func hex(_ s: String) -> [UInt8] {
    let digits = s.filter { $0.isHexDigit }
    precondition(digits.count % 2 == 0, "odd hex length")
    var out: [UInt8] = []
    var it = digits.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
