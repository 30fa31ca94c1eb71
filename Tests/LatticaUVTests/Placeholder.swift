import Testing
@testable import LatticaUV
