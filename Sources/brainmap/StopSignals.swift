import Dispatch
import Foundation

/// SIGINT/SIGTERM → `onStop` once (the job finishes what is in flight and exits resumable); a second signal quits
/// at once with status 130.
///
/// The second signal leaves with `_exit`, not `exit`: `exit` runs the C atexit handlers and static destructors,
/// and OpenBLAS registers one that frees its thread buffers while its worker threads may still be inside an sgemm
/// of a block in flight — that is the segfault (exit 139) a second Ctrl-C during predict's drain produced about one
/// time in ten. `_exit` ends the process without running them. Nothing is lost: every chunk write is a temp file +
/// rename and a block (a slice, a pass) is marked done only after its outputs are durable, so the run on disk is
/// already consistent and resumes (a write in flight leaves at most a hidden `.tmp-*` file, never read as a chunk).
final class StopSignals: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    /// `inFlight`: what the job finishes before it stops, in words (predict: "the blocks in flight").
    init(finishing inFlight: String, _ onStop: @escaping @Sendable () -> Void) {
        let count = StopCount()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {   // (dispatch drops this handler, and with it `src`, once the source is cancelled)
                // A dispatch source coalesces signals that arrive before its handler runs: `data` is how many came.
                if count.add(Int(max(1, src.data))) > 1 { Self.quitNow() }
                FileHandle.standardError.write(Data("\nstopping: finishing \(inFlight) (signal again to quit at once)\n".utf8))
                onStop()
            }
            src.resume()
            sources.append(src)
        }
    }
    func cancel() { sources.forEach { $0.cancel() } }

    /// Flushes what the command has printed (stderr writes go straight out)
    /// and ends the process without atexit handlers (see the type's comment).
    static func quitNow() -> Never {
        fflush(nil)   // every C stream: stdout is buffered when it is a pipe
        FileHandle.standardError.write(Data("\nstopping now (re-run the same command to resume)\n".utf8))
        _exit(130)
    }
}

final class StopCount: @unchecked Sendable {
    private let lock = NSLock(); private var n = 0
    func add(_ k: Int) -> Int { lock.withLock { n += k; return n } }
}
