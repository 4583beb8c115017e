//! Building SQL with bound parameters: text from a user only ever enters a query as a bind.
//! Also the pieces every search compiles its filters with.

use kiln_core::search::{Comparison, Op, PageToken, Value};

use crate::{Bind, Dialect, Query};

/// How many keys go into one `IN (...)` list; well under both backends' bind limits.
pub const IN_CHUNK: usize = 900;

/// A query under construction: SQL text with placeholders and their values.
///
/// SQLite gets anonymous `?` placeholders: it looks numbered ones (`$n`) up by name with a
/// linear scan per bind, which made a 3,000-value insert spend 80% of its time binding.
#[derive(Debug)]
pub struct Sql {
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

    pub fn build(self) -> Query {
        Query::with_binds(self.text, self.binds)
    }
}

/// `column <op> value` for text comparisons; ILIKE is lower() on both sides on every backend.
pub fn text_comparison(q: &mut Sql, column: &str, op: Op, value: &Value) -> Result<(), kiln_core::Error> {
    match (op, value) {
        (Op::ILike, Value::String(s)) => {
            q.push(&format!("LOWER({column}) LIKE LOWER(")).bind_text(s).push(")");
        }
        (Op::In | Op::NotIn, Value::List(items)) => {
            q.push(column).push(if op == Op::In { " IN " } else { " NOT IN " });
            q.bind_list(items.iter().map(|s| Bind::Text(s.clone())));
        }
        (Op::Eq | Op::Ne | Op::Like, Value::String(s)) => {
            q.push(&format!("{column} {} ", op.as_str())).bind_text(s);
        }
        _ => return Err(kiln_core::Error::invalid(format!("cannot compare text with {}", op.as_str()))),
    }
    Ok(())
}

/// `column <op> number`.
pub fn numeric_comparison(q: &mut Sql, column: &str, op: Op, value: &Value) -> Result<(), kiln_core::Error> {
    let Value::Number(n) = value else {
        return Err(kiln_core::Error::invalid(format!("{column} is compared with a number")));
    };
    q.push(&format!("{column} {} ", op.as_str())).bind(Bind::Float(*n));
    Ok(())
}

/// A condition on a key/value table (params, tags): the key exists (or not) for the row
/// `link` ties it to, with a value that matches.
pub fn key_value_condition(q: &mut Sql, table: &str, link: &str, key: &str, c: &Comparison) -> Result<(), kiln_core::Error> {
    q.push(if c.op == Op::IsNull { "NOT EXISTS" } else { "EXISTS" });
    q.push(&format!(" (SELECT 1 FROM {table} t WHERE {link} AND t.key = ")).bind_text(key);
    if !matches!(c.op, Op::IsNull | Op::IsNotNull) {
        q.push(" AND ");
        text_comparison(q, "t.value", c.op, &c.value)?;
    }
    q.push(")");
    Ok(())
}

/// Fetches one row more than the page holds, to know whether another page follows.
pub fn page(q: &mut Sql, max_results: i64, token: PageToken) {
    q.push(" LIMIT ").bind_int(max_results + 1).push(" OFFSET ");
    q.bind_int(i64::try_from(token.offset).unwrap_or(i64::MAX));
}

/// Cuts the extra row [`page`] fetched and gives the token of the next page, if there is one.
pub fn next_token<T>(items: &mut Vec<T>, max_results: i64, token: PageToken) -> Option<String> {
    let max = usize::try_from(max_results).unwrap_or(usize::MAX);
    if items.len() > max {
        items.truncate(max);
        Some(PageToken { offset: token.offset + max as u64 }.encode())
    } else {
        None
    }
}

/// SQL's word for an order direction.
pub fn direction(ascending: bool) -> &'static str {
    if ascending { "ASC" } else { "DESC" }
}
