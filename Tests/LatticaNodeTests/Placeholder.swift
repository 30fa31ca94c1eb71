import Testing
@testable import LatticaNode
