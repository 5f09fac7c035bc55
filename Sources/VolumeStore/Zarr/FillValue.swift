/// Which fill values an element type can hold, as zarr-python decides (3.x, checked in FillValueTests): an integer
/// type takes an integral number inside its range (2.0 is 2; NaN, ±Infinity, 2.5, 1e300, −1 on an unsigned type
/// are refused at open); a float type takes anything. Missing chunks read as the fill, so a fill the type cannot
/// hold used to surface only at the first missing chunk — as a trap, or as a silently different number.
extension DataType {
    /// The accepted fill values of an integer type, for messages ("0…255").
    var integerRange: String {
        let bits = 8 * size
        switch (kind, size) {
        case (.float, _): return "any number"
        case (.uint, 8): return "0…18446744073709551615"
        case (.int, 8): return "-9223372036854775808…9223372036854775807"
        case (.uint, _): return "0…\((1 << bits) - 1)"
        case (.int, _): return "\(-(1 << (bits - 1)))…\((1 << (bits - 1)) - 1)"
        }
    }

    /// Whether `value` (a fill value parsed to Double) is an element this type can hold exactly.
    public func canHold(fill value: Double) -> Bool {
        guard kind != .float else { return true }
        guard value.isFinite, value.rounded(.towardZero) == value else { return false }
        // Bounds as Doubles: 2^63 and 2^64 are exact, and every integral Double below them converts exactly.
        switch (kind, size) {
        case (.uint, 8): return value >= 0 && value < 18_446_744_073_709_551_616.0
        case (.int, 8): return value >= -9_223_372_036_854_775_808.0 && value < 9_223_372_036_854_775_808.0
        case (.uint, _): return value >= 0 && value <= Double((1 << (8 * size)) - 1)
        default: return value >= -Double(1 << (8 * size - 1)) && value <= Double((1 << (8 * size - 1)) - 1)
        }
    }
}

extension ArrayMetadata {
    /// The fill value as v2 and v3 metadata write it: "NaN"/"Infinity"/"-Infinity", a float, or an integer (a uint64
    /// fill past Int64.max as UInt64; `validateFill` has ensured an integer type's fill is integral and in range).
    var fillJSON: Any {
        if fillValue.isNaN { return "NaN" }
        if fillValue.isInfinite { return fillValue > 0 ? "Infinity" : "-Infinity" }
        if dtype.kind == .float || !dtype.canHold(fill: fillValue) { return fillValue }
        return fillValue >= 9_223_372_036_854_775_808.0 ? UInt64(fillValue) as Any : Int64(fillValue) as Any
    }

    /// Refuses a fill value the dtype cannot hold, naming the array, the value and the accepted range.
    func validateFill(path: String) throws {
        guard dtype.canHold(fill: fillValue) else {
            let shown = fillValue.isNaN ? "NaN" : fillValue.isInfinite ? (fillValue > 0 ? "Infinity" : "-Infinity")
                : fillValue.rounded(.towardZero) == fillValue && abs(fillValue) < 1e18 ? String(Int64(fillValue)) : "\(fillValue)"
            throw VolumeError.malformedMetadata(path: path, reason: "fill_value \(shown) cannot be stored in dtype \(dtype.v3Name) "
                + "(an integer type takes an integer in \(dtype.integerRange)); zarr-python refuses this array too. "
                + "Set fill_value to a value in that range (e.g. 0)")
        }
    }
}
