import Dispatch
import Foundation
import Synchronization

/// Set by SIGINT or SIGTERM. The signals are ignored by default handling and delivered to a
/// dispatch source instead, so the demo can stop its children and print its summary.
final class InterruptFlag {
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
        let count = Atomic<Int>(0)
    }

    private let flag = Flag()
    private let sources: [any DispatchSourceSignal]

    /// `onSignal`, when given, runs on a dispatch queue for every SIGINT or SIGTERM with the
    /// signal's number and how many such signals have arrived so far (1 for the first).
    init(onSignal: (@Sendable (Int32, Int) -> Void)? = nil) {
        var sources: [any DispatchSourceSignal] = []
        let flag = self.flag
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                flag.value.store(true, ordering: .relaxed)
                let count = flag.count.wrappingAdd(1, ordering: .relaxed).newValue
                onSignal?(number, count)
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    var isSet: Bool { flag.value.load(ordering: .relaxed) }
}
