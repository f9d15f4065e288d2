//! In-memory storage with Cassandra's data model: keyspaces hold tables, tables hold partitions
//! in token order, partitions hold rows sorted by clustering key, rows hold per-cell write
//! timestamps and expiry times so last-write-wins, null-vs-unset and TTL behave as in Cassandra.
//!
//! Nothing here knows CQL text: `exec` turns statements into the calls below.

use crate::types::CqlType;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// Longest TTL Cassandra accepts (20 years).
pub const MAX_TTL: i64 = 630_720_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    PartitionKey(usize),
    Clustering(usize),
    Regular,
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub typ: CqlType,
    pub frozen: bool,
    pub kind: ColumnKind,
}

impl ColumnDef {
    /// The type as `system_schema.columns` prints it.
    pub fn type_name(&self) -> String {
        if self.frozen {
            format!("frozen<{}>", self.typ.cql_name())
        } else {
            self.typ.cql_name()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// Seconds; 0 = no default expiry.
    pub default_ttl: i64,
    pub gc_grace_seconds: i64,
    /// Options that have a typed column in `system_schema.tables`, serialized for that column.
    pub typed: BTreeMap<String, Bytes>,
    /// Everything else, kept as written.
    pub opaque: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct TableSchema {
    pub keyspace: String,
    pub name: String,
    /// Partition key columns, then clustering columns, then regular columns by name: the order
    /// of `SELECT *` in Cassandra.
    pub columns: Vec<ColumnDef>,
    pub partition_key: Vec<usize>,
    pub clustering_key: Vec<usize>,
    pub clustering_desc: Vec<bool>,
    pub options: TableOptions,
    pub id: [u8; 16],
}

impl TableSchema {
    /// Lays out a (validated) table definition: key columns in key order, then regular
    /// columns sorted by name.
    pub fn build(
        keyspace: &str,
        name: &str,
        cols: &[(String, CqlType, bool)],
        partition_key: &[String],
        clustering_key: &[String],
        clustering_desc: Vec<bool>,
        options: TableOptions,
    ) -> TableSchema {
        let find = |n: &str| cols.iter().find(|c| c.0 == n);
        let mut columns = Vec::new();
        for (i, n) in partition_key.iter().enumerate() {
            if let Some((n, t, f)) = find(n) {
                columns.push(ColumnDef {
                    name: n.clone(),
                    typ: t.clone(),
                    frozen: *f,
                    kind: ColumnKind::PartitionKey(i),
                });
            }
        }
        for (i, n) in clustering_key.iter().enumerate() {
            if let Some((n, t, f)) = find(n) {
                columns.push(ColumnDef {
                    name: n.clone(),
                    typ: t.clone(),
                    frozen: *f,
                    kind: ColumnKind::Clustering(i),
                });
            }
        }
        let mut regular: Vec<&(String, CqlType, bool)> =
            cols.iter().filter(|c| !partition_key.contains(&c.0) && !clustering_key.contains(&c.0)).collect();
        regular.sort_by(|a, b| a.0.cmp(&b.0));
        for (n, t, f) in regular {
            columns.push(ColumnDef { name: n.clone(), typ: t.clone(), frozen: *f, kind: ColumnKind::Regular });
        }
        TableSchema {
            keyspace: keyspace.to_string(),
            name: name.to_string(),
            partition_key: (0..partition_key.len()).collect(),
            clustering_key: (partition_key.len()..partition_key.len() + clustering_key.len()).collect(),
            clustering_desc,
            columns,
            options,
            id: random_uuid(),
        }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Order-preserving key of a full or partial clustering prefix.
    pub fn clustering_sort_key(&self, values: &[Bytes]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let col = &self.columns[self.clustering_key[i]];
            col.typ.sort_key(v, self.clustering_desc[i], &mut out);
        }
        out
    }

    /// The partition key as Cassandra serializes it for hashing: the single value, or each
    /// component as `[u16 len][bytes][0]`.
    pub fn serialize_partition_key(&self, pk: &[Bytes]) -> Vec<u8> {
        if pk.len() == 1 {
            return pk[0].to_vec();
        }
        let mut out = Vec::new();
        for v in pk {
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    pub fn part_key(&self, pk: &[Bytes]) -> PartKey {
        let key = self.serialize_partition_key(pk);
        PartKey { token: murmur3_token(&key), key }
    }
}

/// Where a partition sits: by token (Murmur3, as Cassandra) then by serialized key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartKey {
    pub token: i64,
    pub key: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Liveness {
    ts: i64,
    expires_ms: Option<i64>,
}

impl Liveness {
    fn live(&self, now_ms: i64) -> bool {
        self.expires_ms.is_none_or(|e| now_ms < e)
    }
    /// Cassandra's LivenessInfo.supersedes: newer timestamp, then the longer-lived one.
    fn supersedes(&self, other: &Liveness) -> bool {
        if self.ts != other.ts {
            return self.ts > other.ts;
        }
        self.expires_ms.unwrap_or(i64::MAX) > other.expires_ms.unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone)]
struct Cell {
    ts: i64,
    /// None: a tombstone (a null was written).
    value: Option<Bytes>,
    expires_ms: Option<i64>,
    /// When a tombstone was written, for purging after gc_grace_seconds.
    deleted_ms: i64,
}

impl Cell {
    fn live_value(&self, now_ms: i64) -> Option<&Bytes> {
        match (&self.value, self.expires_ms) {
            (Some(v), None) => Some(v),
            (Some(v), Some(e)) if now_ms < e => Some(v),
            _ => None,
        }
    }
    /// Cassandra's reconciliation: newer timestamp wins; on a tie a tombstone (or expired cell)
    /// wins over a live one, then the later expiry, then the greater value.
    fn supersedes(&self, other: &Cell, now_ms: i64) -> bool {
        if self.ts != other.ts {
            return self.ts > other.ts;
        }
        let (sl, ol) = (self.live_value(now_ms).is_some(), other.live_value(now_ms).is_some());
        if sl != ol {
            return !sl;
        }
        let (se, oe) = (self.expires_ms.unwrap_or(i64::MAX), other.expires_ms.unwrap_or(i64::MAX));
        if se != oe {
            return se > oe;
        }
        self.value > other.value
    }
    /// When this cell stopped being live, if it has.
    fn dead_since(&self, now_ms: i64) -> Option<i64> {
        match (&self.value, self.expires_ms) {
            (None, _) => Some(self.deleted_ms),
            (Some(_), Some(e)) if e <= now_ms => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    ck: Vec<Bytes>,
    /// The row marker INSERT writes: keeps the row visible even when all its cells are null.
    marker: Option<Liveness>,
    /// Indexed like `TableSchema::columns`; key columns stay None.
    cells: Vec<Option<Cell>>,
}

#[derive(Debug, Clone)]
pub struct Partition {
    pk: Vec<Bytes>,
    rows: BTreeMap<Vec<u8>, Row>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub schema: Arc<TableSchema>,
    partitions: BTreeMap<PartKey, Partition>,
}

/// One upsert: the full primary key, the regular cells to write (None = null = tombstone),
/// the write timestamp (microseconds) and TTL (seconds, 0 = none).
#[derive(Debug, Clone)]
pub struct Write {
    pub pk: Vec<Bytes>,
    pub ck: Vec<Bytes>,
    pub cells: Vec<(usize, Option<Bytes>)>,
    pub ts: i64,
    pub ttl: i64,
}

/// A restriction evaluated row by row (ALLOW FILTERING).
#[derive(Debug, Clone)]
pub enum Filter {
    Cmp { col: usize, op: crate::parse::Op, value: Bytes },
    In { col: usize, values: Vec<Bytes> },
}

/// What a read covers: which partitions, which clustering slice (as sort-key bounds, in the
/// table's clustering order), in which direction, and any row filters.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// None = every partition (token order).
    pub partitions: Option<Vec<Vec<Bytes>>>,
    pub lower: Bound<Vec<u8>>,
    pub upper: Bound<Vec<u8>>,
    pub reversed: bool,
    pub filters: Vec<Filter>,
}

impl ReadPlan {
    pub fn all() -> Self {
        ReadPlan {
            partitions: None,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reversed: false,
            filters: vec![],
        }
    }
}

/// A row read: where it is (for paging) and all its column values, in schema order.
pub type ReadRow = (Position, Vec<Option<Bytes>>);

/// The position of a returned row, from which a following page resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub part: PartKey,
    pub ck: Vec<u8>,
}

impl Position {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.part.token.to_be_bytes());
        out.extend_from_slice(&(self.part.key.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.part.key);
        out.extend_from_slice(&(self.ck.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.ck);
    }

    /// Decodes what `encode` wrote; returns the position and the remaining input.
    pub fn decode(b: &[u8]) -> Option<(Position, &[u8])> {
        let token = i64::from_be_bytes(b.get(0..8)?.try_into().ok()?);
        let klen = u32::from_be_bytes(b.get(8..12)?.try_into().ok()?) as usize;
        let key = b.get(12..12usize.checked_add(klen)?)?.to_vec();
        let rest = &b[12 + klen..];
        let clen = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
        let ck = rest.get(4..4usize.checked_add(clen)?)?.to_vec();
        Some((Position { part: PartKey { token, key }, ck }, &rest[4 + clen..]))
    }
}

fn lower_max(a: Bound<Vec<u8>>, after: &[u8]) -> Bound<Vec<u8>> {
    match &a {
        Bound::Included(x) | Bound::Excluded(x) if x.as_slice() > after => a,
        _ => Bound::Excluded(after.to_vec()),
    }
}
fn upper_min(a: Bound<Vec<u8>>, before: &[u8]) -> Bound<Vec<u8>> {
    match &a {
        Bound::Included(x) | Bound::Excluded(x) if x.as_slice() < before => a,
        _ => Bound::Excluded(before.to_vec()),
    }
}
fn bounds_empty(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

impl Table {
    pub fn new(schema: TableSchema) -> Self {
        Table { schema: Arc::new(schema), partitions: BTreeMap::new() }
    }

    pub fn truncate(&mut self) {
        self.partitions.clear();
    }

    /// Applies an upsert (INSERT semantics: writes the row marker too).
    pub fn apply(&mut self, w: Write, now_ms: i64) {
        let expires_ms = (w.ttl > 0).then(|| now_ms + w.ttl * 1000);
        let ncols = self.schema.columns.len();
        let pkey = self.schema.part_key(&w.pk);
        let cks = self.schema.clustering_sort_key(&w.ck);
        let part = self.partitions.entry(pkey).or_insert_with(|| Partition { pk: w.pk.clone(), rows: BTreeMap::new() });
        let row =
            part.rows.entry(cks).or_insert_with(|| Row { ck: w.ck.clone(), marker: None, cells: vec![None; ncols] });
        let marker = Liveness { ts: w.ts, expires_ms };
        if row.marker.is_none_or(|m| marker.supersedes(&m)) {
            row.marker = Some(marker);
        }
        for (idx, value) in w.cells {
            // A tombstone never expires; TTL only applies to live values.
            let cell = Cell {
                ts: w.ts,
                expires_ms: if value.is_some() { expires_ms } else { None },
                value,
                deleted_ms: now_ms,
            };
            let slot = &mut row.cells[idx];
            match slot {
                Some(old) if !cell.supersedes(old, now_ms) => {}
                _ => *slot = Some(cell),
            }
        }
    }

    /// The full column vector of a row if it is live (marker or any cell live).
    fn live_row(&self, part: &Partition, row: &Row, now_ms: i64) -> Option<Vec<Option<Bytes>>> {
        let mut live = row.marker.is_some_and(|m| m.live(now_ms));
        let mut out: Vec<Option<Bytes>> = Vec::with_capacity(self.schema.columns.len());
        for (i, col) in self.schema.columns.iter().enumerate() {
            out.push(match col.kind {
                ColumnKind::PartitionKey(n) => part.pk.get(n).cloned(),
                ColumnKind::Clustering(n) => row.ck.get(n).cloned(),
                ColumnKind::Regular => {
                    let v = row.cells[i].as_ref().and_then(|c| c.live_value(now_ms)).cloned();
                    live |= v.is_some();
                    v
                }
            });
        }
        live.then_some(out)
    }

    /// Reads rows matching `plan`, starting after `after` (a previous page's last row), up to
    /// `max` rows. Returns the rows with their positions and whether more rows match.
    pub fn read(
        &self,
        plan: &ReadPlan,
        after: Option<&Position>,
        max: Option<usize>,
        now_ms: i64,
    ) -> (Vec<ReadRow>, bool) {
        let mut out = Vec::new();
        let parts: Vec<(&PartKey, &Partition)> = match &plan.partitions {
            None => match after {
                Some(a) => self.partitions.range(a.part.clone()..).collect(),
                None => self.partitions.iter().collect(),
            },
            Some(keys) => {
                let mut pks: Vec<PartKey> = keys.iter().map(|k| self.schema.part_key(k)).collect();
                pks.sort();
                pks.dedup();
                pks.into_iter()
                    .filter(|k| after.is_none_or(|a| *k >= a.part))
                    .filter_map(|k| self.partitions.get_key_value(&k))
                    .collect()
            }
        };
        for (pkey, part) in parts {
            let (mut lo, mut hi) = (plan.lower.clone(), plan.upper.clone());
            if let Some(a) = after.filter(|a| a.part == *pkey) {
                if plan.reversed {
                    hi = upper_min(hi, &a.ck);
                } else {
                    lo = lower_max(lo, &a.ck);
                }
            }
            if bounds_empty(&lo, &hi) {
                continue;
            }
            let range = part.rows.range((lo, hi));
            let iter: Box<dyn Iterator<Item = (&Vec<u8>, &Row)>> =
                if plan.reversed { Box::new(range.rev()) } else { Box::new(range) };
            for (ck, row) in iter {
                let Some(values) = self.live_row(part, row, now_ms) else { continue };
                if !plan.filters.iter().all(|f| self.filter_matches(f, &values)) {
                    continue;
                }
                if max.is_some_and(|m| out.len() >= m) {
                    return (out, true);
                }
                out.push((Position { part: pkey.clone(), ck: ck.clone() }, values));
            }
        }
        (out, false)
    }

    fn filter_matches(&self, f: &Filter, values: &[Option<Bytes>]) -> bool {
        use crate::parse::Op;
        match f {
            Filter::Cmp { col, op, value } => {
                let Some(v) = &values[*col] else { return false };
                let ord = self.schema.columns[*col].typ.compare(v, value);
                match op {
                    Op::Eq => ord.is_eq(),
                    Op::Lt => ord.is_lt(),
                    Op::Le => ord.is_le(),
                    Op::Gt => ord.is_gt(),
                    Op::Ge => ord.is_ge(),
                }
            }
            Filter::In { col, values: set } => {
                let Some(v) = &values[*col] else { return false };
                set.iter().any(|x| self.schema.columns[*col].typ.compare(v, x).is_eq())
            }
        }
    }

    /// Drops values of expired cells and rows dead for longer than gc_grace_seconds, so a
    /// long-running demo does not keep expired segments in memory.
    pub fn purge(&mut self, now_ms: i64) {
        let grace_ms = self.schema.options.gc_grace_seconds.max(0) * 1000;
        for part in self.partitions.values_mut() {
            part.rows.retain(|_, row| {
                let mut newest_death = i64::MIN;
                let mut live = row.marker.is_some_and(|m| m.live(now_ms));
                if let Some(m) = row.marker {
                    if let Some(e) = m.expires_ms.filter(|e| *e <= now_ms) {
                        newest_death = newest_death.max(e);
                    }
                }
                for cell in row.cells.iter_mut().flatten() {
                    match cell.dead_since(now_ms) {
                        Some(t) => {
                            newest_death = newest_death.max(t);
                            // An expired cell is a tombstone from now on: keep only its metadata.
                            if cell.value.is_some() {
                                cell.value = None;
                                cell.deleted_ms = t;
                                cell.expires_ms = None;
                            }
                        }
                        None => live = true,
                    }
                }
                live || newest_death == i64::MIN || now_ms < newest_death.saturating_add(grace_ms)
            });
        }
        self.partitions.retain(|_, p| !p.rows.is_empty());
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }
}

#[derive(Debug, Clone)]
pub struct Keyspace {
    pub name: String,
    /// Normalized: class name in full, sorted by key.
    pub replication: BTreeMap<String, String>,
    pub durable_writes: bool,
    pub tables: BTreeMap<String, Table>,
}

impl Keyspace {
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }
}

#[derive(Debug)]
pub struct Store {
    pub keyspaces: BTreeMap<String, Keyspace>,
    pub schema_version: [u8; 16],
    last_ts: i64,
}

impl Default for Store {
    fn default() -> Self {
        Store { keyspaces: BTreeMap::new(), schema_version: random_uuid(), last_ts: 0 }
    }
}

impl Store {
    /// A server-side write timestamp in microseconds, strictly increasing like Cassandra's so
    /// two writes from one client without client timestamps keep their order.
    pub fn next_timestamp(&mut self) -> i64 {
        let now = now_micros();
        self.last_ts = now.max(self.last_ts + 1);
        self.last_ts
    }

    /// Called after every schema change, as Cassandra gives each schema a new version.
    pub fn bump_schema_version(&mut self) {
        self.schema_version = random_uuid();
    }

    pub fn table(&self, ks: &str, name: &str) -> Option<&Table> {
        self.keyspaces.get(ks)?.tables.get(name)
    }

    pub fn table_mut(&mut self, ks: &str, name: &str) -> Option<&mut Table> {
        self.keyspaces.get_mut(ks)?.tables.get_mut(name)
    }

    pub fn purge(&mut self, now_ms: i64) {
        for ks in self.keyspaces.values_mut() {
            for t in ks.tables.values_mut() {
                t.purge(now_ms);
            }
        }
    }
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// A random (version 4) uuid. std's RandomState is randomly keyed per process; hashing a
/// counter and the clock through it is random enough for ids of a test fixture.
pub fn random_uuid() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = std::collections::hash_map::RandomState::new();
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_u64(n);
        h.write_i64(now_micros());
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    out[6] = (out[6] & 0x0F) | 0x40;
    out[8] = (out[8] & 0x3F) | 0x80;
    out
}

/// Cassandra's Murmur3Partitioner token of a serialized partition key (MurmurHash3 x64-128,
/// first half, with Cassandra's sign-extended tail bytes; i64::MIN maps to i64::MAX).
pub fn murmur3_token(data: &[u8]) -> i64 {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    fn fmix(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    let (mut h1, mut h2) = (0u64, 0u64);
    let blocks = data.len() / 16;
    for i in 0..blocks {
        let b = &data[i * 16..i * 16 + 16];
        let mut k1 = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
        let mut k2 = u64::from_le_bytes(b[8..16].try_into().unwrap_or([0; 8]));
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(27).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2.rotate_left(31).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }
    let tail = &data[blocks * 16..];
    let (mut k1, mut k2) = (0u64, 0u64);
    // Cassandra reads tail bytes as signed, so each is sign-extended before shifting.
    for i in (8..tail.len()).rev() {
        k2 ^= ((tail[i] as i8 as i64) << ((i - 8) * 8)) as u64;
    }
    if tail.len() > 8 {
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
    }
    for i in (0..tail.len().min(8)).rev() {
        k1 ^= ((tail[i] as i8 as i64) << (i * 8)) as u64;
    }
    if !tail.is_empty() {
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
    }
    h1 ^= data.len() as u64;
    h2 ^= data.len() as u64;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    let t = h1 as i64;
    if t == i64::MIN {
        i64::MAX
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_cassandra() {
        // Values computed by Cassandra (and the scylla driver's tests) for these keys.
        assert_eq!(murmur3_token(b"test"), -6017608668500074083);
        assert_eq!(murmur3_token(b"xd"), 4507812186440344727);
        assert_eq!(murmur3_token(b"primary_key"), -1632642444691073360);
        assert_eq!(murmur3_token("kremówki".as_bytes()), 4354931215268080151);
    }

    #[test]
    fn position_roundtrip() {
        let p = Position { part: PartKey { token: -5, key: vec![1, 2, 3] }, ck: vec![9, 8] };
        let mut b = Vec::new();
        p.encode(&mut b);
        b.extend_from_slice(&[7, 7]);
        let (q, rest) = Position::decode(&b).unwrap();
        assert_eq!(p, q);
        assert_eq!(rest, &[7, 7]);
        assert!(Position::decode(&b[..5]).is_none());
        assert!(Position::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]).is_none());
    }
}
