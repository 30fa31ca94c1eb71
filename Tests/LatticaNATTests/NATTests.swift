import LatticaNAT
import Testing

@Suite struct NATTests {
    @Test func behaviourNamesAreTheAPIWords() {
        #expect(NAT.Behaviour.endpointIndependent.rawValue == "endpoint-independent")
        #expect(NAT.Reachability(rawValue: "private") == .private)
    }
}
