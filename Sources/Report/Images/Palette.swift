/// Fixed colours for integer maps, so a class or cluster has the same colour on every slice, in every report.
public enum Palette {
    /// Area classes by label id (1…6 = CTX, HYP, STR, VP, WM, ZI): the Okabe–Ito colour-blind-safe set.
    static let classes: [RGB] = [
        RGB(0xE6, 0x9F, 0x00),   // 1 CTX orange
        RGB(0xCC, 0x79, 0xA7),   // 2 HYP reddish purple
        RGB(0x00, 0x9E, 0x73),   // 3 STR bluish green
        RGB(0xD5, 0x5E, 0x00),   // 4 VP vermillion
        RGB(0x56, 0xB4, 0xE9),   // 5 WM sky blue
        RGB(0x00, 0x72, 0xB2),   // 6 ZI blue
    ]
    /// Clusters by id (1 = the first cluster): Tableau 10, another set than the classes' so the two maps are not
    /// read as the same thing; ids past 10 repeat it.
    static let clusters: [RGB] = [
        RGB(0x4E, 0x79, 0xA7), RGB(0xF2, 0x8E, 0x2B), RGB(0xE1, 0x57, 0x59), RGB(0x76, 0xB7, 0xB2), RGB(0x59, 0xA1, 0x4F),
        RGB(0xED, 0xC9, 0x48), RGB(0xB0, 0x7A, 0xA1), RGB(0xFF, 0x9D, 0xA7), RGB(0x9C, 0x75, 0x5F), RGB(0xBA, 0xB0, 0xAC),
    ]

    public enum Kind: Sendable { case classes, clusters }

    /// The colour of id ≥ 1 (0 means "nothing here" and is never painted).
    public static func color(_ id: Int, _ kind: Kind) -> RGB {
        let table = kind == .classes && id <= classes.count ? classes : clusters
        return table[(id - 1) % table.count]
    }
}
