//! Running SQL on either backend through one small interface: `query(sql).bind(..).fetch_all(exec)`.
//!
//! SQLite runs through rusqlite on the calling task's thread: a statement costs microseconds, and
//! handing each statement and each row to a driver thread and back cost more than SQLite itself.
//! PostgreSQL runs through sqlx. Rows from both arrive as [`Row`]s of owned [`Cell`]s.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::postgres::{PgArguments, PgRow, Postgres};
use sqlx::{Arguments, Column, Row as _, TypeInfo, ValueRef as _};
use tokio::sync::OwnedMutexGuard;

use crate::store::{Backend, MetaStore};
use crate::Error;

/// A value bound to a placeholder. NULLs keep their type: PostgreSQL checks it against the column.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Float(f64),
    Text(String),
    NullInt,
    NullFloat,
    NullText,
}

/// What can be bound to a placeholder.
pub trait IntoBind {
    fn into_bind(self) -> Bind;
}

impl IntoBind for Bind {
    fn into_bind(self) -> Bind {
        self
    }
}

impl IntoBind for i64 {
    fn into_bind(self) -> Bind {
        Bind::Int(self)
    }
}

impl IntoBind for i32 {
    fn into_bind(self) -> Bind {
        Bind::Int(i64::from(self))
    }
}

impl IntoBind for bool {
    fn into_bind(self) -> Bind {
        Bind::Int(i64::from(self))
    }
}

impl IntoBind for f64 {
    fn into_bind(self) -> Bind {
        Bind::Float(self)
    }
}

impl IntoBind for String {
    fn into_bind(self) -> Bind {
        Bind::Text(self)
    }
}

impl IntoBind for &str {
    fn into_bind(self) -> Bind {
        Bind::Text(self.to_string())
    }
}

impl IntoBind for &String {
    fn into_bind(self) -> Bind {
        Bind::Text(self.clone())
    }
}

impl IntoBind for Option<i64> {
    fn into_bind(self) -> Bind {
        self.map_or(Bind::NullInt, Bind::Int)
    }
}

impl IntoBind for Option<f64> {
    fn into_bind(self) -> Bind {
        self.map_or(Bind::NullFloat, Bind::Float)
    }
}

impl IntoBind for Option<String> {
    fn into_bind(self) -> Bind {
        self.map_or(Bind::NullText, Bind::Text)
    }
}

impl IntoBind for Option<&str> {
    fn into_bind(self) -> Bind {
        self.map_or(Bind::NullText, |s| Bind::Text(s.to_string()))
    }
}

impl IntoBind for &Option<String> {
    fn into_bind(self) -> Bind {
        self.as_deref().into_bind()
    }
}

impl rusqlite::ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Bind::Int(v) => ValueRef::Integer(*v),
            Bind::Float(v) => ValueRef::Real(*v),
            Bind::Text(v) => ValueRef::Text(v.as_bytes()),
            Bind::NullInt | Bind::NullFloat | Bind::NullText => ValueRef::Null,
        }))
    }
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "an integer",
            Cell::Float(_) => "a float",
            Cell::Text(_) => "text",
            Cell::Blob(_) => "a blob",
        }
    }
}

/// A result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    cells: Vec<Cell>,
}

/// Column positions, counted from 0.
pub trait ColumnIndex {
    fn position(self) -> usize;
}

impl ColumnIndex for usize {
    fn position(self) -> usize {
        self
    }
}

impl Row {
    /// The value of column `index` as a `T`; a NULL only decodes into an `Option`.
    pub fn try_get<T: Decode, I: ColumnIndex>(&self, index: I) -> Result<T, Error> {
        let index = index.position();
        let cell = self.cells.get(index).ok_or(Error::Decode { index, expected: T::NAME, found: "no such column" })?;
        T::decode(cell).ok_or(Error::Decode { index, expected: T::NAME, found: cell.kind() })
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// Rust types a [`Cell`] decodes into.
pub trait Decode: Sized {
    const NAME: &'static str;
    fn decode(cell: &Cell) -> Option<Self>;
}

impl Decode for i64 {
    const NAME: &'static str = "an integer";
    fn decode(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl Decode for f64 {
    const NAME: &'static str = "a number";
    fn decode(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Float(v) => Some(*v),
            Cell::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
}

impl Decode for bool {
    const NAME: &'static str = "a boolean";
    fn decode(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(v) => Some(*v != 0),
            _ => None,
        }
    }
}

impl Decode for String {
    const NAME: &'static str = "text";
    fn decode(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    const NAME: &'static str = T::NAME;
    fn decode(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            other => T::decode(other).map(Some),
        }
    }
}

/// What a statement that returns no rows reports.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    rows_affected: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

/// Where a statement runs: on a reading connection of the store, or inside a write transaction.
pub enum Exec<'a> {
    Read(&'a MetaStore),
    Tx(&'a mut TxConn),
}

impl<'a> From<&'a MetaStore> for Exec<'a> {
    fn from(store: &'a MetaStore) -> Self {
        Exec::Read(store)
    }
}

impl<'a> From<&'a mut TxConn> for Exec<'a> {
    fn from(tx: &'a mut TxConn) -> Self {
        Exec::Tx(tx)
    }
}

/// A statement and its bound values. SQL text comes from the program, never from a user: user
/// text only ever enters as a bind.
#[derive(Debug)]
pub struct Query {
    sql: Cow<'static, str>,
    binds: Vec<Bind>,
}

pub fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query { sql: sql.into(), binds: Vec::new() }
}

impl Query {
    pub(crate) fn with_binds(sql: String, binds: Vec<Bind>) -> Query {
        Query { sql: Cow::Owned(sql), binds }
    }

    pub fn bind(mut self, value: impl IntoBind) -> Self {
        self.binds.push(value.into_bind());
        self
    }

    pub async fn fetch_all<'a>(self, exec: impl Into<Exec<'a>>) -> Result<Vec<Row>, Error> {
        self.run(exec.into(), Want::All).await.map(|(rows, _)| rows)
    }

    pub async fn fetch_optional<'a>(self, exec: impl Into<Exec<'a>>) -> Result<Option<Row>, Error> {
        self.run(exec.into(), Want::First).await.map(|(rows, _)| rows.into_iter().next())
    }

    /// The first row; a statement that returns none is an error.
    pub async fn fetch_one<'a>(self, exec: impl Into<Exec<'a>>) -> Result<Row, Error> {
        self.fetch_optional(exec).await?.ok_or(Error::NoRow)
    }

    pub async fn execute<'a>(self, exec: impl Into<Exec<'a>>) -> Result<Done, Error> {
        self.run(exec.into(), Want::None).await.map(|(_, rows_affected)| Done { rows_affected })
    }

    async fn run(self, exec: Exec<'_>, want: Want) -> Result<(Vec<Row>, u64), Error> {
        match exec {
            Exec::Read(store) => match store.backend() {
                Backend::Sqlite(sqlite) => {
                    let conn = sqlite.reader().await?;
                    Ok(sqlite_run(&conn, &self.sql, &self.binds, want)?)
                }
                Backend::Postgres(pool) => pg_run(&mut *pool.acquire().await?, self, want).await,
            },
            Exec::Tx(tx) => match &mut tx.0 {
                TxInner::Sqlite(tx) => Ok(sqlite_run(&tx.conn, &self.sql, &self.binds, want)?),
                TxInner::Postgres(tx) => pg_run(&mut **tx, self, want).await,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    None,
    First,
    All,
}

/// SQLite numbers placeholders `?NNN`; `$NNN` would be a name, looked up by a scan per bind and
/// numbered in order of appearance. Statements written for both backends use `$n`: rewrite them.
fn sqlite_text(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '$' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn sqlite_run(
    conn: &rusqlite::Connection,
    sql: &str,
    binds: &[Bind],
    want: Want,
) -> Result<(Vec<Row>, u64), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(&sqlite_text(sql))?;
    for (i, value) in binds.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    let columns = stmt.column_count();
    let mut rows = Vec::new();
    let mut raw = stmt.raw_query();
    while let Some(row) = raw.next()? {
        if want == Want::None {
            continue;
        }
        let mut cells = Vec::with_capacity(columns);
        for i in 0..columns {
            cells.push(match row.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Float(v),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            });
        }
        rows.push(Row { cells });
        if want == Want::First {
            break;
        }
    }
    drop(raw);
    Ok((rows, conn.changes()))
}

async fn pg_run(conn: &mut sqlx::PgConnection, q: Query, want: Want) -> Result<(Vec<Row>, u64), Error> {
    let mut args = PgArguments::default();
    for b in q.binds {
        match b {
            Bind::Int(v) => args.add(v),
            Bind::Float(v) => args.add(v),
            Bind::Text(v) => args.add(v),
            Bind::NullInt => args.add(None::<i64>),
            Bind::NullFloat => args.add(None::<f64>),
            Bind::NullText => args.add(None::<String>),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    let statement = sqlx::query_with(sqlx::AssertSqlSafe(q.sql.into_owned()), args);
    match want {
        Want::None => Ok((Vec::new(), statement.execute(conn).await?.rows_affected())),
        Want::First => Ok((statement.fetch_optional(conn).await?.map(|r| pg_row(&r)).transpose()?.into_iter().collect(), 0)),
        Want::All => {
            let rows = statement.fetch_all(conn).await?;
            Ok((rows.iter().map(pg_row).collect::<Result<_, _>>()?, 0))
        }
    }
}

fn pg_row(row: &PgRow) -> Result<Row, Error> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        if row.try_get_raw(i)?.is_null() {
            cells.push(Cell::Null);
            continue;
        }
        cells.push(match column.type_info().name() {
            "INT8" => Cell::Int(row.try_get::<i64, _>(i)?),
            "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i)?)),
            "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i)?)),
            "BOOL" => Cell::Int(i64::from(row.try_get::<bool, _>(i)?)),
            "FLOAT8" => Cell::Float(row.try_get::<f64, _>(i)?),
            "FLOAT4" => Cell::Float(f64::from(row.try_get::<f32, _>(i)?)),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Cell::Text(row.try_get::<String, _>(i)?),
            "BYTEA" => Cell::Blob(row.try_get::<Vec<u8>, _>(i)?),
            "VOID" => Cell::Null,
            other => return Err(Error::UnsupportedColumn { column: column.name().to_string(), type_name: other.to_string() }),
        });
    }
    Ok(Row { cells })
}

/// A write transaction. Statements run in it through `&mut *tx`; it commits only when
/// [`Transaction::commit`] is called and rolls back when dropped without.
pub struct Transaction {
    conn: TxConn,
}

/// The connection of a transaction, which statements run on.
pub struct TxConn(TxInner);

enum TxInner {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// SQLite's writer connection, held for the transaction; rolls back on drop unless committed.
pub(crate) struct SqliteTx {
    conn: OwnedMutexGuard<rusqlite::Connection>,
    open: bool,
}

impl SqliteTx {
    pub(crate) fn begin(conn: OwnedMutexGuard<rusqlite::Connection>) -> Result<SqliteTx, Error> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx { conn, open: true })
    }

    fn commit(&mut self) -> Result<(), Error> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "rolling back a SQLite transaction failed");
        }
    }
}

impl Transaction {
    pub(crate) fn sqlite(tx: SqliteTx) -> Transaction {
        Transaction { conn: TxConn(TxInner::Sqlite(tx)) }
    }

    pub(crate) fn postgres(tx: sqlx::Transaction<'static, Postgres>) -> Transaction {
        Transaction { conn: TxConn(TxInner::Postgres(tx)) }
    }

    pub async fn commit(self) -> Result<(), Error> {
        match self.conn.0 {
            TxInner::Sqlite(mut tx) => tx.commit(),
            TxInner::Postgres(tx) => Ok(tx.commit().await?),
        }
    }
}

impl TxConn {
    /// Runs several statements without binds (schema migrations).
    pub async fn execute_script(&mut self, sql: &'static str) -> Result<(), Error> {
        match &mut self.0 {
            TxInner::Sqlite(tx) => Ok(tx.conn.execute_batch(sql)?),
            TxInner::Postgres(tx) => {
                sqlx::raw_sql(sql).execute(&mut **tx).await?;
                Ok(())
            }
        }
    }
}

impl Deref for Transaction {
    type Target = TxConn;
    fn deref(&self) -> &TxConn {
        &self.conn
    }
}

impl DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut TxConn {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_sqlite_numbers_outside_quotes() {
        assert_eq!(sqlite_text("SELECT a FROM t WHERE b = $2 AND c = $1"), "SELECT a FROM t WHERE b = ?2 AND c = ?1");
        assert_eq!(sqlite_text("SELECT '$1', $1"), "SELECT '$1', ?1");
        assert!(matches!(sqlite_text("SELECT ?"), Cow::Borrowed(_)));
    }

    #[test]
    fn rows_decode_by_type_and_refuse_mismatches() {
        let row = Row { cells: vec![Cell::Int(3), Cell::Null, Cell::Text("x".into()), Cell::Float(0.5)] };
        assert_eq!(row.try_get::<i64, _>(0).unwrap(), 3);
        assert_eq!(row.try_get::<f64, _>(0).unwrap(), 3.0);
        assert_eq!(row.try_get::<Option<String>, _>(1).unwrap(), None);
        assert_eq!(row.try_get::<String, _>(2).unwrap(), "x");
        assert!(row.try_get::<String, _>(1).is_err());
        assert!(row.try_get::<i64, _>(3).is_err());
        assert!(row.try_get::<i64, _>(9).is_err());
    }
}
