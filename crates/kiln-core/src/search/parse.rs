//! The recursive-descent parser for filters and `order_by` clauses.

use super::lexer::{Tok, Token, tokenize};
use super::{Comparison, Entity, Filter, Op, OrderBy, Schema, Value};
use crate::Error;

/// Longest filter or order_by clause accepted; real ones are a few hundred characters.
pub const MAX_QUERY_LEN: usize = 64 * 1024;

/// Parses a filter such as `metrics.loss < 0.5 and params.lr = '0.01'`. An empty or blank
/// filter matches everything.
pub fn parse_filter(text: &str, schema: Schema) -> Result<Filter, Error> {
    check_len(text, "filter")?;
    let tokens = tokenize(text).map_err(|e| invalid_filter(text, &e))?;
    let mut p = Parser { tokens: &tokens, at: 0, text, what: "filter" };
    let mut clauses = Vec::new();
    loop {
        // Empty clauses around AND are skipped, as MLflow does, so filters built by joining
        // parts with " AND " work when a part is empty.
        while matches!(p.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("and")) {
            p.next();
        }
        if p.peek().is_none() {
            break;
        }
        let entity = p.entity(schema)?;
        let op = p.op(&entity)?;
        let value = p.value(op, &entity)?;
        let comparison = Comparison { entity, op, value };
        schema.check_comparison(&comparison).map_err(|e| invalid_filter(text, &e))?;
        clauses.push(comparison);
        match p.next() {
            None => break,
            Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("and") => {}
            Some(Token { tok: Tok::Word(w), pos }) if w.eq_ignore_ascii_case("or") => {
                return Err(invalid_filter(
                    text,
                    &format!("OR at position {pos} is not supported: clauses can only be joined with AND"),
                ));
            }
            Some(t) => {
                return Err(invalid_filter(
                    text,
                    &format!("expected AND or the end of the filter at position {}, found {}", t.pos, describe(&t.tok)),
                ));
            }
        }
    }
    Ok(Filter { clauses })
}

/// Parses `order_by` clauses such as `metrics.loss DESC` or `attributes.start_time`.
pub fn parse_order_by<S: AsRef<str>>(clauses: &[S], schema: Schema) -> Result<Vec<OrderBy>, Error> {
    let parsed = clauses.iter().map(|c| parse_one_order_by(c.as_ref(), schema)).collect::<Result<Vec<_>, _>>()?;
    for (i, a) in parsed.iter().enumerate() {
        if parsed[..i].iter().any(|b| b.entity == a.entity) {
            return Err(Error::invalid(format!(
                "order_by names {} '{}' twice: order by each field once",
                a.entity.kind_name(),
                a.entity.key()
            )));
        }
    }
    Ok(parsed)
}

fn parse_one_order_by(text: &str, schema: Schema) -> Result<OrderBy, Error> {
    check_len(text, "order_by clause")?;
    let tokens = tokenize(text).map_err(|e| invalid_order_by(text, &e))?;
    if tokens.is_empty() {
        return Err(invalid_order_by(text, "it is empty"));
    }
    let mut p = Parser { tokens: &tokens, at: 0, text, what: "order_by clause" };
    let entity = p.entity(schema)?;
    let ascending = match p.next() {
        None => true,
        Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("asc") => true,
        Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("desc") => false,
        Some(t) => {
            return Err(invalid_order_by(
                text,
                &format!("expected ASC or DESC at position {}, found {}", t.pos, describe(&t.tok)),
            ));
        }
    };
    if let Some(t) = p.next() {
        return Err(invalid_order_by(
            text,
            &format!("unexpected {} at position {} after the direction", describe(&t.tok), t.pos),
        ));
    }
    schema.check_order_by(&entity).map_err(|e| invalid_order_by(text, &e))?;
    Ok(OrderBy { entity, ascending })
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    text: &'a str,
    what: &'static str,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn fail(&self, msg: &str) -> Error {
        invalid(self.what, self.text, msg)
    }

    fn entity(&mut self, schema: Schema) -> Result<Entity, Error> {
        let Some(first) = self.next() else {
            return Err(self.fail("expected an identifier such as metrics.loss, found the end"));
        };
        let (prefix, key) = match first.tok {
            Tok::Word(word) => match word.split_once('.') {
                Some((prefix, "")) => {
                    let key = match self.next() {
                        Some(Token { tok: Tok::Double(k) | Tok::Backtick(k), .. }) => k,
                        _ => {
                            return Err(self.fail(&format!(
                                "expected a key after '{word}' at position {}: write {word}name or {word}`quoted name`",
                                first.pos
                            )));
                        }
                    };
                    (Some(prefix.to_string()), key)
                }
                Some((prefix, key)) => (Some(prefix.to_string()), key.to_string()),
                None => (None, word),
            },
            Tok::Double(key) | Tok::Backtick(key) => (None, key),
            other => {
                return Err(self.fail(&format!(
                    "expected an identifier such as metrics.loss at position {}, found {}",
                    first.pos,
                    describe(&other)
                )));
            }
        };
        schema.entity(prefix.as_deref(), key).map_err(|e| self.fail(&e))
    }

    fn op(&mut self, entity: &Entity) -> Result<Op, Error> {
        let Some(t) = self.next() else {
            return Err(self.fail(&format!(
                "expected a comparison operator after {} '{}', found the end",
                entity.kind_name(),
                entity.key()
            )));
        };
        let op = match &t.tok {
            Tok::Op("=") => Op::Eq,
            Tok::Op("!=") => Op::Ne,
            Tok::Op("<") => Op::Lt,
            Tok::Op("<=") => Op::Le,
            Tok::Op(">") => Op::Gt,
            Tok::Op(">=") => Op::Ge,
            Tok::Op("==") => return Err(self.fail(&format!("'==' at position {} is not an operator: use '='", t.pos))),
            Tok::Op("<>") => return Err(self.fail(&format!("'<>' at position {} is not an operator: use '!='", t.pos))),
            Tok::Word(w) if w.eq_ignore_ascii_case("like") => Op::Like,
            Tok::Word(w) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Tok::Word(w) if w.eq_ignore_ascii_case("in") => Op::In,
            Tok::Word(w) if w.eq_ignore_ascii_case("is") => {
                let negated = matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("not"));
                if negated {
                    self.next();
                }
                match self.next() {
                    Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("null") => {}
                    _ => return Err(self.fail(&format!("expected NULL after IS at position {}", t.pos))),
                }
                if negated { Op::IsNotNull } else { Op::IsNull }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") => match self.next() {
                Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("in") => Op::NotIn,
                _ => return Err(self.fail(&format!("expected IN after NOT at position {}", t.pos))),
            },
            other => {
                return Err(self.fail(&format!(
                    "expected a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN) at position {}, found {}",
                    t.pos,
                    describe(other)
                )));
            }
        };
        Ok(op)
    }

    fn value(&mut self, op: Op, entity: &Entity) -> Result<Value, Error> {
        if matches!(op, Op::IsNull | Op::IsNotNull) {
            return Ok(Value::Null);
        }
        let Some(t) = self.next() else {
            return Err(self.fail(&format!(
                "expected a value after {} '{}' {}, found the end",
                entity.kind_name(),
                entity.key(),
                op.as_str()
            )));
        };
        if matches!(op, Op::In | Op::NotIn) {
            if t.tok != Tok::LParen {
                return Err(self.fail(&format!(
                    "{} at position {} takes a list in parentheses, such as ('a', 'b')",
                    op.as_str(),
                    t.pos
                )));
            }
            let mut items = Vec::new();
            loop {
                match self.next() {
                    Some(Token { tok: Tok::Single(s) | Tok::Double(s), .. }) => items.push(s),
                    Some(Token { tok: Tok::RParen, .. }) if items.is_empty() => {
                        return Err(self.fail(&format!("the list after {} is empty", op.as_str())));
                    }
                    other => {
                        return Err(self.fail(&format!(
                            "expected a quoted string in the list after {}, found {}",
                            op.as_str(),
                            other.map_or("the end".to_string(), |t| describe(&t.tok))
                        )));
                    }
                }
                match self.next() {
                    Some(Token { tok: Tok::Comma, .. }) => continue,
                    Some(Token { tok: Tok::RParen, .. }) => break,
                    other => {
                        return Err(self.fail(&format!(
                            "expected ',' or ')' in the list after {}, found {}",
                            op.as_str(),
                            other.map_or("the end".to_string(), |t| describe(&t.tok))
                        )));
                    }
                }
            }
            return Ok(Value::List(items));
        }
        match t.tok {
            Tok::Single(s) | Tok::Double(s) => Ok(Value::String(s)),
            Tok::Word(w) => match parse_number(&w) {
                Some(n) => Ok(Value::Number(n)),
                None => Err(self.fail(&format!(
                    "expected a number or a quoted string at position {}, found '{w}': quote text values, as in params.lr = '0.01'",
                    t.pos
                ))),
            },
            other => Err(self.fail(&format!("expected a value at position {}, found {}", t.pos, describe(&other)))),
        }
    }
}

fn parse_number(word: &str) -> Option<f64> {
    let looks_numeric = word
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && word.bytes().any(|b| b.is_ascii_digit());
    if !looks_numeric {
        return None;
    }
    word.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) => format!("'{w}'"),
        Tok::Single(s) => format!("the string '{s}'"),
        Tok::Double(s) => format!("the string \"{s}\""),
        Tok::Backtick(s) => format!("`{s}`"),
        Tok::Op(o) => format!("'{o}'"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
    }
}

fn check_len(text: &str, what: &str) -> Result<(), Error> {
    if text.len() > MAX_QUERY_LEN {
        return Err(Error::invalid(format!(
            "The {what} is {} bytes long; the limit is {MAX_QUERY_LEN} bytes",
            text.len()
        )));
    }
    Ok(())
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

fn invalid(what: &str, text: &str, why: &str) -> Error {
    Error::invalid(format!("Invalid {what} '{}': {why}", shorten(text)))
}

fn invalid_filter(text: &str, why: &str) -> Error {
    invalid("filter", text, why)
}

fn invalid_order_by(text: &str, why: &str) -> Error {
    invalid("order_by clause", text, why)
}
