import CKernels
import FoundationEssentials

/// This process's memory, as an operator's soak or dashboard wants it: resident pages split into
/// anonymous and file-backed (`/proc/self/status`), and the malloc heap's bytes in use and held
/// (glibc `mallinfo2`). A resident set that grows while `heapInUse` stays flat is fragmentation
/// or file pages, not a leak; one that grows with `heapInUse` is live objects.
struct ProcessMemory: Sendable, Equatable {
    var residentBytes: Int = 0
    var anonymousBytes: Int = 0
    var fileBytes: Int = 0
    var heapInUseBytes: Int = 0
    var heapHeldBytes: Int = 0

    static func current() -> ProcessMemory {
        var m = ProcessMemory()
        #if os(Linux)
        if let data = FileManager.default.contents(atPath: "/proc/self/status") {
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n") {
                func kib() -> Int { (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) * 1024 }
                if line.hasPrefix("VmRSS:") { m.residentBytes = kib() }
                else if line.hasPrefix("RssAnon:") { m.anonymousBytes = kib() }
                else if line.hasPrefix("RssFile:") { m.fileBytes = kib() }
            }
        }
        var inUse: UInt64 = 0, held: UInt64 = 0
        lk_heap_bytes(&inUse, &held)
        m.heapInUseBytes = Int(inUse)
        m.heapHeldBytes = Int(held)
        #endif
        return m
    }

    /// The Prometheus exposition lines (gauges; `process_resident_memory_bytes` is the name the
    /// Prometheus client libraries use).
    func exposition() -> String {
        """
        # TYPE process_resident_memory_bytes gauge
        process_resident_memory_bytes \(residentBytes)
        # TYPE lattica_process_resident_anonymous_bytes gauge
        lattica_process_resident_anonymous_bytes \(anonymousBytes)
        # TYPE lattica_process_resident_file_bytes gauge
        lattica_process_resident_file_bytes \(fileBytes)
        # TYPE lattica_process_heap_in_use_bytes gauge
        lattica_process_heap_in_use_bytes \(heapInUseBytes)
        # TYPE lattica_process_heap_held_bytes gauge
        lattica_process_heap_held_bytes \(heapHeldBytes)

        """
    }
}
