import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Every C call of the queue code goes through this file: an open file descriptor with the
/// few operations the queue needs, each turning a failure into a `QueueError` that names the
/// path, the system call and errno. Closed on `close()` or deinit.
final class QueueFile {
    let path: String
    private(set) var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close() }

    enum Mode {
        case readOnly
        /// O_WRONLY | O_APPEND | O_CREAT
        case append
        /// O_WRONLY | O_CREAT | O_TRUNC
        case createTruncate
        /// O_RDWR | O_CREAT
        case readWriteCreate
    }

    static func open(_ path: String, _ mode: Mode, what: String) throws(QueueError) -> QueueFile {
        let flags: Int32
        switch mode {
        case .readOnly: flags = O_RDONLY
        case .append: flags = O_WRONLY | O_APPEND | O_CREAT
        case .createTruncate: flags = O_WRONLY | O_CREAT | O_TRUNC
        case .readWriteCreate: flags = O_RDWR | O_CREAT
        }
        var fd: Int32
        repeat {
            fd = Glibc_open(path, flags | O_CLOEXEC, 0o644)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            throw QueueError(.io, "cannot open \(what) \(path)", path: path, syscall: "open", errno: errno)
        }
        return QueueFile(path: path, fd: fd)
    }

    /// Wraps an already open descriptor (standard input); it is not closed by this object.
    static func borrowing(fd: Int32, path: String) -> QueueFile {
        let f = QueueFile(path: path, fd: fd)
        f.borrowed = true
        return f
    }

    private var borrowed = false

    func close() {
        if fd >= 0 && !borrowed { _ = Glibc_close(fd) }
        fd = -1
    }

    func error(_ message: String, _ syscall: String, _ code: Int32 = errno) -> QueueError {
        QueueError(.io, "\(message) \(path)", path: path, syscall: syscall, errno: code)
    }

    /// Reads up to `count` bytes at the current position and appends them to `buffer`;
    /// returns how many were read (0 at end of file).
    func read(appendingTo buffer: inout [UInt8], count: Int) throws(QueueError) -> Int {
        // Read into uninitialised memory, then copy what arrived: zero-filling `count` bytes
        // first cost more than the read itself for the usual short tail of an outbox.
        var result = 0
        var code: Int32 = 0
        let chunk = [UInt8](unsafeUninitializedCapacity: count) { raw, initialized in
            while true {
                let n = Glibc_read(fd, raw.baseAddress!, count)
                if n < 0 && errno == EINTR { continue }
                result = n
                if n < 0 { code = errno }
                initialized = max(n, 0)
                return
            }
        }
        if result < 0 { throw error("cannot read", "read", code) }
        buffer.append(contentsOf: chunk)
        return result
    }

    /// Reads the bytes in `offset..<offset+count` (fewer at end of file) without moving the position.
    func readBytes(at offset: Int64, count: Int) throws(QueueError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        var code: Int32 = 0
        out.withUnsafeMutableBytes { raw in
            while done < count {
                let n = Glibc_pread(fd, raw.baseAddress! + done, count - done, off_t(offset + Int64(done)))
                if n < 0 && errno == EINTR { continue }
                if n < 0 { code = errno }
                if n <= 0 { return }
                done += n
            }
        }
        if code != 0 { throw error("cannot read", "pread", code) }
        out.removeLast(count - done)
        return out
    }

    /// Writes all of `bytes` (looping over short writes).
    func writeAll(_ bytes: [UInt8]) throws(QueueError) {
        var code: Int32 = 0
        bytes.withUnsafeBytes { raw in
            guard var p = raw.baseAddress else { return }
            var left = raw.count
            while left > 0 {
                let n = Glibc_write(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    code = errno
                    return
                }
                p += n
                left -= n
            }
        }
        if code != 0 { throw error("cannot write to", "write", code) }
    }

    func sync() throws(QueueError) {
        guard Glibc_fsync(fd) == 0 else { throw error("cannot fsync", "fsync") }
    }

    func seek(to offset: Int64) throws(QueueError) {
        guard Glibc_lseek(fd, off_t(offset), SEEK_SET) >= 0 else { throw error("cannot seek in", "lseek") }
    }

    func size() throws(QueueError) -> Int64 {
        var st = stat()
        guard Glibc_fstat(fd, &st) == 0 else { throw error("cannot stat", "fstat") }
        return Int64(st.st_size)
    }

    func truncate(to size: Int64) throws(QueueError) {
        guard Glibc_ftruncate(fd, off_t(size)) == 0 else { throw error("cannot truncate", "ftruncate") }
    }

    /// Tries an exclusive `flock`; false when another open file description holds it.
    func tryLockExclusive() throws(QueueError) -> Bool {
        while true {
            if Glibc_flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK || e == EAGAIN { return false }
            throw error("cannot lock", "flock", e)
        }
    }

    // MARK: Paths

    /// fsyncs a directory, so that a rename or a newly created file in it is durable.
    static func syncDirectory(_ path: String) throws(QueueError) {
        let fd = Glibc_open(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY, 0)
        guard fd >= 0 else {
            throw QueueError(.io, "cannot open directory \(path)", path: path, syscall: "open", errno: errno)
        }
        defer { _ = Glibc_close(fd) }
        guard Glibc_fsync(fd) == 0 else {
            throw QueueError(.io, "cannot fsync directory \(path)", path: path, syscall: "fsync", errno: errno)
        }
    }

    static func rename(_ from: String, _ to: String) throws(QueueError) {
        guard Glibc_rename(from, to) == 0 else {
            throw QueueError(.io, "cannot rename \(from) to \(to)", path: to, syscall: "rename", errno: errno)
        }
    }

    static func unlink(_ path: String) {
        _ = Glibc_unlink(path)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return Glibc_stat(path, &st) == 0
    }

    /// The index of the first `byte` in `buffer` (memchr).
    static func firstIndex(of byte: UInt8, in buffer: UnsafeRawBufferPointer) -> Int? {
        guard let base = buffer.baseAddress, buffer.count > 0,
              let hit = memchr(base, Int32(byte), buffer.count)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
    /// rename over `path`, fsync the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(QueueError) {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(".\(name).tmp-\(getpid())")
        // A failure names `path` first: "cannot write to .state.json.tmp-123" alone does not tell
        // the operator that the checkpoint (or agency.json) was not saved, nor that the old one
        // is still in place (found with a full disk and a read-only queue directory).
        func replacing(_ error: QueueError) -> QueueError {
            var named = error
            named.message = "cannot write \(path) (it is left as it was): \(error.message)"
            named.path = path
            return named
        }
        let file: QueueFile
        do {
            file = try QueueFile.open(temporary, .createTruncate, what: "temporary file")
        } catch {
            throw replacing(error)
        }
        do {
            try file.writeAll(bytes)
            try file.sync()
            file.close()
            try rename(temporary, path)
        } catch {
            file.close()
            unlink(temporary)
            throw replacing(error)
        }
        try syncDirectory(directory.isEmpty ? "." : directory)
    }
}

// The C functions under names that do not collide with the methods above.
private func Glibc_open(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func Glibc_close(_ fd: Int32) -> Int32 { close(fd) }
private func Glibc_read(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, buf, n) }
private func Glibc_pread(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ n: Int, _ off: off_t) -> Int {
    pread(fd, buf, n, off)
}
private func Glibc_write(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int { write(fd, buf, n) }
private func Glibc_fsync(_ fd: Int32) -> Int32 { fsync(fd) }
private func Glibc_lseek(_ fd: Int32, _ off: off_t, _ whence: Int32) -> off_t { lseek(fd, off, whence) }
private func Glibc_fstat(_ fd: Int32, _ st: inout stat) -> Int32 { fstat(fd, &st) }
private func Glibc_stat(_ path: String, _ st: inout stat) -> Int32 { stat(path, &st) }
private func Glibc_ftruncate(_ fd: Int32, _ size: off_t) -> Int32 { ftruncate(fd, size) }
private func Glibc_flock(_ fd: Int32, _ op: Int32) -> Int32 { flock(fd, op) }
private func Glibc_rename(_ a: String, _ b: String) -> Int32 { rename(a, b) }
private func Glibc_unlink(_ path: String) -> Int32 { unlink(path) }
