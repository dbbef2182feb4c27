/// Identity numbers and agency codes in the projection compare byte by byte (`COLLATE "C"`).
///
/// Why: both are codes (digits, capital letters, hyphens), whose natural order is byte order.
/// Under a linguistic collation (the database default, `C.UTF-8` on the embedded cluster, often
/// `en_US.UTF-8` elsewhere) every comparison goes through the locale's string comparison, with
/// copies of both values; a sync probes the open applications of every submitted child, about
/// 25 comparisons per child, and every new application is inserted into the indexes on both
/// columns. Bytewise, those comparisons are plain memory comparisons. The indexes on the two
/// columns are rebuilt by this migration; the rows are not rewritten.
let migration0004BytewiseKeys = Migration(
    version: 4,
    name: "identity numbers and agency codes compared bytewise in the projection",
    sql: #"""
ALTER TABLE cardsync.applications
    ALTER COLUMN child_id_number TYPE text COLLATE "C",
    ALTER COLUMN owning_agency TYPE text COLLATE "C";
"""#)
