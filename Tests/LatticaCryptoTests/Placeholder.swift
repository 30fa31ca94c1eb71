import Testing
@testable import LatticaCrypto
