import Testing
@testable import LatticaDHT
