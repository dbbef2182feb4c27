import CardCore
import Foundation

/// Where an event id falls and what it contributes to its bucket's digest.
///
/// Both sides derive it from `md5` of the id's 16 bytes (PostgreSQL: `md5(uuid_send(event_id))`):
/// the first 4 bytes, big-endian and masked, pick the bucket; the next 8, big-endian, are the
/// 64-bit hash XORed into the bucket. ReconcileSQL holds the SQL spelling of the same.
public struct EventIDKey: Sendable, Hashable {
    public var bucket: Int
    public var hash: Int64

    public init(_ id: UUID, bucketCount: Int) {
        let (b, h) = MD5.uuidPrefix(id.uuid)
        bucket = Int(b & UInt32(bucketCount - 1))
        hash = Int64(bitPattern: h)
    }
}

/// One bucket's digest: how many ids fell into it and the XOR of their 64-bit hashes.
public struct BucketDigest: Sendable, Hashable {
    public var count: Int64 = 0
    public var xor: Int64 = 0

    public init(count: Int64 = 0, xor: Int64 = 0) {
        self.count = count
        self.xor = xor
    }
}

/// Per-bucket digests of a set of event ids; empty buckets are absent.
///
/// Two sets with equal digests are equal except with probability about 2^-64 per bucket; the
/// buckets whose digests differ are the only ones whose ids need to be exchanged.
public struct EventIDDigest: Sendable, Equatable {
    /// A power of two.
    public let bucketCount: Int
    public internal(set) var buckets: [Int: BucketDigest] = [:]

    public init(bucketCount: Int) {
        precondition(bucketCount > 0 && bucketCount & (bucketCount - 1) == 0, "the bucket count must be a power of two")
        self.bucketCount = bucketCount
    }

    /// Adds one id (the caller makes sure each id is added once).
    public mutating func add(_ key: EventIDKey) {
        var d = buckets[key.bucket] ?? BucketDigest()
        d.count += 1
        d.xor ^= key.hash
        buckets[key.bucket] = d
    }

    public var totalCount: Int64 { buckets.values.reduce(0) { $0 + $1.count } }

    /// The digest of the whole set (the buckets' counts added, their hashes XORed).
    public var total: BucketDigest {
        buckets.values.reduce(into: BucketDigest()) { t, d in
            t.count += d.count
            t.xor ^= d.xor
        }
    }

    /// Buckets whose digests differ between the two sets, ascending.
    public func differingBuckets(_ other: EventIDDigest) -> [Int] {
        precondition(bucketCount == other.bucketCount)
        var out: [Int] = []
        for bucket in Set(buckets.keys).union(other.buckets.keys) where buckets[bucket] != other.buckets[bucket] {
            out.append(bucket)
        }
        return out.sorted()
    }
}

/// A set of event ids held locally, with the bucket and hash of each, built once and then
/// digested or filtered by bucket. Duplicates (the same event id on two lines) count once.
struct KeyedIDSet<Info> {
    struct Entry {
        var id: UUID
        var key: EventIDKey
        var info: Info
    }

    let bucketCount: Int
    private(set) var entries: [Entry] = []
    private var seen: Set<UUID> = []

    init(bucketCount: Int) { self.bucketCount = bucketCount }

    /// Adds the id unless it is already there (the first occurrence wins).
    mutating func insert(_ id: UUID, info: Info) {
        guard seen.insert(id).inserted else { return }
        entries.append(Entry(id: id, key: EventIDKey(id, bucketCount: bucketCount), info: info))
    }

    var count: Int { entries.count }

    func contains(_ id: UUID) -> Bool { seen.contains(id) }

    var digest: EventIDDigest {
        var d = EventIDDigest(bucketCount: bucketCount)
        for e in entries { d.add(e.key) }
        return d
    }

    func entries(inBuckets buckets: Set<Int>) -> [Entry] {
        entries.filter { buckets.contains($0.key.bucket) }
    }
}
