import Testing
@testable import LatticaNode

/// The process memory gauges on /metrics: read from procfs and mallinfo2, so a soak can tell live
/// heap growth from fragmentation.
@Suite struct ProcessMemoryTests {
    @Test func heapInUse_followsALiveAllocation_andTheGaugesAreRendered() {
        #if os(Linux)
        let before = ProcessMemory.current()
        #expect(before.residentBytes > 0 && before.anonymousBytes > 0 && before.fileBytes > 0)
        #expect(before.residentBytes >= before.anonymousBytes)
        let count = 64 << 20  // 256 MiB of Float, touched so it is resident; other tests of this process allocate and free beside it, so the bounds are half of it
        let held = [Float](repeating: 1.5, count: count)
        let during = ProcessMemory.current()
        #expect(during.heapInUseBytes - before.heapInUseBytes >= count * 4 / 2)
        #expect(during.residentBytes - before.residentBytes >= count * 4 / 2)
        #expect(held[count - 1] == 1.5)
        let text = String(decoding: MetricsRegistry.shared.render(), as: UTF8.self)
        for name in ["process_resident_memory_bytes", "lattica_process_heap_in_use_bytes", "lattica_process_resident_file_bytes"] {
            let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            #expect((line.flatMap { Int($0.split(separator: " ")[1]) } ?? 0) > 0, "\(name) missing from /metrics")
        }
        #endif
    }
}
