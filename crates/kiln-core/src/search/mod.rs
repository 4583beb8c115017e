//! MLflow's search language: `metrics.loss < 0.5 and params.lr = '0.01'`, and `order_by` clauses.
//!
//! Text is parsed into an AST ([`Filter`], [`OrderBy`]) and checked against what a search allows
//! ([`Schema`]: runs or experiments). Backends compile the AST to parameterised SQL: a value
//! from the user is always a bound parameter, and a key is only ever matched against known names
//! or bound, never pasted into SQL.

mod lexer;
mod parse;
mod schema;
mod token;

pub use parse::{parse_filter, parse_order_by};
pub use schema::Schema;
pub use token::PageToken;

/// A conjunction of comparisons; MLflow's language has no `OR`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub clauses: Vec<Comparison>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub entity: Entity,
    pub op: Op,
    pub value: Value,
}

/// What a clause talks about: `metrics.loss`, `params.lr`, `tags.team`, `attributes.status`,
/// `datasets.name`. Attribute keys are normalised to their canonical names (`created` becomes
/// `start_time`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entity {
    Metric(String),
    Param(String),
    Tag(String),
    Attribute(String),
    Dataset(String),
}

impl Entity {
    pub fn key(&self) -> &str {
        match self {
            Entity::Metric(k) | Entity::Param(k) | Entity::Tag(k) | Entity::Attribute(k) | Entity::Dataset(k) => k,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Entity::Metric(_) => "metric",
            Entity::Param(_) => "parameter",
            Entity::Tag(_) => "tag",
            Entity::Attribute(_) => "attribute",
            Entity::Dataset(_) => "dataset",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    String(String),
    List(Vec<String>),
    /// The operand of IS NULL / IS NOT NULL.
    Null,
}

/// One `order_by` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub ascending: bool,
}

#[cfg(test)]
mod tests;
