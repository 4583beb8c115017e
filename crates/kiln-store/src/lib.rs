//! Kiln's metadata store: one query interface and one migration sequence over SQLite (the
//! embedded default, in WAL mode) and PostgreSQL (for scale). Domain crates own their queries and
//! run them through [`MetaStore`].

mod db;
mod error;
mod migrate;
pub mod query;
mod store;
mod uri;

pub use db::{Bind, Cell, ColumnIndex, Decode, Done, Exec, IntoBind, Query, Row, Transaction, TxConn, query};
pub use error::{Error, is_unique_violation};
pub use migrate::{MIGRATIONS, Migration};
pub use store::{Dialect, MetaStore, StoreOptions};
pub use uri::DatabaseUri;
