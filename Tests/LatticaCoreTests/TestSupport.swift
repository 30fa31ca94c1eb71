@testable import LatticaCore

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: fatalError("bad hex in test vector")
        }
    }
    while let a = it.next(), let b = it.next() { out.append(nibble(a) << 4 | nibble(b)) }
    return out
}

func toHex(_ b: some Collection<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    return String(b.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}

extension SeededRandom {
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }

    /// Flip, insert, delete or overwrite a few bytes (fuzzing helper).
    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0..<Int(next() % 4 + 1) {
            switch next() % 4 {
            case 0 where !b.isEmpty: b[Int(next() % UInt64(b.count))] ^= UInt8(1 << (next() % 8))
            case 1: b.insert(UInt8(truncatingIfNeeded: next()), at: Int(next() % UInt64(b.count + 1)))
            case 2 where !b.isEmpty: b.remove(at: Int(next() % UInt64(b.count)))
            case 3 where !b.isEmpty: b[Int(next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: next())
            default: break
            }
        }
        return b
    }

    mutating func truncate(_ input: [UInt8]) -> [UInt8] { Array(input.prefix(Int(next() % UInt64(input.count + 1)))) }
}
