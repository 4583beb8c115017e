//! Splits search text into tokens, remembering where each one starts for error messages.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A bare word: an identifier such as `metrics.loss`, a keyword such as `and`, or a number.
    Word(String),
    /// Text in single quotes: always a value.
    Single(String),
    /// Text in double quotes: a quoted key after `metrics.`, or a value.
    Double(String),
    /// Text in backticks: a quoted key.
    Backtick(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(pos, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                let tok = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                };
                tokens.push(Token { tok, pos });
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let next = chars.peek().map(|&(_, n)| n);
                let op = match (c, next) {
                    ('!', Some('=')) => "!=",
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', Some('>')) => "<>",
                    ('=', Some('=')) => "==",
                    ('=', _) => "=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err(format!("unexpected '!' at position {pos}; did you mean '!='?")),
                };
                if op.len() == 2 {
                    chars.next();
                }
                tokens.push(Token { tok: Tok::Op(op), pos });
            }
            '\'' | '"' | '`' => {
                chars.next();
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, ch)) = chars.next() {
                    if ch == c {
                        // A doubled quote inside a quoted string stands for the quote itself.
                        if chars.peek().map(|&(_, n)| n) == Some(c) {
                            chars.next();
                            value.push(c);
                            continue;
                        }
                        closed = true;
                        break;
                    }
                    value.push(ch);
                }
                if !closed {
                    return Err(format!("unterminated quoted text starting at position {pos}: add the closing {c}"));
                }
                let tok = match c {
                    '\'' => Tok::Single(value),
                    '"' => Tok::Double(value),
                    _ => Tok::Backtick(value),
                };
                tokens.push(Token { tok, pos });
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, ch)) = chars.peek() {
                    if ch.is_whitespace() || "()=!<>,'\"`".contains(ch) {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                tokens.push(Token { tok: Tok::Word(word), pos });
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_a_comparison() {
        assert_eq!(
            toks("metrics.loss<=0.5"),
            vec![Tok::Word("metrics.loss".into()), Tok::Op("<="), Tok::Word("0.5".into())]
        );
    }

    #[test]
    fn quoted_forms() {
        assert_eq!(
            toks(r#"params.`a b` = 'it''s' "x""#),
            vec![
                Tok::Word("params.".into()),
                Tok::Backtick("a b".into()),
                Tok::Op("="),
                Tok::Single("it's".into()),
                Tok::Double("x".into())
            ]
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(tokenize("params.a = 'x").is_err());
    }
}
