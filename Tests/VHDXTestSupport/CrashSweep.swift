/// The bookkeeping of a "crash at every flush point" loop, so that it cannot pass vacuously:
/// it visited at least one point, each point really crashed, and the branch that checks a
/// published (or reopened) result ran at least once. A test ends with
/// `#expect(sweep.problems.isEmpty, "\(sweep.problems)")`.
package final class CrashSweep {
    package let name: String
    package private(set) var points = 0
    package private(set) var crashes = 0
    package private(set) var checked = 0
    private var notCrashed: [String] = []
    private let expectsChecked: Bool

    /// `expectsChecked`: the loop has a branch checking a result that only some points reach.
    package init(_ name: String, expectsChecked: Bool = true) {
        self.name = name
        self.expectsChecked = expectsChecked
    }

    /// A point was run; `crashed`: whether the simulated crash happened there.
    package func visited(_ point: String, crashed: Bool) {
        points += 1
        if crashed { crashes += 1 } else { notCrashed.append(point) }
    }

    /// The branch checking the result (a published output, a reopened image) ran.
    package func checkedResult() { checked += 1 }

    /// What makes the loop vacuous or wrong; empty when it is not.
    package var problems: [String] {
        var p: [String] = []
        if points == 0 { p.append("\(name): no crash point visited") }
        if !notCrashed.isEmpty { p.append("\(name): no crash at \(notCrashed.prefix(5).joined(separator: ", "))") }
        if expectsChecked && checked == 0 { p.append("\(name): the result was never checked") }
        return p
    }
}
