import Testing
import LatticaCore

@Suite struct FIFOTests {
    @Test func keepsOrder_acrossInterleavedAppendsAndPops_likeAnArray() {
        var rng = SeededRandom(seed: 11)
        var q = FIFO<Int>()
        var model: [Int] = []
        var next = 0
        for _ in 0..<50_000 {
            if rng.next() % 3 != 0 {
                q.append(next); model.append(next); next += 1
            } else {
                #expect(q.popFirst() == (model.isEmpty ? nil : model.removeFirst()))
            }
            #expect(q.count == model.count && q.first == model.first && q.isEmpty == model.isEmpty)
        }
        #expect(q.removeAll() == model)
        #expect(q.isEmpty && q.popFirst() == nil)
    }
}
