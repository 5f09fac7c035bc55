#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Who is working on a step of a run, between processes: every process in a step holds a shared `flock` on
/// `.brainmap/STEP.lock` for as long as it runs; starting a new generation (which drops the current one's state)
/// needs it exclusively, so it is refused while another process works on the step — shards of one command share
/// it, a second command with other parameters cannot pull the state from under them. `predict --restart` needs
/// every step's lock. The kernel drops a dead process's locks, so a killed command never blocks the next one.
final class StepLock: @unchecked Sendable {
    let path: String
    private let fd: Int32

    init(_ path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw RunError.input("cannot open \(path): \(String(cString: strerror(errno))) — is the run writable?") }
    }

    deinit { close(fd) }

    /// Exclusive without waiting; false when another process holds the lock (shared or exclusive).
    func tryExclusive() -> Bool {
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
        _ = flock(fd, LOCK_SH | LOCK_NB)   // a failed conversion may have dropped a shared lock held before
        return false
    }

    /// Shared, waiting for an exclusive holder (a generation being started takes moments).
    func shared() throws {
        while flock(fd, LOCK_SH) != 0 {
            guard errno == EINTR else { throw RunError.input("cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
    }

    func unlock() { _ = flock(fd, LOCK_UN) }
}
