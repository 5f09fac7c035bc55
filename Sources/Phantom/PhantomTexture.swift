import Foundation

/// Per-area texture parameters, calibrated by eye and by statistics against the real slice 309 of the paper's
/// sample (see tools/calibrate_phantom.py): tissue gray ~120–150, myelin bright, cell bodies and vessels dark.
struct AreaTexture {
    /// Neuropil gray level before cells, fibres and vessels.
    var base: Double
    /// Probability that a 10-voxel cell-grid site holds a cell body (1 = 1e-3 cells/voxel).
    var cellP: Double
    /// Cell-body radius, mean and sd (voxels of 1.17 µm).
    var cellR: Double, cellRsd: Double
    /// Probability that a 10-voxel fibre-grid site holds a myelinated axon segment.
    var axonP: Double
    /// Axon direction: in-plane angle (radians from +x toward +y), spread (radians), and how far out of plane it tilts.
    var axonAngle: Double, axonSpread: Double, axonTilt: Double
    /// Axon direction follows the cortex (radial) or the band (tangential) instead of a fixed angle.
    var axonFrame: AxonFrame = .fixed
    var axonBright: Double

    enum AxonFrame { case fixed, radial, tangential, random }

    static func forArea(_ a: PhantomArea) -> AreaTexture {
        switch a {
        case .background:
            return AreaTexture(base: 6, cellP: 0, cellR: 0, cellRsd: 0, axonP: 0, axonAngle: 0, axonSpread: 0, axonTilt: 0, axonBright: 0)
        case .ctx:
            return AreaTexture(base: 128, cellP: 0.38, cellR: 3, cellRsd: 0.58, axonP: 0.1, axonAngle: 0, axonSpread: 0.25,
                               axonTilt: 0.25, axonFrame: .radial, axonBright: 43)
        case .hyp:
            return AreaTexture(base: 121, cellP: 0.17, cellR: 2.9, cellRsd: 0.94, axonP: 0.14, axonAngle: 0, axonSpread: 3,
                               axonTilt: 0.8, axonFrame: .random, axonBright: 40)
        case .str:
            return AreaTexture(base: 131, cellP: 0.57, cellR: 2.9, cellRsd: 0.45, axonP: 0.1, axonAngle: 0, axonSpread: 3,
                               axonTilt: 0.8, axonFrame: .random, axonBright: 43)
        case .vp:
            return AreaTexture(base: 136, cellP: 0.46, cellR: 3.6, cellRsd: 0.65, axonP: 0.75, axonAngle: 0.95, axonSpread: 0.35,
                               axonTilt: 0.4, axonBright: 50)
        case .wm:
            return AreaTexture(base: 160, cellP: 0.076, cellR: 1.9, cellRsd: 0.36, axonP: 0.9, axonAngle: 0, axonSpread: 0.12,
                               axonTilt: 0.2, axonFrame: .tangential, axonBright: 47)
        case .zi:
            return AreaTexture(base: 134, cellP: 0.25, cellR: 3, cellRsd: 0.58, axonP: 0.38, axonAngle: -0.17, axonSpread: 0.12,
                               axonTilt: 0.15, axonBright: 54)
        }
    }

    /// Cortical layers change cell and fibre density and cell size.
    mutating func applyLayer(_ l: PhantomLayer) {
        switch l {
        case .l1: cellP = 0.08; axonP = 0.06; axonFrame = .tangential; axonSpread = 0.4
        case .l23: cellP = 0.46; cellR = 3.3; axonP = 0.12
        case .l4: cellP = 0.38; cellR = 2.7; axonP = 0.12
        case .l5: cellP = 0.28; cellR = 3.9; cellRsd = 0.8; axonP = 0.3
        case .l6: cellP = 0.42; cellR = 2.9; axonP = 0.45
        case .none: break
        }
    }
}
