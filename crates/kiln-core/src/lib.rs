//! Kiln's core: the error kinds every crate maps to, ids, time, and the search language.
//! No I/O lives here.

pub mod error;
pub mod ids;
pub mod search;
pub mod text;
pub mod time;

pub use error::{Error, ErrorKind};
