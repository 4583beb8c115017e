//! Building SQL with bound parameters: text from a user only ever enters a query as a bind.

use kiln_store::{Any, Dialect};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::AssertSqlSafe;

/// How many keys go into one `IN (...)` list; well under both backends' bind limits.
pub(crate) const IN_CHUNK: usize = 900;

#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    Float(f64),
    Text(String),
}

/// A query under construction: SQL text with placeholders and their values.
///
/// SQLite gets anonymous `?` placeholders: it looks numbered ones (`$n`) up by name with a
/// linear scan per bind, which made a 3,000-value insert spend 80% of its time binding.
#[derive(Debug)]
pub(crate) struct Sql {
    pub text: String,
    binds: Vec<Bind>,
    dialect: Dialect,
}

impl Sql {
    pub fn new(dialect: Dialect, text: &str) -> Sql {
        Sql { text: text.to_string(), binds: Vec::new(), dialect }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.binds.len().to_string());
            }
        }
        self
    }

    pub fn bind_text(&mut self, value: &str) -> &mut Self {
        self.bind(Bind::Text(value.to_string()))
    }

    pub fn bind_int(&mut self, value: i64) -> &mut Self {
        self.bind(Bind::Int(value))
    }

    /// Appends `(p1, p2, ...)` bound to the values.
    pub fn bind_list<I: IntoIterator<Item = Bind>>(&mut self, values: I) -> &mut Self {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }

    pub fn build(self) -> Query<'static, Any, AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.text));
        for b in self.binds {
            q = match b {
                Bind::Int(v) => q.bind(v),
                Bind::Float(v) => q.bind(v),
                Bind::Text(v) => q.bind(v),
            };
        }
        q
    }
}
