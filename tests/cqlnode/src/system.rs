//! The `system` and `system_schema` keyspaces, as a single-node Cassandra 4.0 shows them.
//!
//! They are generated on every read from the node's identity and the current schema, as
//! ordinary [`Table`]s, so the same SELECT engine (projection, WHERE, paging) serves them.
//! Column names and types follow Cassandra 4.0; the scylla driver type-checks the ones it reads
//! (e.g. `rpc_address inet`, `tokens set<text>`, `replication frozen<map<text, text>>`,
//! `position int`).

use crate::parse::parse_type;
use crate::store::{Store, Table, TableOptions, TableSchema, Write};
use crate::types::*;
use bytes::Bytes;
use std::net::IpAddr;

/// Facts about this node that system.local reports.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub host_id: [u8; 16],
    pub cluster_name: String,
    pub rpc_port: u16,
    /// Seconds since the epoch at start; Cassandra's gossip generation.
    pub generation: i32,
}

pub const RELEASE_VERSION: &str = "4.0.11";
pub const CQL_VERSION: &str = "3.4.5";
pub const PARTITIONER: &str = "org.apache.cassandra.dht.Murmur3Partitioner";
pub const DATA_CENTER: &str = "datacenter1";
pub const RACK: &str = "rack1";

pub fn is_system_keyspace(ks: &str) -> bool {
    ks == "system" || ks == "system_schema"
}

type Def = (&'static str, &'static [&'static str], &'static [&'static str], &'static [(&'static str, &'static str)]);

const MAP_TT: &str = "frozen<map<text, text>>";
const LIST_T: &str = "frozen<list<text>>";

/// (table, partition key, clustering key, all columns with types).
const SYSTEM: &[Def] = &[
    (
        "local",
        &["key"],
        &[],
        &[
            ("key", "text"),
            ("bootstrapped", "text"),
            ("broadcast_address", "inet"),
            ("broadcast_port", "int"),
            ("cluster_name", "text"),
            ("cql_version", "text"),
            ("data_center", "text"),
            ("gossip_generation", "int"),
            ("host_id", "uuid"),
            ("listen_address", "inet"),
            ("listen_port", "int"),
            ("native_protocol_version", "text"),
            ("partitioner", "text"),
            ("rack", "text"),
            ("release_version", "text"),
            ("rpc_address", "inet"),
            ("rpc_port", "int"),
            ("schema_version", "uuid"),
            ("tokens", "set<text>"),
            ("truncated_at", "map<uuid, blob>"),
        ],
    ),
    (
        "peers",
        &["peer"],
        &[],
        &[
            ("peer", "inet"),
            ("data_center", "text"),
            ("host_id", "uuid"),
            ("preferred_ip", "inet"),
            ("rack", "text"),
            ("release_version", "text"),
            ("rpc_address", "inet"),
            ("schema_version", "uuid"),
            ("tokens", "set<text>"),
        ],
    ),
];

const TABLE_OPTION_COLUMNS: &[(&str, &str)] = &[
    ("additional_write_policy", "text"),
    ("bloom_filter_fp_chance", "double"),
    ("caching", MAP_TT),
    ("cdc", "boolean"),
    ("comment", "text"),
    ("compaction", MAP_TT),
    ("compression", MAP_TT),
    ("crc_check_chance", "double"),
    ("default_time_to_live", "int"),
    ("extensions", "frozen<map<text, blob>>"),
    ("gc_grace_seconds", "int"),
    ("max_index_interval", "int"),
    ("memtable_flush_period_in_ms", "int"),
    ("min_index_interval", "int"),
    ("read_repair", "text"),
    ("speculative_retry", "text"),
];

const SYSTEM_SCHEMA: &[Def] = &[
    (
        "keyspaces",
        &["keyspace_name"],
        &[],
        &[("keyspace_name", "text"), ("durable_writes", "boolean"), ("replication", MAP_TT)],
    ),
    (
        "tables",
        &["keyspace_name"],
        &["table_name"],
        &[("keyspace_name", "text"), ("table_name", "text"), ("flags", "frozen<set<text>>"), ("id", "uuid")],
    ),
    (
        "columns",
        &["keyspace_name"],
        &["table_name", "column_name"],
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("column_name", "text"),
            ("clustering_order", "text"),
            ("column_name_bytes", "blob"),
            ("kind", "text"),
            ("position", "int"),
            ("type", "text"),
        ],
    ),
    (
        "views",
        &["keyspace_name"],
        &["view_name"],
        &[
            ("keyspace_name", "text"),
            ("view_name", "text"),
            ("base_table_id", "uuid"),
            ("base_table_name", "text"),
            ("id", "uuid"),
            ("include_all_columns", "boolean"),
            ("where_clause", "text"),
        ],
    ),
    (
        "types",
        &["keyspace_name"],
        &["type_name"],
        &[("keyspace_name", "text"), ("type_name", "text"), ("field_names", LIST_T), ("field_types", LIST_T)],
    ),
    (
        "functions",
        &["keyspace_name"],
        &["function_name", "argument_types"],
        &[
            ("keyspace_name", "text"),
            ("function_name", "text"),
            ("argument_types", LIST_T),
            ("argument_names", LIST_T),
            ("body", "text"),
            ("called_on_null_input", "boolean"),
            ("language", "text"),
            ("return_type", "text"),
        ],
    ),
    (
        "aggregates",
        &["keyspace_name"],
        &["aggregate_name", "argument_types"],
        &[
            ("keyspace_name", "text"),
            ("aggregate_name", "text"),
            ("argument_types", LIST_T),
            ("final_func", "text"),
            ("initcond", "text"),
            ("return_type", "text"),
            ("state_func", "text"),
            ("state_type", "text"),
        ],
    ),
    (
        "indexes",
        &["keyspace_name"],
        &["table_name", "index_name"],
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("index_name", "text"),
            ("kind", "text"),
            ("options", MAP_TT),
        ],
    ),
    (
        "triggers",
        &["keyspace_name"],
        &["table_name", "trigger_name"],
        &[("keyspace_name", "text"), ("table_name", "text"), ("trigger_name", "text"), ("options", MAP_TT)],
    ),
    (
        "dropped_columns",
        &["keyspace_name"],
        &["table_name", "column_name"],
        &[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("column_name", "text"),
            ("dropped_time", "timestamp"),
            ("kind", "text"),
            ("type", "text"),
        ],
    ),
];

fn defs(ks: &str) -> &'static [Def] {
    match ks {
        "system" => SYSTEM,
        "system_schema" => SYSTEM_SCHEMA,
        _ => &[],
    }
}

/// Names of the tables of a system keyspace.
pub fn table_names(ks: &str) -> Vec<&'static str> {
    defs(ks).iter().map(|d| d.0).collect()
}

/// The schema of a system table, or None if there is no such table.
pub fn schema(ks: &str, name: &str) -> Option<TableSchema> {
    let &(_, pk, ck, cols) = defs(ks).iter().find(|d| d.0 == name)?;
    let mut columns: Vec<(String, CqlType, bool)> = Vec::new();
    let mut add = |n: &str, t: &str| {
        // The definitions above are constants; a bad one is a bug caught by the unit tests.
        if let Ok((typ, frozen)) = parse_type(t) {
            columns.push((n.to_string(), typ, frozen));
        }
    };
    for (n, t) in cols {
        add(n, t);
    }
    if ks == "system_schema" && name == "tables" {
        for (n, t) in TABLE_OPTION_COLUMNS {
            add(n, t);
        }
    }
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let options = TableOptions { gc_grace_seconds: if ks == "system" { 0 } else { 604_800 }, ..Default::default() };
    let mut s = TableSchema::build(ks, name, &columns, &own(pk), &own(ck), vec![false; ck.len()], options);
    s.id = name_uuid(&format!("{ks}.{name}"));
    Some(s)
}

/// A stable id for a system table (Cassandra derives them from the names too).
fn name_uuid(s: &str) -> [u8; 16] {
    let a = crate::store::murmur3_token(s.as_bytes()).to_be_bytes();
    let b = crate::store::murmur3_token(format!("{s}#").as_bytes()).to_be_bytes();
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&a);
    u[8..].copy_from_slice(&b);
    u[6] = (u[6] & 0x0F) | 0x30;
    u[8] = (u[8] & 0x3F) | 0x80;
    u
}

fn put(t: &mut Table, values: Vec<(&str, Option<Bytes>)>) {
    let s = t.schema.clone();
    let get = |name: &str| values.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.clone());
    let pk: Vec<Bytes> = s.partition_key.iter().map(|&i| get(&s.columns[i].name).unwrap_or_default()).collect();
    let ck: Vec<Bytes> = s.clustering_key.iter().map(|&i| get(&s.columns[i].name).unwrap_or_default()).collect();
    let cells = values
        .iter()
        .filter_map(|(n, v)| {
            let i = s.column(n)?;
            (s.columns[i].kind == crate::store::ColumnKind::Regular && v.is_some()).then(|| (i, v.clone()))
        })
        .collect();
    t.apply(Write { pk, ck, cells, ts: 1, ttl: 0 }, 0);
}

/// Builds the current contents of a system table. `local_ip` is the address the client
/// reached this node on (reported as rpc_address so drivers recognise their contact point).
pub fn snapshot(store: &Store, me: &NodeIdentity, local_ip: IpAddr, ks: &str, name: &str) -> Option<Table> {
    let mut t = Table::new(schema(ks, name)?);
    match (ks, name) {
        ("system", "local") => put(
            &mut t,
            vec![
                ("key", enc_text("local")),
                ("bootstrapped", enc_text("COMPLETED")),
                ("broadcast_address", enc_inet(local_ip)),
                ("broadcast_port", enc_int(7000)),
                ("cluster_name", enc_text(&me.cluster_name)),
                ("cql_version", enc_text(CQL_VERSION)),
                ("data_center", enc_text(DATA_CENTER)),
                ("gossip_generation", enc_int(me.generation)),
                ("host_id", enc_uuid(me.host_id)),
                ("listen_address", enc_inet(local_ip)),
                ("listen_port", enc_int(7000)),
                ("native_protocol_version", enc_text("4")),
                ("partitioner", enc_text(PARTITIONER)),
                ("rack", enc_text(RACK)),
                ("release_version", enc_text(RELEASE_VERSION)),
                ("rpc_address", enc_inet(local_ip)),
                ("rpc_port", enc_int(me.rpc_port as i32)),
                ("schema_version", enc_uuid(store.schema_version)),
                // One node owns the whole ring whatever its token; Murmur3 tokens are i64 text.
                ("tokens", enc_text_list(&["0"])),
            ],
        ),
        ("system_schema", "keyspaces") => {
            for ks in ["system", "system_schema"] {
                put(
                    &mut t,
                    vec![
                        ("keyspace_name", enc_text(ks)),
                        ("durable_writes", enc_bool(true)),
                        ("replication", enc_text_map([("class", "org.apache.cassandra.locator.LocalStrategy")])),
                    ],
                );
            }
            for k in store.keyspaces.values() {
                put(
                    &mut t,
                    vec![
                        ("keyspace_name", enc_text(&k.name)),
                        ("durable_writes", enc_bool(k.durable_writes)),
                        ("replication", enc_text_map(k.replication.iter().map(|(a, b)| (a.as_str(), b.as_str())))),
                    ],
                );
            }
        }
        ("system_schema", "tables") => {
            for s in all_schemas(store) {
                let mut row = vec![
                    ("keyspace_name", enc_text(&s.keyspace)),
                    ("table_name", enc_text(&s.name)),
                    ("flags", enc_text_list(&["compound"])),
                    ("id", enc_uuid(s.id)),
                ];
                for (opt, _) in TABLE_OPTION_COLUMNS {
                    let v = s.options.typed.get(*opt).cloned().or_else(|| default_table_option(opt, &s.options));
                    row.push((opt, v));
                }
                put(&mut t, row);
            }
        }
        ("system_schema", "columns") => {
            for s in all_schemas(store) {
                for c in &s.columns {
                    let (kind, pos, order) = match c.kind {
                        crate::store::ColumnKind::PartitionKey(i) => ("partition_key", i as i32, "none"),
                        crate::store::ColumnKind::Clustering(i) => {
                            ("clustering", i as i32, if s.clustering_desc[i] { "desc" } else { "asc" })
                        }
                        crate::store::ColumnKind::Regular => ("regular", -1, "none"),
                    };
                    put(
                        &mut t,
                        vec![
                            ("keyspace_name", enc_text(&s.keyspace)),
                            ("table_name", enc_text(&s.name)),
                            ("column_name", enc_text(&c.name)),
                            ("clustering_order", enc_text(order)),
                            ("column_name_bytes", Some(Bytes::copy_from_slice(c.name.as_bytes()))),
                            ("kind", enc_text(kind)),
                            ("position", enc_int(pos)),
                            ("type", enc_text(&c.type_name())),
                        ],
                    );
                }
            }
        }
        // system.peers (single node) and the schema tables for objects this node cannot create.
        _ => {}
    }
    Some(t)
}

/// Every table's schema: the system ones, then the user ones.
fn all_schemas(store: &Store) -> Vec<std::sync::Arc<TableSchema>> {
    let mut out = Vec::new();
    for ks in ["system", "system_schema"] {
        for n in table_names(ks) {
            if let Some(s) = schema(ks, n) {
                out.push(std::sync::Arc::new(s));
            }
        }
    }
    for k in store.keyspaces.values() {
        for t in k.tables.values() {
            out.push(t.schema.clone());
        }
    }
    out
}

/// Cassandra 4.0's defaults for table options not given at creation.
fn default_table_option(name: &str, o: &TableOptions) -> Option<Bytes> {
    match name {
        "additional_write_policy" | "speculative_retry" => enc_text("99p"),
        "bloom_filter_fp_chance" => enc_double(0.01),
        "caching" => enc_text_map([("keys", "ALL"), ("rows_per_partition", "NONE")]),
        "cdc" => enc_bool(false),
        "comment" => enc_text(""),
        "compaction" => enc_text_map([
            ("class", "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy"),
            ("max_threshold", "32"),
            ("min_threshold", "4"),
        ]),
        "compression" => {
            enc_text_map([("chunk_length_in_kb", "16"), ("class", "org.apache.cassandra.io.compress.LZ4Compressor")])
        }
        "crc_check_chance" => enc_double(1.0),
        "default_time_to_live" => enc_int(o.default_ttl as i32),
        "extensions" => enc_text_map([]),
        "gc_grace_seconds" => enc_int(o.gc_grace_seconds as i32),
        "max_index_interval" => enc_int(2048),
        "memtable_flush_period_in_ms" => enc_int(0),
        "min_index_interval" => enc_int(128),
        "read_repair" => enc_text("BLOCKING"),
        _ => None,
    }
}

/// The type of a table option that has a column in system_schema.tables.
pub fn table_option_type(name: &str) -> Option<CqlType> {
    let (_, t) = TABLE_OPTION_COLUMNS.iter().find(|(n, _)| *n == name)?;
    parse_type(t).ok().map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_parses() {
        for ks in ["system", "system_schema"] {
            for d in defs(ks) {
                for (n, t) in d.3 {
                    assert!(parse_type(t).is_ok(), "{ks}.{}.{n}: {t}", d.0);
                }
                let s = schema(ks, d.0).unwrap();
                assert_eq!(
                    s.columns.len(),
                    d.3.len() + if d.0 == "tables" && ks == "system_schema" { TABLE_OPTION_COLUMNS.len() } else { 0 }
                );
            }
        }
        for (n, t) in TABLE_OPTION_COLUMNS {
            assert!(parse_type(t).is_ok(), "{n}");
        }
    }
}
