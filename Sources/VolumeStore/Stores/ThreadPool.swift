import Foundation

/// A fixed set of dedicated threads that run blocking work — seconds of network compute, file reads and fsyncs —
/// so that it never occupies Swift's cooperative pool (which has one thread per core). `run` suspends the caller
/// until a thread of the pool has run the job. Threads start with the work and exit after a few idle seconds.
///
/// The pool also measures how long its threads sat idle while work was under way, which is how the pipeline
/// reports that the network waited for input (its stall fraction).
public final class ThreadPool: @unchecked Sendable {
    public let name: String
    public let threadCount: Int
    private let condition = NSCondition()
    /// Pending jobs from `head` on; taken slots are set to nil at once, so a job's captures (windows, outputs)
    /// are released when it has run, not when the queue next drains.
    private var queue: [(() -> Void)?] = []
    private var head = 0
    /// Which thread slots have a running thread, and how many threads wait for work.
    private var slots: [Bool]
    private var waiting = 0
    /// Seconds an idle thread waits for work before it exits.
    static let idleLifetime = 5.0
    // Idle accounting (under `condition`): per thread, when it last became free; the sum of idle stretches that
    // ended with a job; when the last job ended.
    private var lastFree: [Double]
    private var idle: Double = 0, busy: Double = 0
    private var measureFrom: Double
    private var lastJobEnd: Double

    public init(name: String, threads: Int) {
        self.name = name
        threadCount = max(1, threads)
        let now = Self.now()
        lastFree = .init(repeating: now, count: threadCount)
        slots = .init(repeating: false, count: threadCount)
        measureFrom = now; lastJobEnd = now
    }

    static func now() -> Double { Date().timeIntervalSinceReferenceDate }

    /// Runs `body` on one of the pool's threads and returns its result (or rethrows its error).
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
            submit { do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) } }
        }
    }

    private func submit(_ job: @escaping () -> Void) {
        condition.lock()
        queue.append(job)
        // Start a thread when none is free to take the job (threads retire after a few idle seconds).
        if waiting == 0, let slot = slots.firstIndex(of: false) {
            slots[slot] = true
            let t = Thread { self.workerLoop(slot) }
            t.name = "brainmap-\(name)-\(slot)"
            t.stackSize = 8 << 20
            t.start()
        } else {
            condition.signal()
        }
        condition.unlock()
    }

    private func workerLoop(_ i: Int) {
        condition.lock()
        while true {
            while head == queue.count {
                waiting += 1
                let woke = condition.wait(until: Date(timeIntervalSinceNow: Self.idleLifetime))
                waiting -= 1
                if !woke && head == queue.count { slots[i] = false; condition.unlock(); return }
            }
            let job = queue[head]!
            queue[head] = nil; head += 1
            if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
            else if head >= 4096 { queue.removeFirst(head); head = 0 }
            let start = Self.now()
            idle += max(0, start - max(lastFree[i], measureFrom))
            condition.unlock()
            job()
            let end = Self.now()
            condition.lock()
            busy += end - start
            lastFree[i] = end
            lastJobEnd = max(lastJobEnd, end)
        }
    }

    /// Starts a new measurement window for `utilisation()`.
    public func resetMeasurement() {
        condition.lock(); defer { condition.unlock() }
        let now = Self.now()
        measureFrom = now; lastJobEnd = now; idle = 0; busy = 0
    }

    /// Thread-seconds busy and idle since the last reset, up to the end of the last job (a thread that finished
    /// early and waited while others still worked was idle until then). Call it when no job is running.
    public func utilisation() -> (busy: Double, idle: Double) {
        condition.lock(); defer { condition.unlock() }
        var open = 0.0
        for f in lastFree { open += max(0, lastJobEnd - max(f, measureFrom)) }
        return (busy, idle + open)
    }
}
