//! CQL lexer and parser for the statements this node implements. Statements it recognises but
//! does not implement (UPDATE, DELETE, ALTER, LWT...) parse to [`ParseError::Unsupported`] so the
//! client gets an Invalid error naming them; anything else is a syntax error.

use crate::types::{CqlType, Literal};

#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// Not CQL (or not CQL this node understands): protocol error code 0x2000.
    Syntax(String),
    /// Valid CQL that this node does not implement: 0x2200.
    Unsupported(String),
}

fn syntax<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Syntax(msg.into()))
}
fn unsupported<T>(what: impl std::fmt::Display) -> Result<T, ParseError> {
    Err(ParseError::Unsupported(format!("{what} is not supported by hls-dvr-cqlnode (an in-memory test node)")))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Unquoted identifier or keyword, as written.
    Ident(String),
    /// Double-quoted identifier, case kept.
    QIdent(String),
    Str(String),
    Int(String),
    Float(String),
    Hex(Vec<u8>),
    Uuid([u8; 16]),
    Marker,
    NamedMarker(String),
    Sym(&'static str),
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "end of input".into(),
        Some(Tok::Ident(s)) | Some(Tok::QIdent(s)) => format!("'{s}'"),
        Some(Tok::Str(s)) => format!("string '{s}'"),
        Some(Tok::Int(s)) | Some(Tok::Float(s)) => format!("'{s}'"),
        Some(Tok::Hex(_)) => "blob literal".into(),
        Some(Tok::Uuid(_)) => "uuid literal".into(),
        Some(Tok::Marker) => "'?'".into(),
        Some(Tok::NamedMarker(n)) => format!("':{n}'"),
        Some(Tok::Sym(s)) => format!("'{s}'"),
    }
}

fn lex(src: &str) -> Result<Vec<Tok>, ParseError> {
    let s: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < s.len() {
        let c = s[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Comments: -- and // to end of line, /* */ blocks.
        if (c == '-' && s.get(i + 1) == Some(&'-')) || (c == '/' && s.get(i + 1) == Some(&'/')) {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && s.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < s.len() && !(s[i] == '*' && s[i + 1] == '/') {
                i += 1;
            }
            if i + 1 >= s.len() {
                return syntax("unterminated comment");
            }
            i += 2;
            continue;
        }
        // A uuid literal starts like a number or an identifier, so try it first.
        if i + 36 <= s.len() {
            let cand: String = s[i..i + 36].iter().collect();
            let boundary = s.get(i + 36).is_none_or(|c| !c.is_alphanumeric() && *c != '_');
            if boundary {
                if let Some(u) = crate::types::parse_uuid(&cand) {
                    out.push(Tok::Uuid(u));
                    i += 36;
                    continue;
                }
            }
        }
        if c == '0' && matches!(s.get(i + 1), Some('x') | Some('X')) {
            let mut j = i + 2;
            while j < s.len() && s[j].is_ascii_hexdigit() {
                j += 1;
            }
            let hex: String = s[i + 2..j].iter().collect();
            if !hex.len().is_multiple_of(2) {
                return syntax(format!("blob literal 0x{hex} has an odd number of digits"));
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(&hex[k..k + 2], 16))
                .collect::<Result<Vec<_>, _>>();
            match bytes {
                Ok(b) => out.push(Tok::Hex(b)),
                Err(_) => return syntax("bad blob literal"),
            }
            i = j;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && s.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let mut j = i;
            let mut float = false;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            if j < s.len() && s[j] == '.' && s.get(j + 1).is_some_and(|d| d.is_ascii_digit()) {
                float = true;
                j += 1;
                while j < s.len() && s[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < s.len() && (s[j] == 'e' || s[j] == 'E') {
                let mut k = j + 1;
                if k < s.len() && (s[k] == '+' || s[k] == '-') {
                    k += 1;
                }
                if k < s.len() && s[k].is_ascii_digit() {
                    float = true;
                    j = k;
                    while j < s.len() && s[j].is_ascii_digit() {
                        j += 1;
                    }
                }
            }
            let text: String = s[i..j].iter().collect();
            out.push(if float { Tok::Float(text) } else { Tok::Int(text) });
            i = j;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            out.push(Tok::Ident(s[i..j].iter().collect()));
            i = j;
            continue;
        }
        if c == '\'' || c == '"' {
            // '' (or "") inside escapes the quote.
            let mut j = i + 1;
            let mut text = String::new();
            loop {
                if j >= s.len() {
                    return syntax(format!(
                        "unterminated {} literal",
                        if c == '\'' { "string" } else { "quoted identifier" }
                    ));
                }
                if s[j] == c {
                    if s.get(j + 1) == Some(&c) {
                        text.push(c);
                        j += 2;
                        continue;
                    }
                    break;
                }
                text.push(s[j]);
                j += 1;
            }
            out.push(if c == '\'' { Tok::Str(text) } else { Tok::QIdent(text) });
            i = j + 1;
            continue;
        }
        if c == '$' && s.get(i + 1) == Some(&'$') {
            let start = i + 2;
            let mut j = start;
            while j + 1 < s.len() && !(s[j] == '$' && s[j + 1] == '$') {
                j += 1;
            }
            if j + 1 >= s.len() {
                return syntax("unterminated $$ string");
            }
            out.push(Tok::Str(s[start..j].iter().collect()));
            i = j + 2;
            continue;
        }
        if c == '?' {
            out.push(Tok::Marker);
            i += 1;
            continue;
        }
        if c == ':' && s.get(i + 1).is_some_and(|d| d.is_alphabetic() || *d == '_') {
            let mut j = i + 1;
            while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            out.push(Tok::NamedMarker(s[i + 1..j].iter().collect()));
            i = j;
            continue;
        }
        let two: String = s[i..(i + 2).min(s.len())].iter().collect();
        let sym2 = ["<=", ">=", "!=", "+=", "-="].into_iter().find(|x| *x == two);
        if let Some(x) = sym2 {
            out.push(Tok::Sym(x));
            i += 2;
            continue;
        }
        let sym1 = ["(", ")", ",", ";", ".", "=", "<", ">", "*", "{", "}", "[", "]", ":", "-", "+"]
            .into_iter()
            .find(|x| x.starts_with(c));
        match sym1 {
            Some(x) => out.push(Tok::Sym(x)),
            None => return syntax(format!("unexpected character '{c}'")),
        }
        i += 1;
    }
    Ok(out)
}

/// A value in a statement: a literal, or the n-th bind marker (0-based, in order of appearance).
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Lit(Literal),
    Marker(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    Cmp {
        col: String,
        op: Op,
        value: Term,
    },
    /// `col IN (a, b)` or `col IN ?` (a single marker bound to a list).
    In {
        col: String,
        values: InValues,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum InValues {
    List(Vec<Term>),
    Marker(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QualName {
    pub keyspace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    All,
    Count { alias: String },
    Columns(Vec<(String, Option<String>)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub table: QualName,
    pub selection: Selection,
    pub relations: Vec<Relation>,
    pub order_by: Vec<(String, bool)>,
    pub limit: Option<Term>,
    pub allow_filtering: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub table: QualName,
    pub columns: Vec<String>,
    pub values: Vec<Term>,
    pub ttl: Option<Term>,
    pub timestamp: Option<Term>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDecl {
    pub name: String,
    pub typ: CqlType,
    pub frozen: bool,
}

/// Table option values as written; kept so system_schema.tables can show them.
#[derive(Debug, Clone, PartialEq)]
pub enum OptValue {
    Lit(Literal),
    Ident(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub table: QualName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDecl>,
    pub partition_key: Vec<String>,
    pub clustering_key: Vec<String>,
    /// `CLUSTERING ORDER BY` entries: (column, descending).
    pub clustering_order: Vec<(String, bool)>,
    pub options: Vec<(String, OptValue)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Use(String),
    CreateKeyspace {
        name: String,
        if_not_exists: bool,
        options: Vec<(String, OptValue)>,
    },
    CreateTable(CreateTable),
    DropKeyspace {
        name: String,
        if_exists: bool,
    },
    DropTable {
        table: QualName,
        if_exists: bool,
    },
    Truncate(QualName),
    Insert(Insert),
    Select(Select),
    /// `BEGIN [UNLOGGED|LOGGED] BATCH ... APPLY BATCH` as query text (what cqlsh sends).
    Batch {
        inserts: Vec<Insert>,
        timestamp: Option<Term>,
    },
}

/// A parsed statement and how many bind markers it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub stmt: Statement,
    pub markers: usize,
}

/// Parses a type name such as `frozen<map<text, text>>`; returns the type and whether frozen.
pub fn parse_type(src: &str) -> Result<(CqlType, bool), ParseError> {
    let mut p = P { toks: lex(src)?, pos: 0, markers: 0 };
    let t = p.cql_type()?;
    if p.pos < p.toks.len() {
        return syntax(format!("unexpected {} after type", describe(p.peek())));
    }
    Ok(t)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
    markers: usize,
}

pub fn parse(src: &str) -> Result<Parsed, ParseError> {
    let toks = lex(src)?;
    let mut p = P { toks, pos: 0, markers: 0 };
    let stmt = p.statement()?;
    while p.accept_sym(";") {}
    if p.pos < p.toks.len() {
        return syntax(format!("unexpected {} after the end of the statement", describe(p.peek())));
    }
    Ok(Parsed { stmt, markers: p.markers })
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(self.peek_at(n), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn accept_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.accept_kw(kw) {
            Ok(())
        } else {
            syntax(format!("expected {kw}, found {}", describe(self.peek())))
        }
    }
    fn accept_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_sym(&mut self, sym: &str) -> Result<(), ParseError> {
        if self.accept_sym(sym) {
            Ok(())
        } else {
            syntax(format!("expected '{sym}', found {}", describe(self.peek())))
        }
    }
    /// An identifier: unquoted ones are case-insensitive (lowercased), quoted ones kept.
    /// `col [ASC|DESC] [, col [ASC|DESC]]...`, as (column, descending) pairs.
    fn orderings(&mut self) -> Result<Vec<(String, bool)>, ParseError> {
        let mut out = Vec::new();
        loop {
            let c = self.ident()?;
            let desc = if self.accept_kw("DESC") {
                true
            } else {
                self.accept_kw("ASC"); // the default, optional
                false
            };
            out.push((c, desc));
            if !self.accept_sym(",") {
                return Ok(out);
            }
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s.to_lowercase()),
            Some(Tok::QIdent(s)) => Ok(s),
            t => {
                if t.is_some() {
                    self.pos -= 1;
                }
                syntax(format!("expected an identifier, found {}", describe(t.as_ref())))
            }
        }
    }
    fn qual_name(&mut self) -> Result<QualName, ParseError> {
        let first = self.ident()?;
        if self.accept_sym(".") {
            let name = self.ident()?;
            Ok(QualName { keyspace: Some(first), name })
        } else {
            Ok(QualName { keyspace: None, name: first })
        }
    }
    fn if_not_exists(&mut self) -> Result<bool, ParseError> {
        if self.accept_kw("IF") {
            self.expect_kw("NOT")?;
            self.expect_kw("EXISTS")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
    fn if_exists(&mut self) -> Result<bool, ParseError> {
        if self.accept_kw("IF") {
            self.expect_kw("EXISTS")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let Some(Tok::Ident(first)) = self.peek().cloned() else {
            return syntax(format!("expected a statement, found {}", describe(self.peek())));
        };
        match first.to_ascii_uppercase().as_str() {
            "USE" => {
                self.pos += 1;
                Ok(Statement::Use(self.ident()?))
            }
            "SELECT" => {
                self.pos += 1;
                Ok(Statement::Select(self.select()?))
            }
            "INSERT" => {
                self.pos += 1;
                Ok(Statement::Insert(self.insert()?))
            }
            "CREATE" => {
                self.pos += 1;
                self.create()
            }
            "DROP" => {
                self.pos += 1;
                self.drop()
            }
            "TRUNCATE" => {
                self.pos += 1;
                let _ = self.accept_kw("TABLE") || self.accept_kw("COLUMNFAMILY");
                Ok(Statement::Truncate(self.qual_name()?))
            }
            "BEGIN" => {
                self.pos += 1;
                self.batch()
            }
            "UPDATE" | "DELETE" | "ALTER" | "GRANT" | "REVOKE" | "LIST" | "DESCRIBE" | "DESC" => {
                unsupported(first.to_ascii_uppercase())
            }
            _ => syntax(format!("unknown statement starting with '{first}'")),
        }
    }

    fn create(&mut self) -> Result<Statement, ParseError> {
        if self.accept_kw("KEYSPACE") || self.accept_kw("SCHEMA") {
            let if_not_exists = self.if_not_exists()?;
            let name = self.ident()?;
            self.expect_kw("WITH")?;
            let options = self.properties()?;
            return Ok(Statement::CreateKeyspace { name, if_not_exists, options });
        }
        if self.accept_kw("TABLE") || self.accept_kw("COLUMNFAMILY") {
            return self.create_table().map(Statement::CreateTable);
        }
        let what = match self.peek() {
            Some(Tok::Ident(s)) => {
                let mut w = s.to_ascii_uppercase();
                if let Some(Tok::Ident(s2)) = self.peek_at(1) {
                    if matches!(w.as_str(), "CUSTOM" | "MATERIALIZED" | "OR") {
                        w = format!("{w} {}", s2.to_ascii_uppercase());
                    }
                }
                w
            }
            t => return syntax(format!("expected KEYSPACE or TABLE after CREATE, found {}", describe(t))),
        };
        unsupported(format!("CREATE {what}"))
    }

    fn drop(&mut self) -> Result<Statement, ParseError> {
        if self.accept_kw("KEYSPACE") || self.accept_kw("SCHEMA") {
            let if_exists = self.if_exists()?;
            return Ok(Statement::DropKeyspace { if_exists, name: self.ident()? });
        }
        if self.accept_kw("TABLE") || self.accept_kw("COLUMNFAMILY") {
            let if_exists = self.if_exists()?;
            return Ok(Statement::DropTable { if_exists, table: self.qual_name()? });
        }
        match self.peek() {
            Some(Tok::Ident(s)) => unsupported(format!("DROP {}", s.to_ascii_uppercase())),
            t => syntax(format!("expected KEYSPACE or TABLE after DROP, found {}", describe(t))),
        }
    }

    /// `name = value (AND name = value)*`
    fn properties(&mut self) -> Result<Vec<(String, OptValue)>, ParseError> {
        let mut out = Vec::new();
        loop {
            let name = self.ident()?;
            self.expect_sym("=")?;
            out.push((name, self.opt_value()?));
            if !self.accept_kw("AND") {
                break;
            }
        }
        Ok(out)
    }

    fn opt_value(&mut self) -> Result<OptValue, ParseError> {
        if let Some(Tok::Ident(s)) = self.peek() {
            let lower = s.to_ascii_lowercase();
            if lower != "true" && lower != "false" && lower != "null" {
                self.pos += 1;
                return Ok(OptValue::Ident(lower));
            }
        }
        match self.term()? {
            Term::Lit(l) => Ok(OptValue::Lit(l)),
            Term::Marker(_) => syntax("bind markers are not allowed in schema options"),
        }
    }

    fn cql_type(&mut self) -> Result<(CqlType, bool), ParseError> {
        let name = match self.next() {
            Some(Tok::Ident(s)) => s.to_ascii_lowercase(),
            Some(Tok::Str(s)) => return unsupported(format!("custom type '{s}'")),
            t => return syntax(format!("expected a type, found {}", describe(t.as_ref()))),
        };
        let simple = match name.as_str() {
            "ascii" => Some(CqlType::Ascii),
            "bigint" => Some(CqlType::BigInt),
            "blob" => Some(CqlType::Blob),
            "boolean" => Some(CqlType::Boolean),
            "double" => Some(CqlType::Double),
            "float" => Some(CqlType::Float),
            "int" => Some(CqlType::Int),
            "timestamp" => Some(CqlType::Timestamp),
            "uuid" => Some(CqlType::Uuid),
            "timeuuid" => Some(CqlType::Timeuuid),
            "inet" => Some(CqlType::Inet),
            "text" | "varchar" => Some(CqlType::Text),
            _ => None,
        };
        if let Some(t) = simple {
            return Ok((t, false));
        }
        match name.as_str() {
            "frozen" => {
                self.expect_sym("<")?;
                let (inner, _) = self.cql_type()?;
                self.expect_sym(">")?;
                if !inner.is_collection() {
                    return unsupported(format!("frozen<{}>", inner.cql_name()));
                }
                Ok((inner, true))
            }
            "list" | "set" => {
                self.expect_sym("<")?;
                let (e, _) = self.cql_type()?;
                self.expect_sym(">")?;
                if e.is_collection() {
                    return unsupported("a nested collection type");
                }
                Ok((if name == "list" { CqlType::List(Box::new(e)) } else { CqlType::Set(Box::new(e)) }, false))
            }
            "map" => {
                self.expect_sym("<")?;
                let (k, _) = self.cql_type()?;
                self.expect_sym(",")?;
                let (v, _) = self.cql_type()?;
                self.expect_sym(">")?;
                if k.is_collection() || v.is_collection() {
                    return unsupported("a nested collection type");
                }
                Ok((CqlType::Map(Box::new(k), Box::new(v)), false))
            }
            "counter" | "decimal" | "varint" | "date" | "time" | "smallint" | "tinyint" | "duration" | "tuple"
            | "vector" => unsupported(format!("type {name}")),
            other => unsupported(format!("type {other} (user-defined types)")),
        }
    }

    fn ident_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect_sym("(")?;
        let mut v = vec![self.ident()?];
        while self.accept_sym(",") {
            v.push(self.ident()?);
        }
        self.expect_sym(")")?;
        Ok(v)
    }

    fn create_table(&mut self) -> Result<CreateTable, ParseError> {
        let if_not_exists = self.if_not_exists()?;
        let table = self.qual_name()?;
        self.expect_sym("(")?;
        let mut columns = Vec::new();
        let mut pk: Option<(Vec<String>, Vec<String>)> = None;
        loop {
            if self.is_kw("PRIMARY") && self.is_kw_at(1, "KEY") {
                self.pos += 2;
                self.expect_sym("(")?;
                let partition =
                    if matches!(self.peek(), Some(Tok::Sym("("))) { self.ident_list()? } else { vec![self.ident()?] };
                let mut clustering = Vec::new();
                while self.accept_sym(",") {
                    clustering.push(self.ident()?);
                }
                self.expect_sym(")")?;
                if pk.replace((partition, clustering)).is_some() {
                    return syntax("multiple PRIMARY KEY definitions");
                }
            } else {
                let name = self.ident()?;
                let (typ, frozen) = self.cql_type()?;
                if self.accept_kw("STATIC") {
                    return unsupported("STATIC columns");
                }
                if self.is_kw("PRIMARY") {
                    self.pos += 1;
                    self.expect_kw("KEY")?;
                    if pk.replace((vec![name.clone()], vec![])).is_some() {
                        return syntax("multiple PRIMARY KEY definitions");
                    }
                }
                columns.push(ColumnDecl { name, typ, frozen });
            }
            if self.accept_sym(",") {
                // A trailing comma before ')' is tolerated, as Cassandra does.
                if self.accept_sym(")") {
                    break;
                }
                continue;
            }
            self.expect_sym(")")?;
            break;
        }
        let Some((partition_key, clustering_key)) = pk else {
            return Err(ParseError::Unsupported("No PRIMARY KEY specifed (exactly one required)".into()));
        };
        let mut clustering_order = Vec::new();
        let mut options = Vec::new();
        if self.accept_kw("WITH") {
            loop {
                if self.accept_kw("CLUSTERING") {
                    self.expect_kw("ORDER")?;
                    self.expect_kw("BY")?;
                    self.expect_sym("(")?;
                    clustering_order.extend(self.orderings()?);
                    self.expect_sym(")")?;
                } else if self.accept_kw("COMPACT") {
                    return unsupported("COMPACT STORAGE");
                } else {
                    let name = self.ident()?;
                    self.expect_sym("=")?;
                    options.push((name, self.opt_value()?));
                }
                if !self.accept_kw("AND") {
                    break;
                }
            }
        }
        Ok(CreateTable { table, if_not_exists, columns, partition_key, clustering_key, clustering_order, options })
    }

    fn term(&mut self) -> Result<Term, ParseError> {
        match self.next() {
            Some(Tok::Marker) => {
                self.markers += 1;
                Ok(Term::Marker(self.markers - 1))
            }
            Some(Tok::NamedMarker(n)) => unsupported(format!("named bind marker :{n}")),
            Some(Tok::Sym("-")) => match self.next() {
                Some(Tok::Int(d)) => Ok(Term::Lit(Literal::Int(format!("-{d}")))),
                Some(Tok::Float(d)) => Ok(Term::Lit(Literal::Float(format!("-{d}")))),
                t => syntax(format!("expected a number after '-', found {}", describe(t.as_ref()))),
            },
            Some(Tok::Str(s)) => Ok(Term::Lit(Literal::Str(s))),
            Some(Tok::Int(d)) => Ok(Term::Lit(Literal::Int(d))),
            Some(Tok::Float(d)) => Ok(Term::Lit(Literal::Float(d))),
            Some(Tok::Hex(b)) => Ok(Term::Lit(Literal::Blob(b))),
            Some(Tok::Uuid(u)) => Ok(Term::Lit(Literal::Uuid(u))),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Term::Lit(Literal::Bool(true))),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Term::Lit(Literal::Bool(false))),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Ok(Term::Lit(Literal::Null)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("nan") => Ok(Term::Lit(Literal::Float("NaN".into()))),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("infinity") => Ok(Term::Lit(Literal::Float("inf".into()))),
            Some(Tok::Sym("[")) => {
                let mut items = Vec::new();
                if !self.accept_sym("]") {
                    loop {
                        items.push(self.literal()?);
                        if self.accept_sym("]") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                }
                Ok(Term::Lit(Literal::List(items)))
            }
            Some(Tok::Sym("{")) => {
                if self.accept_sym("}") {
                    return Ok(Term::Lit(Literal::Map(vec![])));
                }
                let first = self.literal()?;
                if self.accept_sym(":") {
                    let mut pairs = vec![(first, self.literal()?)];
                    while self.accept_sym(",") {
                        let k = self.literal()?;
                        self.expect_sym(":")?;
                        pairs.push((k, self.literal()?));
                    }
                    self.expect_sym("}")?;
                    Ok(Term::Lit(Literal::Map(pairs)))
                } else {
                    let mut items = vec![first];
                    while self.accept_sym(",") {
                        items.push(self.literal()?);
                    }
                    self.expect_sym("}")?;
                    Ok(Term::Lit(Literal::Set(items)))
                }
            }
            Some(Tok::Ident(s)) if matches!(self.peek(), Some(Tok::Sym("("))) => {
                unsupported(format!("function call {s}()"))
            }
            t => {
                if t.is_some() {
                    self.pos -= 1;
                }
                syntax(format!("expected a value, found {}", describe(t.as_ref())))
            }
        }
    }

    /// A literal inside a collection literal: markers are not allowed there.
    fn literal(&mut self) -> Result<Literal, ParseError> {
        match self.term()? {
            Term::Lit(l) => Ok(l),
            Term::Marker(_) => unsupported("a bind marker inside a collection literal"),
        }
    }

    fn insert(&mut self) -> Result<Insert, ParseError> {
        self.expect_kw("INTO")?;
        let table = self.qual_name()?;
        if self.is_kw("JSON") {
            return unsupported("INSERT JSON");
        }
        let columns = self.ident_list()?;
        self.expect_kw("VALUES")?;
        self.expect_sym("(")?;
        let mut values = vec![self.term()?];
        while self.accept_sym(",") {
            values.push(self.term()?);
        }
        self.expect_sym(")")?;
        if columns.len() != values.len() {
            return Err(ParseError::Unsupported(format!(
                "Unmatched column names/values: {} column names but {} values",
                columns.len(),
                values.len()
            )));
        }
        if self.is_kw("IF") {
            return unsupported("INSERT ... IF NOT EXISTS (lightweight transactions)");
        }
        let (ttl, timestamp) = self.using()?;
        if self.is_kw("IF") {
            return unsupported("INSERT ... IF NOT EXISTS (lightweight transactions)");
        }
        Ok(Insert { table, columns, values, ttl, timestamp })
    }

    /// `USING TTL t [AND TIMESTAMP ts]` in either order.
    fn using(&mut self) -> Result<(Option<Term>, Option<Term>), ParseError> {
        let (mut ttl, mut ts) = (None, None);
        if self.accept_kw("USING") {
            loop {
                if self.accept_kw("TTL") {
                    if ttl.replace(self.term()?).is_some() {
                        return syntax("TTL given twice");
                    }
                } else if self.accept_kw("TIMESTAMP") {
                    if ts.replace(self.term()?).is_some() {
                        return syntax("TIMESTAMP given twice");
                    }
                } else if self.is_kw("TIMEOUT") {
                    return unsupported("USING TIMEOUT");
                } else {
                    return syntax(format!("expected TTL or TIMESTAMP, found {}", describe(self.peek())));
                }
                if !self.accept_kw("AND") {
                    break;
                }
            }
        }
        Ok((ttl, ts))
    }

    fn select(&mut self) -> Result<Select, ParseError> {
        if self.is_kw("JSON") || self.is_kw("DISTINCT") {
            let w = describe(self.peek()).trim_matches('\'').to_ascii_uppercase();
            return unsupported(format!("SELECT {w}"));
        }
        let selection = if self.accept_sym("*") {
            Selection::All
        } else if self.is_kw("COUNT") && matches!(self.peek_at(1), Some(Tok::Sym("("))) {
            self.pos += 2;
            if !self.accept_sym("*") {
                match self.next() {
                    Some(Tok::Int(d)) if d == "1" => {}
                    t => return unsupported(format!("COUNT({})", describe(t.as_ref()).trim_matches('\''))),
                }
            }
            self.expect_sym(")")?;
            let alias = if self.accept_kw("AS") { self.ident()? } else { "count".to_string() };
            if matches!(self.peek(), Some(Tok::Sym(","))) {
                return unsupported("COUNT mixed with other selectors");
            }
            Selection::Count { alias }
        } else {
            let mut cols = Vec::new();
            loop {
                let name = self.ident()?;
                if matches!(self.peek(), Some(Tok::Sym("("))) {
                    return unsupported(format!("selector function {name}()"));
                }
                let alias = if self.accept_kw("AS") { Some(self.ident()?) } else { None };
                cols.push((name, alias));
                if !self.accept_sym(",") {
                    break;
                }
            }
            Selection::Columns(cols)
        };
        self.expect_kw("FROM")?;
        let table = self.qual_name()?;
        let mut relations = Vec::new();
        if self.accept_kw("WHERE") {
            loop {
                relations.push(self.relation()?);
                if !self.accept_kw("AND") {
                    break;
                }
            }
        }
        if self.is_kw("GROUP") {
            return unsupported("GROUP BY");
        }
        let mut order_by = Vec::new();
        if self.accept_kw("ORDER") {
            self.expect_kw("BY")?;
            order_by = self.orderings()?;
        }
        if self.is_kw("PER") {
            return unsupported("PER PARTITION LIMIT");
        }
        let limit = if self.accept_kw("LIMIT") { Some(self.term()?) } else { None };
        let allow_filtering = if self.accept_kw("ALLOW") {
            self.expect_kw("FILTERING")?;
            true
        } else {
            false
        };
        if self.is_kw("BYPASS") || self.is_kw("USING") {
            return unsupported(describe(self.peek()).trim_matches('\'').to_ascii_uppercase());
        }
        Ok(Select { table, selection, relations, order_by, limit, allow_filtering })
    }

    fn relation(&mut self) -> Result<Relation, ParseError> {
        if matches!(self.peek(), Some(Tok::Sym("("))) {
            return unsupported("multi-column relations");
        }
        if self.is_kw("TOKEN") && matches!(self.peek_at(1), Some(Tok::Sym("("))) {
            return unsupported("token() restrictions");
        }
        let col = self.ident()?;
        if matches!(self.peek(), Some(Tok::Sym("("))) {
            return unsupported(format!("function {col}() in WHERE"));
        }
        let op = match self.next() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("IN") => {
                if self.accept_sym("(") {
                    let mut values = Vec::new();
                    if !self.accept_sym(")") {
                        loop {
                            values.push(self.term()?);
                            if self.accept_sym(")") {
                                break;
                            }
                            self.expect_sym(",")?;
                        }
                    }
                    return Ok(Relation::In { col, values: InValues::List(values) });
                }
                return match self.term()? {
                    Term::Marker(i) => Ok(Relation::In { col, values: InValues::Marker(i) }),
                    Term::Lit(_) => syntax("expected '(' or '?' after IN"),
                };
            }
            Some(Tok::Sym("!=")) => return unsupported("the != operator"),
            Some(Tok::Ident(s)) if ["CONTAINS", "LIKE", "IS"].iter().any(|k| s.eq_ignore_ascii_case(k)) => {
                return unsupported(format!("the {} operator", s.to_ascii_uppercase()))
            }
            t => return syntax(format!("expected an operator after '{col}', found {}", describe(t.as_ref()))),
        };
        Ok(Relation::Cmp { col, op, value: self.term()? })
    }

    fn batch(&mut self) -> Result<Statement, ParseError> {
        if self.accept_kw("COUNTER") {
            return unsupported("counter batches");
        }
        let _ = self.accept_kw("UNLOGGED") || self.accept_kw("LOGGED");
        self.expect_kw("BATCH")?;
        let (ttl, timestamp) = self.using()?;
        if ttl.is_some() {
            return syntax("a BATCH takes no TTL (give it on each statement)");
        }
        let mut inserts = Vec::new();
        loop {
            while self.accept_sym(";") {}
            if self.accept_kw("APPLY") {
                self.expect_kw("BATCH")?;
                break;
            }
            match self.statement()? {
                Statement::Insert(i) => inserts.push(i),
                _ => {
                    return Err(ParseError::Unsupported(
                        "Invalid statement in batch: only INSERT statements are supported by hls-dvr-cqlnode".into(),
                    ))
                }
            }
        }
        Ok(Statement::Batch { inserts, timestamp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_project_statements() {
        let p = parse("INSERT INTO ks.segment_chunks (stream, rendition, msn, chunk, size, chunks, chunk_size, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?").unwrap();
        assert_eq!(p.markers, 9);
        let Statement::Insert(i) = &p.stmt else { panic!() };
        assert_eq!(i.table, QualName { keyspace: Some("ks".into()), name: "segment_chunks".into() });
        assert_eq!(i.ttl, Some(Term::Marker(8)));

        let p = parse("SELECT msn, duration_us FROM ks.segment_index WHERE stream = ? AND rendition = ? AND bucket = ? AND msn >= ? ORDER BY msn DESC LIMIT ?").unwrap();
        let Statement::Select(s) = &p.stmt else { panic!() };
        assert_eq!(s.relations.len(), 4);
        assert_eq!(s.order_by, vec![("msn".into(), true)]);
        assert_eq!(s.limit, Some(Term::Marker(4)));
    }

    #[test]
    fn parses_create_table_forms() {
        let p = parse("CREATE TABLE IF NOT EXISTS k.t (a text, \"B\" int, c bigint, d map<text, text>, PRIMARY KEY ((a, \"B\"), c)) WITH CLUSTERING ORDER BY (c DESC) AND compaction = {'class': 'X'} AND default_time_to_live = 5 AND comment = 'hi';").unwrap();
        let Statement::CreateTable(c) = p.stmt else { panic!() };
        assert!(c.if_not_exists);
        assert_eq!(c.partition_key, vec!["a", "B"]);
        assert_eq!(c.clustering_key, vec!["c"]);
        assert_eq!(c.clustering_order, vec![("c".into(), true)]);
        assert_eq!(c.options.len(), 3);
        let p = parse("create table t (k int primary key, v text)").unwrap();
        let Statement::CreateTable(c) = p.stmt else { panic!() };
        assert_eq!(c.partition_key, vec!["k"]);
        assert_eq!(c.table.keyspace, None);
    }

    #[test]
    fn literals_and_comments() {
        let p = parse("insert into t (a, b, c, d, e) values ('it''s', -3, 0xCAFE, 1.5e3, 123e4567-e89b-12d3-a456-426614174000) -- trailing").unwrap();
        let Statement::Insert(i) = p.stmt else { panic!() };
        assert_eq!(i.values[0], Term::Lit(Literal::Str("it's".into())));
        assert_eq!(i.values[1], Term::Lit(Literal::Int("-3".into())));
        assert_eq!(i.values[2], Term::Lit(Literal::Blob(vec![0xca, 0xfe])));
        assert_eq!(i.values[3], Term::Lit(Literal::Float("1.5e3".into())));
        assert!(matches!(i.values[4], Term::Lit(Literal::Uuid(_))));
    }

    #[test]
    fn unsupported_and_syntax_errors() {
        for s in [
            "UPDATE t SET a = 1 WHERE k = 1",
            "DELETE FROM t WHERE k = 1",
            "ALTER TABLE t ADD x int",
            "CREATE INDEX ON t (v)",
            "INSERT INTO t (k) VALUES (1) IF NOT EXISTS",
            "SELECT * FROM t WHERE token(k) > 0",
            "SELECT writetime(v) FROM t",
        ] {
            assert!(matches!(parse(s), Err(ParseError::Unsupported(_))), "{s}");
        }
        for s in ["SELEKT * FROM t", "SELECT * FROM", "INSERT INTO t (a) VALUES ('x", "SELECT * FROM t garbage"] {
            assert!(matches!(parse(s), Err(ParseError::Syntax(_))), "{s}");
        }
    }
}
