import Testing
@testable import LatticaStore
