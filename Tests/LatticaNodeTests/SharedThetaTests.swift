import Foundation
import LatticaAPI
import Testing
@testable import LatticaNode

/// The trainer's shared-memory file (Docs/TRAINER-API.md): a memfd sealed against shrinking is
/// mapped; anything else is read and written with pread/pwrite; a file that shrinks mid-hand-off
/// is a clear error, never a SIGBUS.
@Suite(.serialized) struct SharedThetaTests {
    static let addSeals: Int32 = 1033, sealShrink: Int32 = 2, sealGrow: Int32 = 4, sealSeal: Int32 = 1
    static let allowSealing: UInt32 = 2

    /// A memfd of `count` float32 holding `values`, mode 0600, sealed when asked.
    /// glibc's memfd_create (not in the Swift Glibc module map).
    typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
    static let memfdCreate: MemfdCreate? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memfd_create").map { unsafeBitCast($0, to: MemfdCreate.self) }

    func memfd(_ values: [Float], sealed: Bool) throws -> Int32 {
        let create = try #require(Self.memfdCreate)
        let fd = create("lattica-test", Self.allowSealing)
        try #require(fd >= 0)
        #expect(fchmod(fd, 0o600) == 0)
        #expect(ftruncate(fd, off_t(4 * values.count)) == 0)
        _ = values.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
        if sealed { #expect(fcntl(fd, Self.addSeals, Self.sealShrink | Self.sealGrow | Self.sealSeal) == 0) }
        return fd
    }

    func path(_ fd: Int32) -> String { "/proc/\(getpid())/fd/\(fd)" }

    @Test func sealedMemfd_isMapped_readAndWrittenInPlace() throws {
        let values = (0..<10_001).map { Float($0) * 0.5 }
        let fd = try memfd(values, sealed: true)
        defer { close(fd) }
        var buffer: [Float] = []
        #expect(try SharedTheta.read(path(fd), count: values.count, into: &buffer) == .mapped)
        #expect(buffer == values)
        let answer = values.map { -$0 }
        #expect(try SharedTheta.write(path(fd), answer) == .mapped)
        var back = [Float](repeating: 0, count: values.count)
        _ = back.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, 0) }
        #expect(back == answer)
        // The seal is what makes the mapping safe: the trainer cannot shrink the file any more.
        #expect(ftruncate(fd, 4) != 0 && errno == EPERM)
    }

    @Test func unsealedMemfd_andPlainFile_areReadAndWrittenWithoutAMapping() throws {
        let values = (0..<777).map { Float($0) }
        let fd = try memfd(values, sealed: false)
        defer { close(fd) }
        var buffer = [Float](repeating: 9, count: values.count)  // reused in place
        #expect(try SharedTheta.read(path(fd), count: values.count, into: &buffer) == .read)
        #expect(buffer == values)
        #expect(try SharedTheta.write(path(fd), values.map { $0 + 1 }) == .read)
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let file = tmp.path + "/theta"
        FileManager.default.createFile(atPath: file, contents: values.withUnsafeBytes { Data($0) }, attributes: [.posixPermissions: 0o600])
        var b2: [Float] = []
        #expect(try SharedTheta.read(file, count: values.count, into: &b2) == .read)
        #expect(b2 == values)
    }

    @Test func fileShrunkMidHandOff_isAClearError_notACrash() throws {
        let values = [Float](repeating: 1, count: 100_000)
        let fd = try memfd(values, sealed: false)
        defer { close(fd) }
        SharedTheta.afterCheck = { _ in _ = ftruncate(fd, 4096) }  // the trainer truncates after the daemon checked the size
        defer { SharedTheta.afterCheck = nil }
        var buffer: [Float] = []
        #expect {
            try SharedTheta.read(path(fd), count: values.count, into: &buffer)
        } throws: { error in
            (error as? ControlErrorBody)?.message.contains("truncate") == true
        }
        // Shrunk before the write-back: refused on the size, nothing written past the end.
        SharedTheta.afterCheck = nil
        #expect(throws: ControlErrorBody.self) { try SharedTheta.write(path(fd), values) }
    }

    @Test func nonFiniteTheta_andOthersFiles_areRefused() throws {
        var values = [Float](repeating: 1, count: 1000)
        values[999] = .nan
        let fd = try memfd(values, sealed: true)
        defer { close(fd) }
        var buffer: [Float] = []
        #expect { try SharedTheta.read(path(fd), count: 1000, into: &buffer) } throws: { ($0 as? ControlErrorBody)?.message.contains("NaN") == true }
        #expect(fchmod(fd, 0o644) == 0)
        #expect { try SharedTheta.read(path(fd), count: 1000, into: &buffer) } throws: { ($0 as? ControlErrorBody)?.message.contains("0600") == true }
        #expect(TrainerAPI.procFD("/proc/12/fd/3")! == (12, 3))
        for bad in ["/proc/self/fd/3", "/proc/12/fd/", "/proc/12/fd/3/..", "/proc/+1/fd/3", "/proc/12/fdx/3", "/dev/shm/../etc/passwd"] {
            #expect(!TrainerAPI.isSharedMemoryPath(bad), "\(bad)")
        }
        #expect(TrainerAPI.isSharedMemoryPath("/dev/shm/latticaswift-1-0"))
    }
}
