//! Executes parsed statements against the store with Cassandra's rules: name resolution,
//! bind-value checking, key requirements, TTL and timestamp attributes, SELECT planning
//! (single-partition slices, scans, ALLOW FILTERING), ORDER BY, LIMIT and paging.
//! Also computes the metadata a PREPARED result carries.

use crate::parse::{
    CreateTable, InValues, Insert, Op, OptValue, Parsed, QualName, Relation, Select, Selection, Statement, Term,
};
use crate::store::{
    ColumnKind, Filter, Keyspace, Position, ReadPlan, Store, Table, TableOptions, TableSchema, Write, MAX_TTL,
};
use crate::system::{self, NodeIdentity};
use crate::types::{CqlType, Literal};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::Arc;

/// Error codes of the native protocol (section 9 of the v4 spec).
pub mod code {
    pub const SERVER_ERROR: i32 = 0x0000;
    pub const PROTOCOL_ERROR: i32 = 0x000A;
    pub const SYNTAX_ERROR: i32 = 0x2000;
    pub const UNAUTHORIZED: i32 = 0x2100;
    pub const INVALID: i32 = 0x2200;
    pub const CONFIG_ERROR: i32 = 0x2300;
    pub const ALREADY_EXISTS: i32 = 0x2400;
    pub const UNPREPARED: i32 = 0x2500;
}

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorExtra {
    None,
    AlreadyExists { keyspace: String, table: String },
    Unprepared(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CqlError {
    pub code: i32,
    pub message: String,
    pub extra: ErrorExtra,
}

impl CqlError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CqlError { code, message: message.into(), extra: ErrorExtra::None }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INVALID, message)
    }
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(code::PROTOCOL_ERROR, message)
    }
    fn unauthorized(ks: &str) -> Self {
        Self::new(code::UNAUTHORIZED, format!("{ks} keyspace is not user-modifiable."))
    }
}

impl From<crate::parse::ParseError> for CqlError {
    fn from(e: crate::parse::ParseError) -> Self {
        match e {
            crate::parse::ParseError::Syntax(m) => CqlError::new(code::SYNTAX_ERROR, format!("line 1: {m}")),
            crate::parse::ParseError::Unsupported(m) => CqlError::invalid(m),
        }
    }
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, CqlError> {
    Err(CqlError::invalid(msg))
}

/// A bound value: the protocol distinguishes null from "unset" (not bound at all).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Unset,
    Set(Bytes),
}

/// Per-request context.
pub struct Env<'a> {
    /// The connection's keyspace (USE), or for a prepared statement the one at PREPARE time.
    pub keyspace: Option<&'a str>,
    /// The address the client reached us on, reported in system.local.
    pub local_ip: IpAddr,
    pub me: &'a NodeIdentity,
}

#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Rows per page; None = unpaged.
    pub page_size: Option<usize>,
    pub paging_state: Option<Vec<u8>>,
    /// Client-supplied default write timestamp (microseconds).
    pub timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColSpec {
    pub name: String,
    pub typ: CqlType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultMeta {
    pub keyspace: String,
    pub table: String,
    pub columns: Vec<ColSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub meta: ResultMeta,
    pub rows: Vec<Vec<Option<Bytes>>>,
    pub paging_state: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Void,
    Rows(Rows),
    SetKeyspace(String),
    SchemaChange { change: &'static str, target: &'static str, keyspace: String, table: Option<String> },
}

/// What a PREPARED result describes: the bind variables (with the partition key's marker
/// indexes, used by drivers for token-aware routing) and the result columns.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepInfo {
    pub bind: ResultMeta,
    pub pk_indexes: Vec<u16>,
    pub result: Option<ResultMeta>,
}

fn keyspace_of(q: &QualName, env: &Env) -> Result<String, CqlError> {
    match (&q.keyspace, env.keyspace) {
        (Some(k), _) => Ok(k.clone()),
        (None, Some(k)) => Ok(k.to_string()),
        (None, None) => {
            invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
        }
    }
}

/// A readable table: a user table in the store or a generated system table.
enum TableRef<'a> {
    User(&'a Table),
    System(Table),
}

impl std::ops::Deref for TableRef<'_> {
    type Target = Table;
    fn deref(&self) -> &Table {
        match self {
            TableRef::User(t) => t,
            TableRef::System(t) => t,
        }
    }
}

fn resolve<'a>(store: &'a Store, env: &Env, q: &QualName) -> Result<TableRef<'a>, CqlError> {
    let ks = keyspace_of(q, env)?;
    if system::is_system_keyspace(&ks) {
        return system::snapshot(store, env.me, env.local_ip, &ks, &q.name)
            .map(TableRef::System)
            .ok_or_else(|| CqlError::invalid(format!("unconfigured table {}", q.name)));
    }
    let k = store.keyspaces.get(&ks).ok_or_else(|| CqlError::invalid(format!("Keyspace {ks} does not exist")))?;
    k.tables.get(&q.name).map(TableRef::User).ok_or_else(|| CqlError::invalid(format!("unconfigured table {}", q.name)))
}

fn resolve_schema(store: &Store, env: &Env, q: &QualName) -> Result<Arc<TableSchema>, CqlError> {
    let ks = keyspace_of(q, env)?;
    if system::is_system_keyspace(&ks) {
        return system::schema(&ks, &q.name)
            .map(Arc::new)
            .ok_or_else(|| CqlError::invalid(format!("unconfigured table {}", q.name)));
    }
    Ok(resolve(store, env, q)?.schema.clone())
}

fn column<'s>(s: &'s TableSchema, name: &str) -> Result<(usize, &'s crate::store::ColumnDef), CqlError> {
    s.column(name).map(|i| (i, &s.columns[i])).ok_or_else(|| CqlError::invalid(format!("Undefined column name {name}")))
}

/// Binds a term to a value of `typ`: converts a literal, or takes and checks a bound value.
fn bind(term: &Term, typ: &CqlType, values: &[Value], what: &str) -> Result<Value, CqlError> {
    match term {
        Term::Lit(l) => match typ.from_literal(l) {
            Ok(Some(b)) => Ok(Value::Set(b)),
            Ok(None) => Ok(Value::Null),
            Err(e) => invalid(format!("{e} (for {what})")),
        },
        Term::Marker(i) => {
            let v = values.get(*i).ok_or_else(|| CqlError::invalid("not enough bound values"))?;
            if let Value::Set(b) = v {
                if let Err(e) = typ.validate(b) {
                    return invalid(format!("Invalid value for {what}: {e}"));
                }
            }
            Ok(v.clone())
        }
    }
}

/// A key column's value: must be set and non-null.
fn key_value(v: Value, col: &str) -> Result<Bytes, CqlError> {
    match v {
        Value::Set(b) => Ok(b),
        Value::Null => invalid(format!("Invalid null value in condition for column {col}")),
        Value::Unset => invalid(format!("Invalid unset value for column {col}")),
    }
}

fn int_of(b: &Bytes, what: &str) -> Result<i64, CqlError> {
    match b.len() {
        4 => Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64),
        8 => Ok(i64::from_be_bytes(b[..8].try_into().map_err(|_| CqlError::invalid("bad integer"))?)),
        _ => invalid(format!("Invalid empty value for {what}")),
    }
}

/// Small values are copied out of the request frame so a stored cell does not keep a whole
/// (possibly large) frame buffer alive; big ones are kept as slices, they are the frame anyway.
fn own(b: Bytes) -> Bytes {
    if b.len() < 4096 {
        Bytes::copy_from_slice(&b)
    } else {
        b
    }
}

pub fn check_marker_count(parsed: &Parsed, values: &[Value]) -> Result<(), CqlError> {
    if parsed.markers != values.len() {
        return invalid(format!(
            "There were {} markers(?) in CQL but {} bound variables",
            parsed.markers,
            values.len()
        ));
    }
    Ok(())
}

/// Executes one statement. `values` must match the statement's markers.
pub fn execute(
    store: &mut Store,
    env: &Env,
    parsed: &Parsed,
    values: &[Value],
    p: &Params,
    now_ms: i64,
) -> Result<Outcome, CqlError> {
    check_marker_count(parsed, values)?;
    match &parsed.stmt {
        Statement::Use(ks) => {
            if system::is_system_keyspace(ks) || store.keyspaces.contains_key(ks) {
                Ok(Outcome::SetKeyspace(ks.clone()))
            } else {
                invalid(format!("Keyspace '{ks}' does not exist"))
            }
        }
        Statement::Select(sel) => select(store, env, sel, values, p, now_ms).map(Outcome::Rows),
        Statement::Insert(ins) => {
            let ts = match p.timestamp {
                Some(t) => t,
                None => store.next_timestamp(),
            };
            let (ks, name, w) = insert_write(store, env, ins, values, ts)?;
            if let Some(t) = store.table_mut(&ks, &name) {
                t.apply(w, now_ms);
            }
            Ok(Outcome::Void)
        }
        Statement::Batch { inserts, timestamp } => {
            let ts = batch_timestamp(store, timestamp.as_ref(), values, p.timestamp)?;
            let mut writes = Vec::new();
            for ins in inserts {
                writes.push(insert_write(store, env, ins, values, ts)?);
            }
            apply_all(store, writes, now_ms);
            Ok(Outcome::Void)
        }
        Statement::CreateKeyspace { name, if_not_exists, options } => {
            create_keyspace(store, name, *if_not_exists, options)
        }
        Statement::CreateTable(ct) => create_table(store, env, ct),
        Statement::DropKeyspace { name, if_exists } => {
            if system::is_system_keyspace(name) {
                return Err(CqlError::unauthorized(name));
            }
            if store.keyspaces.remove(name).is_none() {
                return if *if_exists {
                    Ok(Outcome::Void)
                } else {
                    Err(CqlError::new(code::CONFIG_ERROR, format!("Cannot drop non existing keyspace '{name}'.")))
                };
            }
            store.bump_schema_version();
            Ok(Outcome::SchemaChange { change: "DROPPED", target: "KEYSPACE", keyspace: name.clone(), table: None })
        }
        Statement::DropTable { table, if_exists } => {
            let ks = keyspace_of(table, env)?;
            if system::is_system_keyspace(&ks) {
                return Err(CqlError::unauthorized(&ks));
            }
            let Some(k) = store.keyspaces.get_mut(&ks) else {
                return if *if_exists { Ok(Outcome::Void) } else { invalid(format!("Keyspace '{ks}' doesn't exist")) };
            };
            if k.tables.remove(&table.name).is_none() {
                return if *if_exists {
                    Ok(Outcome::Void)
                } else {
                    invalid(format!("Table '{ks}.{}' doesn't exist", table.name))
                };
            }
            store.bump_schema_version();
            Ok(Outcome::SchemaChange {
                change: "DROPPED",
                target: "TABLE",
                keyspace: ks,
                table: Some(table.name.clone()),
            })
        }
        Statement::Truncate(table) => {
            let ks = keyspace_of(table, env)?;
            if system::is_system_keyspace(&ks) {
                return Err(CqlError::unauthorized(&ks));
            }
            resolve(store, env, table)?;
            if let Some(t) = store.table_mut(&ks, &table.name) {
                t.truncate();
            }
            Ok(Outcome::Void)
        }
    }
}

/// One statement of a BATCH frame, with the keyspace it was prepared (or sent) under.
pub struct BatchItem<'a> {
    pub parsed: &'a Parsed,
    pub keyspace: Option<String>,
    pub values: Vec<Value>,
}

/// Executes a BATCH: every statement must be an INSERT; all are checked before any is
/// applied, and all share one write timestamp, as in Cassandra.
pub fn execute_batch(
    store: &mut Store,
    env: &Env,
    items: &[BatchItem],
    timestamp: Option<i64>,
    now_ms: i64,
) -> Result<Outcome, CqlError> {
    let ts = match timestamp {
        Some(t) => t,
        None => store.next_timestamp(),
    };
    let mut writes = Vec::new();
    for it in items {
        check_marker_count(it.parsed, &it.values)?;
        let Statement::Insert(ins) = &it.parsed.stmt else {
            return invalid("Invalid statement in batch: only INSERT statements are supported by hls-dvr-cqlnode (UPDATE and DELETE are not implemented)");
        };
        let e = Env { keyspace: it.keyspace.as_deref(), local_ip: env.local_ip, me: env.me };
        writes.push(insert_write(store, &e, ins, &it.values, ts)?);
    }
    apply_all(store, writes, now_ms);
    Ok(Outcome::Void)
}

fn apply_all(store: &mut Store, writes: Vec<(String, String, Write)>, now_ms: i64) {
    for (ks, name, w) in writes {
        if let Some(t) = store.table_mut(&ks, &name) {
            t.apply(w, now_ms);
        }
    }
}

fn batch_timestamp(
    store: &mut Store,
    t: Option<&Term>,
    values: &[Value],
    client: Option<i64>,
) -> Result<i64, CqlError> {
    if let Some(t) = t {
        match bind(t, &CqlType::BigInt, values, "[timestamp]")? {
            Value::Set(b) => return int_of(&b, "timestamp"),
            Value::Null => return invalid("Invalid null value of timestamp"),
            Value::Unset => {}
        }
    }
    Ok(client.unwrap_or_else(|| store.next_timestamp()))
}

/// Checks an INSERT and turns it into a write (not applied yet).
fn insert_write(
    store: &Store,
    env: &Env,
    ins: &Insert,
    values: &[Value],
    default_ts: i64,
) -> Result<(String, String, Write), CqlError> {
    let ks = keyspace_of(&ins.table, env)?;
    if system::is_system_keyspace(&ks) {
        return Err(CqlError::unauthorized(&ks));
    }
    let table = resolve(store, env, &ins.table)?;
    let s = &table.schema;
    let mut bound: Vec<Option<Value>> = vec![None; s.columns.len()];
    for (name, term) in ins.columns.iter().zip(&ins.values) {
        let (i, col) = column(s, name)?;
        if bound[i].is_some() {
            return invalid("The column names contains duplicates");
        }
        bound[i] = Some(bind(term, &col.typ, values, name)?);
    }
    let missing = |idx: &[usize]| {
        idx.iter().filter(|&&i| bound[i].is_none()).map(|&i| s.columns[i].name.clone()).collect::<Vec<_>>()
    };
    let m = missing(&s.partition_key);
    if !m.is_empty() {
        return invalid(format!("Some partition key parts are missing: {}", m.join(", ")));
    }
    let m = missing(&s.clustering_key);
    if !m.is_empty() {
        return invalid(format!("Some clustering keys are missing: {}", m.join(", ")));
    }
    let mut key = |i: usize| -> Result<Bytes, CqlError> {
        let v = key_value(bound[i].take().unwrap_or(Value::Unset), &s.columns[i].name)?;
        if v.len() > 65535 {
            return invalid(format!("Key length of {} is longer than maximum of 65535", v.len()));
        }
        Ok(own(v))
    };
    let pk = s.partition_key.iter().map(|&i| key(i)).collect::<Result<Vec<_>, _>>()?;
    let ck = s.clustering_key.iter().map(|&i| key(i)).collect::<Result<Vec<_>, _>>()?;
    if pk.len() == 1 && pk[0].is_empty() {
        return invalid("Key may not be empty");
    }
    let mut cells = Vec::new();
    for (i, v) in bound.into_iter().enumerate() {
        match v {
            Some(Value::Set(b)) => cells.push((i, Some(own(b)))),
            Some(Value::Null) => cells.push((i, None)),
            Some(Value::Unset) | None => {}
        }
    }
    // Cassandra's Attributes.getTimeToLive: unset = table default, null = no TTL.
    let default_ttl = s.options.default_ttl;
    let ttl = match &ins.ttl {
        None => default_ttl,
        Some(t) => match bind(t, &CqlType::Int, values, "[ttl]")? {
            Value::Null => 0,
            Value::Unset => default_ttl,
            Value::Set(b) => {
                let n = int_of(&b, "ttl")?;
                if n < 0 {
                    return invalid(format!("A TTL must be greater or equal to 0, but was {n}"));
                }
                if n > MAX_TTL {
                    return invalid(format!("ttl is too large. requested ({n}) maximum ({MAX_TTL})"));
                }
                n
            }
        },
    };
    let ts = match &ins.timestamp {
        None => default_ts,
        Some(t) => match bind(t, &CqlType::BigInt, values, "[timestamp]")? {
            Value::Null => return invalid("Invalid null value of timestamp"),
            Value::Unset => default_ts,
            Value::Set(b) => int_of(&b, "timestamp")?,
        },
    };
    Ok((ks, ins.table.name.clone(), Write { pk, ck, cells, ts, ttl }))
}

#[derive(Default)]
struct Restriction {
    eq: Option<Bytes>,
    ins: Option<Vec<Bytes>>,
    lower: Option<(Bytes, bool)>,
    upper: Option<(Bytes, bool)>,
}

/// Splits a serialized list into its elements (for `IN ?`).
fn list_elements(b: &[u8]) -> Result<Vec<Bytes>, CqlError> {
    let err = || CqlError::invalid("malformed list value for IN");
    let n = i32::from_be_bytes(b.get(0..4).ok_or_else(err)?.try_into().map_err(|_| err())?);
    let mut rest = &b[4..];
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        let len = i32::from_be_bytes(rest.get(0..4).ok_or_else(err)?.try_into().map_err(|_| err())?);
        let len = usize::try_from(len).map_err(|_| CqlError::invalid("null in IN list"))?;
        out.push(Bytes::copy_from_slice(rest.get(4..4 + len).ok_or_else(err)?));
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// The smallest byte string greater than every string starting with `k` (None: no such).
fn prefix_end(k: &[u8]) -> Option<Vec<u8>> {
    let mut v = k.to_vec();
    while let Some(last) = v.pop() {
        if last != 0xFF {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

const FILTERING_MSG: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

/// Most bytes of values one result page carries (see `select`).
const PAGE_BYTES: usize = 128 << 20;

/// Magic first byte of our paging states, so foreign or corrupted ones are recognised.
const PAGING_MAGIC: u8 = 0xC1;

fn select(store: &Store, env: &Env, sel: &Select, values: &[Value], p: &Params, now_ms: i64) -> Result<Rows, CqlError> {
    let table = resolve(store, env, &sel.table)?;
    let s = table.schema.clone();
    let meta = select_meta(&s, &sel.selection)?;

    // Gather restrictions per column, rejecting contradictory combinations as Cassandra does.
    let mut restr: BTreeMap<usize, Restriction> = BTreeMap::new();
    for rel in &sel.relations {
        let name = match rel {
            Relation::Cmp { col, .. } | Relation::In { col, .. } => col,
        };
        let (i, col) = column(&s, name)?;
        let r = restr.entry(i).or_default();
        let has_eq = r.eq.is_some() || r.ins.is_some();
        match rel {
            Relation::Cmp { op, value, .. } => {
                let v = key_value(bind(value, &col.typ, values, name)?, name)?;
                match op {
                    Op::Eq => {
                        if has_eq || r.lower.is_some() || r.upper.is_some() {
                            return invalid(format!(
                                "{name} cannot be restricted by more than one relation if it includes an Equal"
                            ));
                        }
                        r.eq = Some(v);
                    }
                    Op::Gt | Op::Ge => {
                        if has_eq {
                            return invalid(format!(
                                "{name} cannot be restricted by more than one relation if it includes an Equal"
                            ));
                        }
                        if r.lower.replace((v, *op == Op::Ge)).is_some() {
                            return invalid(format!(
                                "More than one restriction was found for the start bound on {name}"
                            ));
                        }
                    }
                    Op::Lt | Op::Le => {
                        if has_eq {
                            return invalid(format!(
                                "{name} cannot be restricted by more than one relation if it includes an Equal"
                            ));
                        }
                        if r.upper.replace((v, *op == Op::Le)).is_some() {
                            return invalid(format!("More than one restriction was found for the end bound on {name}"));
                        }
                    }
                }
            }
            Relation::In { values: iv, .. } => {
                if has_eq || r.lower.is_some() || r.upper.is_some() {
                    return invalid(format!(
                        "{name} cannot be restricted by more than one relation if it includes a IN"
                    ));
                }
                let list = match iv {
                    InValues::List(terms) => terms
                        .iter()
                        .map(|t| key_value(bind(t, &col.typ, values, name)?, name))
                        .collect::<Result<Vec<_>, _>>()?,
                    InValues::Marker(m) => {
                        let lt = CqlType::List(Box::new(col.typ.clone()));
                        match bind(&Term::Marker(*m), &lt, values, name)? {
                            Value::Set(b) => list_elements(&b)?,
                            Value::Null => return invalid(format!("Invalid null value for IN restriction on {name}")),
                            Value::Unset => return invalid(format!("Invalid unset value for column {name}")),
                        }
                    }
                };
                r.ins = Some(list);
            }
        }
    }

    let mut filters = Vec::new();
    let mut needs_filtering = false;
    let push_filters = |i: usize, r: &Restriction, filters: &mut Vec<Filter>| {
        if let Some(v) = &r.eq {
            filters.push(Filter::Cmp { col: i, op: Op::Eq, value: v.clone() });
        }
        if let Some(v) = &r.ins {
            filters.push(Filter::In { col: i, values: v.clone() });
        }
        if let Some((v, inc)) = &r.lower {
            filters.push(Filter::Cmp { col: i, op: if *inc { Op::Ge } else { Op::Gt }, value: v.clone() });
        }
        if let Some((v, inc)) = &r.upper {
            filters.push(Filter::Cmp { col: i, op: if *inc { Op::Le } else { Op::Lt }, value: v.clone() });
        }
    };

    // Partition key: all columns by = or IN gives a set of partitions; anything else filters.
    let pk_full = s.partition_key.iter().all(|c| restr.get(c).is_some_and(|r| r.eq.is_some() || r.ins.is_some()));
    let mut single_partition = pk_full;
    let partitions = if pk_full {
        let mut keys: Vec<Vec<Bytes>> = vec![vec![]];
        for c in &s.partition_key {
            let r = &restr[c];
            let opts: Vec<Bytes> = match (&r.eq, &r.ins) {
                (Some(v), _) => vec![v.clone()],
                (None, Some(l)) => {
                    single_partition = false;
                    l.clone()
                }
                _ => vec![],
            };
            keys = keys
                .into_iter()
                .flat_map(|k| opts.iter().map(move |o| [k.clone(), vec![o.clone()]].concat()))
                .collect();
        }
        Some(keys)
    } else {
        for c in &s.partition_key {
            if let Some(r) = restr.get(c) {
                needs_filtering = true;
                push_filters(*c, r, &mut filters);
            }
        }
        None
    };

    // Clustering: = on a prefix, then one slice; anything after a gap, IN, or without the
    // whole partition key restricted needs filtering.
    let mut prefix: Vec<Bytes> = Vec::new();
    let mut slice: Option<(usize, &Restriction)> = None;
    let mut native = true;
    for (pos, c) in s.clustering_key.iter().enumerate() {
        let Some(r) = restr.get(c) else {
            native = false;
            continue;
        };
        if !pk_full {
            needs_filtering = true;
        }
        if native && r.ins.is_none() {
            if let Some(v) = &r.eq {
                prefix.push(v.clone());
                continue;
            }
            slice = Some((pos, r));
            native = false;
            continue;
        }
        native = false;
        needs_filtering = true;
        push_filters(*c, r, &mut filters);
    }
    for (i, r) in &restr {
        if s.columns[*i].kind == ColumnKind::Regular {
            needs_filtering = true;
            push_filters(*i, r, &mut filters);
        }
    }
    if needs_filtering && !sel.allow_filtering {
        return invalid(FILTERING_MSG);
    }

    // Clustering bounds in sort-key space (which is the table's clustering order).
    let pfx = s.clustering_sort_key(&prefix);
    let mut empty = false;
    let (mut lower, mut upper) = if prefix.is_empty() {
        (Bound::Unbounded, Bound::Unbounded)
    } else {
        (Bound::Included(pfx.clone()), prefix_end(&pfx).map_or(Bound::Unbounded, Bound::Excluded))
    };
    if let Some((pos, r)) = slice {
        let col = &s.columns[s.clustering_key[pos]];
        let desc = s.clustering_desc[pos];
        let enc = |v: &Bytes| {
            let mut k = pfx.clone();
            col.typ.sort_key(v, desc, &mut k);
            k
        };
        // A value bound in value order becomes a lower or upper bound in key order.
        let mut apply = |v: &Bytes, inclusive: bool, is_lower_in_value_order: bool| {
            let k = enc(v);
            let sets_lower = is_lower_in_value_order != desc;
            match (sets_lower, inclusive) {
                (true, true) => lower = Bound::Included(k),
                (true, false) => match prefix_end(&k) {
                    Some(e) => lower = Bound::Included(e),
                    None => empty = true,
                },
                (false, true) => {
                    if let Some(e) = prefix_end(&k) {
                        upper = Bound::Excluded(e);
                    }
                }
                (false, false) => upper = Bound::Excluded(k),
            }
        };
        if let Some((v, inc)) = &r.lower {
            apply(v, *inc, true);
        }
        if let Some((v, inc)) = &r.upper {
            apply(v, *inc, false);
        }
    }

    // ORDER BY: clustering columns in declared order, all reversed or none.
    let mut reversed = false;
    if !sel.order_by.is_empty() {
        if !pk_full {
            return invalid("ORDER BY is only supported when the partition key is restricted by an EQ or an IN.");
        }
        if !single_partition {
            return invalid("ORDER BY with IN on the partition key is not supported by hls-dvr-cqlnode");
        }
        let mut rev: Option<bool> = None;
        for (n, (name, desc)) in sel.order_by.iter().enumerate() {
            let (i, col) = s
                .column(name)
                .map(|i| (i, &s.columns[i]))
                .ok_or_else(|| CqlError::invalid(format!("Order by on unknown column {name}")))?;
            let ColumnKind::Clustering(pos) = col.kind else {
                return invalid(format!(
                    "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}"
                ));
            };
            if pos != n || s.clustering_key[pos] != i {
                return invalid("Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY");
            }
            let r = *desc != s.clustering_desc[pos];
            if rev.is_some_and(|x| x != r) {
                return invalid("Unsupported order by relation");
            }
            rev = Some(r);
        }
        reversed = rev.unwrap_or(false);
    }

    let limit = match &sel.limit {
        None => None,
        Some(t) => match bind(t, &CqlType::Int, values, "[limit]")? {
            Value::Set(b) => {
                let n = int_of(&b, "limit")?;
                if n <= 0 {
                    return invalid("LIMIT must be strictly positive");
                }
                Some(n as usize)
            }
            Value::Null => return invalid("Invalid null value of limit"),
            Value::Unset => None,
        },
    };

    let plan = ReadPlan { partitions, lower, upper, reversed, filters };

    if let Selection::Count { .. } = &sel.selection {
        let n = if empty { 0 } else { table.read(&plan, None, None, now_ms).0.len() };
        let rows =
            if limit == Some(0) { vec![] } else { vec![vec![Some(Bytes::copy_from_slice(&(n as i64).to_be_bytes()))]] };
        return Ok(Rows { meta, rows, paging_state: None });
    }

    // Paging: resume after the last row of the previous page, with what is left of LIMIT.
    let (after, remaining) = match &p.paging_state {
        None => (None, limit),
        Some(st) => {
            let bad = || CqlError::protocol("Invalid value for the paging state");
            if st.first() != Some(&PAGING_MAGIC) {
                return Err(bad());
            }
            let (pos, rest) = Position::decode(&st[1..]).ok_or_else(bad)?;
            let rem = i64::from_be_bytes(rest.try_into().map_err(|_| bad())?);
            (Some(pos), if rem < 0 { None } else { Some(rem as usize) })
        }
    };
    let page = p.page_size.filter(|n| *n > 0);
    let max = match (page, remaining) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let (mut found, mut more) =
        if empty || remaining == Some(0) { (vec![], false) } else { table.read(&plan, after.as_ref(), max, now_ms) };
    // Frames carry 32-bit lengths and clients cap them (256 MiB by default): a paged read
    // ends its page early past PAGE_BYTES (drivers accept short pages), an unpaged one fails.
    let mut bytes = 0usize;
    if let Some(cut) = found.iter().position(|(_, vals)| {
        bytes += vals.iter().map(|v| v.as_ref().map_or(4, |b| b.len() + 4)).sum::<usize>();
        bytes > PAGE_BYTES
    }) {
        if page.is_none() {
            return invalid(format!("The result of this unpaged SELECT exceeds {PAGE_BYTES} bytes; use paging"));
        }
        found.truncate(cut.max(1));
        more = true;
    }
    let left = remaining.map(|r| r - found.len());
    let paging_state = match (page, found.last()) {
        (Some(_), Some((pos, _))) if more && left != Some(0) => {
            let mut st = vec![PAGING_MAGIC];
            pos.encode(&mut st);
            st.extend_from_slice(&left.map_or(-1, |l| l as i64).to_be_bytes());
            Some(st)
        }
        _ => None,
    };
    let idx = projection(&s, &sel.selection)?;
    let rows = found.into_iter().map(|(_, vals)| idx.iter().map(|&i| vals[i].clone()).collect()).collect();
    Ok(Rows { meta, rows, paging_state })
}

fn projection(s: &TableSchema, sel: &Selection) -> Result<Vec<usize>, CqlError> {
    match sel {
        Selection::All => Ok((0..s.columns.len()).collect()),
        Selection::Count { .. } => Ok(vec![]),
        Selection::Columns(cols) => cols.iter().map(|(n, _)| column(s, n).map(|c| c.0)).collect(),
    }
}

fn select_meta(s: &TableSchema, sel: &Selection) -> Result<ResultMeta, CqlError> {
    let columns = match sel {
        Selection::All => s.columns.iter().map(|c| ColSpec { name: c.name.clone(), typ: c.typ.clone() }).collect(),
        Selection::Count { alias } => vec![ColSpec { name: alias.clone(), typ: CqlType::BigInt }],
        Selection::Columns(cols) => cols
            .iter()
            .map(|(n, alias)| {
                column(s, n)
                    .map(|(_, c)| ColSpec { name: alias.clone().unwrap_or_else(|| c.name.clone()), typ: c.typ.clone() })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(ResultMeta { keyspace: s.keyspace.clone(), table: s.name.clone(), columns })
}

/// Bind-variable and result metadata for a PREPARE; also rejects unknown tables and columns.
pub fn prepare_info(store: &Store, env: &Env, parsed: &Parsed) -> Result<PrepInfo, CqlError> {
    let mut specs: Vec<Option<ColSpec>> = vec![None; parsed.markers];
    let mut set = |t: &Term, name: &str, typ: &CqlType| {
        if let Term::Marker(i) = t {
            if let Some(slot) = specs.get_mut(*i) {
                *slot = Some(ColSpec { name: name.to_string(), typ: typ.clone() });
            }
        }
    };
    let mut pk_indexes = Vec::new();
    let mut result = None;
    let mut table_spec = (String::new(), String::new());
    let pk_marker = |s: &TableSchema, find: &dyn Fn(&str) -> Option<usize>| -> Vec<u16> {
        let idx: Vec<Option<usize>> = s.partition_key.iter().map(|&i| find(&s.columns[i].name)).collect();
        if idx.iter().all(Option::is_some) {
            idx.into_iter().flatten().map(|i| i as u16).collect()
        } else {
            vec![]
        }
    };
    let insert_specs =
        |ins: &Insert, set: &mut dyn FnMut(&Term, &str, &CqlType)| -> Result<(Arc<TableSchema>, Vec<u16>), CqlError> {
            let s = resolve_schema(store, env, &ins.table)?;
            for (n, t) in ins.columns.iter().zip(&ins.values) {
                let (_, c) = column(&s, n)?;
                set(t, n, &c.typ);
            }
            if let Some(t) = &ins.ttl {
                set(t, "[ttl]", &CqlType::Int);
            }
            if let Some(t) = &ins.timestamp {
                set(t, "[timestamp]", &CqlType::BigInt);
            }
            let pk = pk_marker(&s, &|name| {
                ins.columns.iter().position(|c| c == name).and_then(|p| match ins.values[p] {
                    Term::Marker(m) => Some(m),
                    _ => None,
                })
            });
            Ok((s, pk))
        };
    match &parsed.stmt {
        Statement::Insert(ins) => {
            let (s, pk) = insert_specs(ins, &mut set)?;
            pk_indexes = pk;
            table_spec = (s.keyspace.clone(), s.name.clone());
        }
        Statement::Batch { inserts, timestamp } => {
            for ins in inserts {
                let (s, _) = insert_specs(ins, &mut set)?;
                table_spec = (s.keyspace.clone(), s.name.clone());
            }
            if let Some(t) = timestamp {
                set(t, "[timestamp]", &CqlType::BigInt);
            }
        }
        Statement::Select(sel) => {
            let s = resolve_schema(store, env, &sel.table)?;
            for rel in &sel.relations {
                match rel {
                    Relation::Cmp { col, value, .. } => set(value, col, &column(&s, col)?.1.typ),
                    Relation::In { col, values: InValues::Marker(m) } => {
                        let t = CqlType::List(Box::new(column(&s, col)?.1.typ.clone()));
                        set(&Term::Marker(*m), &format!("in({col})"), &t)
                    }
                    Relation::In { col, values: InValues::List(ts) } => {
                        let t = column(&s, col)?.1.typ.clone();
                        ts.iter().for_each(|x| set(x, col, &t));
                    }
                }
            }
            if let Some(t) = &sel.limit {
                set(t, "[limit]", &CqlType::Int);
            }
            for (n, _) in &sel.order_by {
                column(&s, n)?;
            }
            pk_indexes = pk_marker(&s, &|name| {
                sel.relations.iter().find_map(|r| match r {
                    Relation::Cmp { col, op: Op::Eq, value: Term::Marker(m) } if col == name => Some(*m),
                    _ => None,
                })
            });
            result = Some(select_meta(&s, &sel.selection)?);
            table_spec = (s.keyspace.clone(), s.name.clone());
        }
        _ => {}
    }
    let columns = specs.into_iter().map(|c| c.unwrap_or(ColSpec { name: "?".into(), typ: CqlType::Blob })).collect();
    Ok(PrepInfo { bind: ResultMeta { keyspace: table_spec.0, table: table_spec.1, columns }, pk_indexes, result })
}

fn validate_name(kind: &str, n: &str) -> Result<(), CqlError> {
    if n.is_empty() || n.len() > 48 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return invalid(format!("{kind} name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"{n}\")"));
    }
    Ok(())
}

/// Option values as text, for maps like replication and compaction.
fn lit_text(l: &Literal) -> Option<String> {
    match l {
        Literal::Str(s) | Literal::Int(s) | Literal::Float(s) => Some(s.clone()),
        Literal::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text_map(v: &OptValue, what: &str) -> Result<BTreeMap<String, String>, CqlError> {
    let OptValue::Lit(Literal::Map(pairs)) = v else {
        return Err(CqlError::new(code::SYNTAX_ERROR, format!("{what} must be a map literal")));
    };
    let mut m = BTreeMap::new();
    for (k, v) in pairs {
        match (lit_text(k), lit_text(v)) {
            (Some(k), Some(v)) => m.insert(k, v),
            _ => return invalid(format!("Invalid value in the {what} map")),
        };
    }
    Ok(m)
}

fn create_keyspace(
    store: &mut Store,
    name: &str,
    if_not_exists: bool,
    options: &[(String, OptValue)],
) -> Result<Outcome, CqlError> {
    validate_name("Keyspace", name)?;
    let mut replication = None;
    let mut durable_writes = true;
    for (k, v) in options {
        match k.as_str() {
            "replication" => replication = Some(text_map(v, "replication")?),
            "durable_writes" => {
                durable_writes = match v {
                    OptValue::Lit(Literal::Bool(b)) => *b,
                    OptValue::Lit(Literal::Str(s))
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                    {
                        s.eq_ignore_ascii_case("true")
                    }
                    _ => return Err(CqlError::new(code::SYNTAX_ERROR, "durable_writes must be true or false")),
                }
            }
            other => return Err(CqlError::new(code::SYNTAX_ERROR, format!("Unknown property '{other}'"))),
        }
    }
    let mut replication =
        replication.ok_or_else(|| CqlError::new(code::CONFIG_ERROR, "Missing mandatory option 'replication'"))?;
    let class = replication
        .remove("class")
        .ok_or_else(|| CqlError::new(code::CONFIG_ERROR, "Missing replication strategy class"))?;
    let full = match class.as_str() {
        "SimpleStrategy" | "org.apache.cassandra.locator.SimpleStrategy" => {
            let rf = replication.get("replication_factor").ok_or_else(|| {
                CqlError::new(code::CONFIG_ERROR, "SimpleStrategy requires a replication_factor strategy option.")
            })?;
            if rf.parse::<u32>().is_err() || replication.len() != 1 {
                return Err(CqlError::new(
                    code::CONFIG_ERROR,
                    "SimpleStrategy takes exactly one option, replication_factor, a non-negative integer",
                ));
            }
            "org.apache.cassandra.locator.SimpleStrategy"
        }
        "NetworkTopologyStrategy" | "org.apache.cassandra.locator.NetworkTopologyStrategy" => {
            if let Some((dc, _)) = replication.iter().find(|(_, v)| v.parse::<u32>().is_err()) {
                return Err(CqlError::new(
                    code::CONFIG_ERROR,
                    format!("Replication factor for data center {dc} must be a non-negative integer"),
                ));
            }
            "org.apache.cassandra.locator.NetworkTopologyStrategy"
        }
        other => {
            return Err(CqlError::new(
                code::CONFIG_ERROR,
                format!("Unable to find replication strategy class '{other}'"),
            ))
        }
    };
    replication.insert("class".into(), full.into());
    if system::is_system_keyspace(name) || store.keyspaces.contains_key(name) {
        if if_not_exists {
            return Ok(Outcome::Void);
        }
        return Err(CqlError {
            code: code::ALREADY_EXISTS,
            message: format!("Keyspace {name} already exists"),
            extra: ErrorExtra::AlreadyExists { keyspace: name.into(), table: String::new() },
        });
    }
    store
        .keyspaces
        .insert(name.into(), Keyspace { name: name.into(), replication, durable_writes, tables: BTreeMap::new() });
    store.bump_schema_version();
    Ok(Outcome::SchemaChange { change: "CREATED", target: "KEYSPACE", keyspace: name.into(), table: None })
}

fn table_options(opts: &[(String, OptValue)]) -> Result<TableOptions, CqlError> {
    let mut o = TableOptions { gc_grace_seconds: 864_000, ..Default::default() };
    for (name, v) in opts {
        let non_negative_int = |v: &OptValue| -> Result<i64, CqlError> {
            match v {
                OptValue::Lit(Literal::Int(d)) => d.parse::<i64>().ok().filter(|n| (0..=i32::MAX as i64).contains(n)),
                _ => None,
            }
            .ok_or_else(|| CqlError::new(code::CONFIG_ERROR, format!("{name} must be a non-negative integer")))
        };
        match name.as_str() {
            "default_time_to_live" => {
                o.default_ttl = non_negative_int(v)?;
                if o.default_ttl > MAX_TTL {
                    return Err(CqlError::new(
                        code::CONFIG_ERROR,
                        format!("default_time_to_live must be less than or equal to {MAX_TTL} (got {})", o.default_ttl),
                    ));
                }
            }
            "gc_grace_seconds" => o.gc_grace_seconds = non_negative_int(v)?,
            _ => {}
        }
        match system::table_option_type(name) {
            Some(typ) => {
                // Maps hold text; accept numbers and identifiers written unquoted.
                let lit = match v {
                    OptValue::Ident(s) => Literal::Str(s.clone()),
                    OptValue::Lit(Literal::Map(pairs)) => {
                        let mut m = text_map(v, name)?;
                        if name == "compaction" {
                            let class = m.get("class").ok_or_else(|| {
                                CqlError::new(
                                    code::CONFIG_ERROR,
                                    "Missing sub-option 'class' for the 'compaction' option.",
                                )
                            })?;
                            if !class.contains('.') {
                                let full = format!("org.apache.cassandra.db.compaction.{class}");
                                m.insert("class".into(), full);
                            }
                        }
                        let _ = pairs;
                        Literal::Map(m.into_iter().map(|(k, v)| (Literal::Str(k), Literal::Str(v))).collect())
                    }
                    OptValue::Lit(l) => l.clone(),
                };
                match typ.from_literal(&lit) {
                    Ok(Some(b)) => {
                        o.typed.insert(name.clone(), b);
                    }
                    _ => {
                        return Err(CqlError::new(code::CONFIG_ERROR, format!("Invalid value for table option {name}")))
                    }
                }
            }
            None => o.opaque.push((name.clone(), format!("{v:?}"))),
        }
    }
    Ok(o)
}

fn create_table(store: &mut Store, env: &Env, ct: &CreateTable) -> Result<Outcome, CqlError> {
    let ks = keyspace_of(&ct.table, env)?;
    if system::is_system_keyspace(&ks) {
        return Err(CqlError::unauthorized(&ks));
    }
    if !store.keyspaces.contains_key(&ks) {
        return invalid(format!("Keyspace '{ks}' doesn't exist"));
    }
    validate_name("Table", &ct.table.name)?;
    let mut cols: Vec<(String, CqlType, bool)> = Vec::new();
    for c in &ct.columns {
        if cols.iter().any(|x| x.0 == c.name) {
            return invalid(format!("Multiple definition of identifier {}", c.name));
        }
        cols.push((c.name.clone(), c.typ.clone(), c.frozen));
    }
    let mut seen: Vec<&String> = Vec::new();
    for k in ct.partition_key.iter().chain(&ct.clustering_key) {
        let Some(c) = cols.iter().find(|c| &c.0 == k) else {
            return invalid(format!("Unknown definition {k} referenced in PRIMARY KEY"));
        };
        if seen.contains(&k) {
            return invalid(format!("Duplicate column {k} in PRIMARY KEY"));
        }
        seen.push(k);
        if c.1.is_collection() {
            return invalid(format!("Invalid collection type for PRIMARY KEY component {k} (collections in the primary key are not supported by hls-dvr-cqlnode)"));
        }
    }
    if ct.clustering_order.len() > ct.clustering_key.len() {
        return invalid("Only clustering key columns can be defined in CLUSTERING ORDER directive");
    }
    let mut desc = vec![false; ct.clustering_key.len()];
    for (i, (name, d)) in ct.clustering_order.iter().enumerate() {
        if !ct.clustering_key.contains(name) {
            return invalid(format!(
                "Only clustering key columns can be defined in CLUSTERING ORDER directive: {name}"
            ));
        }
        if ct.clustering_key[i] != *name {
            return invalid(
                "The order of columns in the CLUSTERING ORDER directive must match that of the clustering columns",
            );
        }
        desc[i] = *d;
    }
    let options = table_options(&ct.options)?;
    let Some(k) = store.keyspaces.get_mut(&ks) else {
        return invalid(format!("Keyspace '{ks}' doesn't exist"));
    };
    if k.tables.contains_key(&ct.table.name) {
        if ct.if_not_exists {
            return Ok(Outcome::Void);
        }
        return Err(CqlError {
            code: code::ALREADY_EXISTS,
            message: format!("Table {ks}.{} already exists", ct.table.name),
            extra: ErrorExtra::AlreadyExists { keyspace: ks.clone(), table: ct.table.name.clone() },
        });
    }
    let schema = TableSchema::build(&ks, &ct.table.name, &cols, &ct.partition_key, &ct.clustering_key, desc, options);
    k.tables.insert(ct.table.name.clone(), Table::new(schema));
    store.bump_schema_version();
    Ok(Outcome::SchemaChange { change: "CREATED", target: "TABLE", keyspace: ks, table: Some(ct.table.name.clone()) })
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
