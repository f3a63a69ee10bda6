import Synchronization

/// A received message waiting to be produced.
struct SyslogPending: Sendable {
    /// Message bytes.
    var bytes: [UInt8]
    /// Sender IP address (the record key).
    var sender: String
    /// Receive time, epoch milliseconds (the record timestamp).
    var receivedAt: Int64
}

/// The bounded buffer between the listeners (event loops) and the producing loop.
///
/// UDP cannot be slowed down, so a datagram arriving at a full queue is dropped (and counted).
/// TCP can: a connection's messages are always accepted, and once the queue is at capacity the
/// connection stops reading until the producer has drained it (see `whenDrained`).
final class SyslogQueue: Sendable {
    private struct State {
        var items: [SyslogPending] = []
        var drainedWaiters: [@Sendable () -> Void] = []
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// Adds a datagram's message unless the queue is full.
    func offer(_ item: SyslogPending) -> Bool {
        state.withLock { state in
            guard state.items.count < capacity else { return false }
            state.items.append(item)
            return true
        }
    }

    /// Adds a stream's messages; returns whether the queue is now at or over capacity (the
    /// caller should pause reading).
    func append(_ items: [SyslogPending]) -> Bool {
        state.withLock { state in
            state.items.append(contentsOf: items)
            return state.items.count >= capacity
        }
    }

    /// Runs `resume` once the queue is below capacity again (at once if it already is).
    func whenDrained(_ resume: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.items.count < capacity { return true }
            state.drainedWaiters.append(resume)
            return false
        }
        if now { resume() }
    }

    /// Removes up to `limit` oldest messages.
    func take(upTo limit: Int) -> [SyslogPending] {
        let (batch, waiters) = state.withLock { state -> ([SyslogPending], [@Sendable () -> Void]) in
            let count = min(limit, state.items.count)
            let batch = Array(state.items.prefix(count))
            state.items.removeFirst(count)
            guard state.items.count < capacity, !state.drainedWaiters.isEmpty else { return (batch, []) }
            defer { state.drainedWaiters = [] }
            return (batch, state.drainedWaiters)
        }
        for resume in waiters { resume() }
        return batch
    }

    /// Messages waiting.
    var count: Int { state.withLock { $0.items.count } }
}
