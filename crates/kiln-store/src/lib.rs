//! Kiln's metadata store: one connection layer and one migration sequence over SQLite (the
//! embedded default, in WAL mode) and PostgreSQL (for scale). Domain crates own their queries and
//! run them through [`MetaStore`].

mod error;
mod migrate;
pub mod query;
mod store;
mod uri;

pub use error::{Error, is_unique_violation};
pub use migrate::{MIGRATIONS, Migration};
pub use store::{Dialect, MetaStore, StoreOptions};
pub use uri::DatabaseUri;

/// The row, transaction and pool types domain crates use with sqlx.
pub use sqlx::any::{Any, AnyRow};
pub use sqlx::AnyPool;
pub type Transaction<'a> = sqlx::Transaction<'a, Any>;
