import Foundation
import Testing
import VHDX
import VHDXChangeTracking
import VHDXExport
import VHDXTestSupport

/// One equality rule for the errors of the engine, change tracking and export (equal when the
/// code or reason is), and typed throws that carry an engine or tracking error unchanged (issue 19).
@Suite struct ErrorRuleTests {
    @Test("VHDXError, ChangeTrackingError and ExportError are equal when their code or reason is, whatever the words")
    func equality() {
        let io1: VHDXError = VHDXError(VHDXError.Code.io, "a", path: "x", at: 1)
        let io2: VHDXError = VHDXError(VHDXError.Code.io, "b")
        let readOnly: VHDXError = VHDXError(VHDXError.Code.readOnly, "a")
        let expired1: ChangeTrackingError = ChangeTrackingError(ChangeTrackingError.Reason.expired, "a", path: "x")
        let expired2: ChangeTrackingError = ChangeTrackingError(ChangeTrackingError.Reason.expired, "b")
        let reset: ChangeTrackingError = ChangeTrackingError(ChangeTrackingError.Reason.reset, "a")
        let damaged1: ExportError = ExportError(ExportError.Reason.damaged, "a", path: "x", offset: 1)
        let damaged2: ExportError = ExportError(ExportError.Reason.damaged, "b")
        let exportIO: ExportError = ExportError(ExportError.Reason.io, "a")
        let sameCode: Bool = io1 == io2
        let otherCode: Bool = io1 != readOnly
        let sameReason: Bool = expired1 == expired2
        let otherReason: Bool = expired1 != reset
        let sameExport: Bool = damaged1 == damaged2
        let otherExport: Bool = damaged1 != exportIO
        #expect(sameCode)
        #expect(otherCode)
        #expect(sameReason)
        #expect(otherReason)
        #expect(sameExport)
        #expect(otherExport)
        // A carried error: the reason, and the carried error's code or reason.
        let carriedIO1: ChangeTrackingError = ChangeTrackingError(io1)
        let carriedIO2: ChangeTrackingError = ChangeTrackingError(io2)
        let carriedReadOnly: ChangeTrackingError = ChangeTrackingError(readOnly)
        let sameCarried: Bool = carriedIO1 == carriedIO2
        let otherCarried: Bool = carriedIO1 != carriedReadOnly
        #expect(sameCarried)
        #expect(otherCarried)
    }

    @Test("a carried error reads exactly as it was thrown, and VHDXError.carried(by:) finds the engine's")
    func carried() {
        let e: VHDXError = VHDXError(VHDXError.Code.io, "read failed", path: "d.vhdx", at: 4096)
        let inTracking: ChangeTrackingError = ChangeTrackingError(e)
        let inExport: ExportError = ExportError(e)
        let throughBoth: ExportError = ExportError(inTracking)
        let found: VHDXError? = VHDXError.carried(by: throughBoth)
        let words: Bool = inTracking.description == e.description && inExport.description == e.description
        let engine: Bool = inTracking.reason == ChangeTrackingError.Reason.engine && throughBoth.reason == ExportError.Reason.engine
        let code: Bool = found?.code == VHDXError.Code.io
        #expect(words)
        #expect(engine)
        #expect(code)
    }
}
