/// The colours of integer maps by id (1 = the first; 0 means "nothing here" and has none), shared by the run's
/// OME-Zarr `image-label` metadata (what napari paints) and the report, so a class or cluster looks the same in both.
public enum LabelColors {
    /// Area classes 1…6 (CTX, HYP, STR, VP, WM, ZI): the Okabe–Ito colour-blind-safe set.
    public static let classes: [(UInt8, UInt8, UInt8)] = [
        (0xE6, 0x9F, 0x00),   // 1 CTX orange
        (0xCC, 0x79, 0xA7),   // 2 HYP reddish purple
        (0x00, 0x9E, 0x73),   // 3 STR bluish green
        (0xD5, 0x5E, 0x00),   // 4 VP vermillion
        (0x56, 0xB4, 0xE9),   // 5 WM sky blue
        (0x00, 0x72, 0xB2),   // 6 ZI blue
    ]
    /// Clusters: Tableau 10, another set than the classes' so the two maps are not read as the same thing; ids past
    /// 10 repeat it.
    public static let clusters: [(UInt8, UInt8, UInt8)] = [
        (0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B), (0xE1, 0x57, 0x59), (0x76, 0xB7, 0xB2), (0x59, 0xA1, 0x4F),
        (0xED, 0xC9, 0x48), (0xB0, 0x7A, 0xA1), (0xFF, 0x9D, 0xA7), (0x9C, 0x75, 0x5F), (0xBA, 0xB0, 0xAC),
    ]
}
