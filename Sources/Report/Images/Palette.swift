import VolumeStore

/// Fixed colours for integer maps, so a class or cluster has the same colour on every slice, in every report.
public enum Palette {
    /// Area classes by label id (1…6 = CTX, HYP, STR, VP, WM, ZI), and clusters: the run's label colours.
    static let classes = LabelColors.classes.map { RGB($0.0, $0.1, $0.2) }
    static let clusters = LabelColors.clusters.map { RGB($0.0, $0.1, $0.2) }

    public enum Kind: Sendable { case classes, clusters }

    /// The colour of id ≥ 1 (0 means "nothing here" and is never painted).
    public static func color(_ id: Int, _ kind: Kind) -> RGB {
        let table = kind == .classes && id <= classes.count ? classes : clusters
        return table[(id - 1) % table.count]
    }
}
