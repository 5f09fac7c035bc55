/// `--shard I/N`: unit k (a block, in the grid's row-major order) belongs to shard k mod N, whatever the slices
/// asked for, so N processes given the same parameters split any set of units without talking to each other.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int, count: Int
    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw RunError.input("--shard \(index)/\(count): need 0 ≤ I < N (e.g. 0/3, 1/3, 2/3)")
        }
        self.index = index; self.count = count
    }
    public static let all = try! Shard(index: 0, count: 1)
    public func owns(_ unit: Int) -> Bool { unit % count == index }
    public var description: String { "\(index)/\(count)" }
    /// The file name part every per-shard file uses.
    public var fileTag: String { Shard.fileTag(index, of: count) }
    public static func fileTag(_ index: Int, of count: Int) -> String { "shard-\(index)-of-\(count)" }
}
