import Testing
@testable import VHDXServe

@Suite struct ServedDiskContractTests {
    @Test func errorCodesAreTheProtocols() {
        #expect(ServeError.Code.notPermitted.rawValue == 1)
        #expect(ServeError.Code.overflow.rawValue == 75)
        #expect(ServeError.Code.notSupported.rawValue == 95)
    }
}
