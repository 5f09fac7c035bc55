import Foundation

/// A one-line progress bar with rate and ETA on stderr; when stderr is not a terminal (a log file, a batch job), a
/// plain line every 10 s instead, so a long phase is never silent, and a final line.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let start = Date()
    private var last = Date.distantPast
    private let lock = NSLock()
    private let tty = isatty(2) == 1

    init(_ label: String, total: Int) { self.label = label; self.total = max(total, 1) }

    func update(_ done: Int) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        if tty {
            guard done >= total || now.timeIntervalSince(last) > 0.2 else { return }
            last = now
            FileHandle.standardError.write(Data(("\r" + line(done, now)).utf8))
        } else {
            if last == .distantPast { last = start }
            guard done < total, now.timeIntervalSince(last) >= 10 else { return }
            last = now
            FileHandle.standardError.write(Data((line(done, now) + "\n").utf8))
        }
    }

    func finish() {
        let s = line(total, Date())
        FileHandle.standardError.write(Data(((tty ? "\r" : "") + s + "\n").utf8))
    }

    private func line(_ done: Int, _ now: Date) -> String {
        let f = Double(done) / Double(total)
        let width = 30, filled = Int(f * Double(width))
        let el = now.timeIntervalSince(start)
        let eta = done > 0 ? el / Double(done) * Double(total - done) : 0
        return "\(label) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total) "
            + String(format: "%3.0f%%  %@ elapsed, ETA %@", f * 100, fmt(el), fmt(eta))
    }

    private func fmt(_ s: Double) -> String { formatClock(s) }
}

/// Seconds as m:ss or h:mm:ss, for elapsed times and ETAs.
func formatClock(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
}

/// A progress bar for work whose total is only known once it starts reporting.
final class LazyProgressBar: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private var bar: ProgressBar?
    init(_ label: String) { self.label = label }

    func update(_ done: Int, of total: Int) {
        lock.lock()
        if bar == nil { bar = ProgressBar(label, total: total) }
        let b = bar!
        lock.unlock()
        b.update(done)
    }

    func finish() { lock.withLock { bar }?.finish() }
}
