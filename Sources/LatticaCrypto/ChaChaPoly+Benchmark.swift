/// Throughput measurement for `lattica-bench` (not a test: tests never time anything).
extension ChaChaPoly {
    public struct BenchmarkResult: Sendable, CustomStringConvertible {
        public var bufferSize: Int
        public var totalBytes: Int
        public var sealBytesPerSecond: Double
        public var openBytesPerSecond: Double

        public var description: String {
            let mib = 1024.0 * 1024.0
            return "ChaChaPoly in place, \(bufferSize) B buffers, \(totalBytes / (1024 * 1024)) MiB: "
                + "seal \(Int(sealBytesPerSecond / mib)) MiB/s, open \(Int(openBytesPerSecond / mib)) MiB/s"
        }
    }

    /// Seals `totalBytes` in `bufferSize` chunks in place (Noise transport framing: counter nonce,
    /// empty AD), then opens them again, and reports both rates.
    public static func benchmarkInPlace(bufferSize: Int = 65_535 - 16, totalBytes: Int = 256 * 1024 * 1024) -> BenchmarkResult {
        precondition(bufferSize > 0 && totalBytes >= bufferSize)
        let key = SecureRandom.bytes(keyLength)
        let rounds = totalBytes / bufferSize
        var buffer = [UInt8](repeating: 0x5A, count: bufferSize + tagLength)
        let clock = ContinuousClock()
        let noAD = UnsafeRawBufferPointer(start: nil, count: 0)

        let sealTime = clock.measure {
            key.withUnsafeBytes { k in
                buffer.withUnsafeMutableBytes { b in
                    for n in 0..<rounds {
                        sealInPlace(key: k, nonce: UInt64(n), buffer: b.baseAddress!, count: bufferSize, ad: noAD)
                    }
                }
            }
        }
        // Open needs valid ciphertexts: reseal one buffer per nonce right before opening it would
        // double the work, so open the same sealed buffer with its nonce repeatedly (a copy each time).
        let plain = [UInt8](repeating: 0x5A, count: bufferSize)
        let template = seal(key: key, nonce: 7, plaintext: plain, ad: [])
        var work = template
        var failures = 0
        let openTime = clock.measure {
            key.withUnsafeBytes { k in
                for _ in 0..<rounds {
                    work.withUnsafeMutableBytes { w in
                        template.withUnsafeBytes { t in w.copyMemory(from: t) }
                        do { _ = try openInPlace(key: k, nonce: 7, buffer: w.baseAddress!, count: w.count, ad: noAD) } catch { failures += 1 }
                    }
                }
            }
        }
        precondition(failures == 0, "benchmark: open failed")
        let bytes = Double(rounds * bufferSize)
        return BenchmarkResult(
            bufferSize: bufferSize, totalBytes: rounds * bufferSize,
            sealBytesPerSecond: bytes / sealTime.seconds, openBytesPerSecond: bytes / openTime.seconds)
    }
}

extension Duration {
    fileprivate var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
