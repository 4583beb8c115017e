//! Reading MLflow requests: a GET's query string or a POST's JSON body, into one typed struct.
//! Any failure is a 400 that names the field and says what was expected.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A request's parameters, from the query string (GET) or the JSON body (other methods).
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if req.method() == Method::GET {
            let query = req.uri().query().unwrap_or("");
            return from_query(query).map(Params);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "INVALID_PARAMETER_VALUE",
                    message: format!("The request body is too large: {}", rejection.body_text()),
                }
            } else {
                ApiError::invalid(format!("Could not read the request body: {}", rejection.body_text()))
            }
        })?;
        from_json(&bytes).map(Params)
    }
}

fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { bytes };
    prescan(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!("The request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::invalid(format!("Invalid request body: {inner}"))
        } else {
            ApiError::invalid(format!("Invalid value for parameter '{path}': {inner}"))
        }
    })?;
    de.end().map_err(|e| ApiError::invalid(format!("The request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Parameters that are lists: in a query string they may appear once or repeated.
const LIST_PARAMS: &[&str] = &["run_ids", "experiment_ids", "order_by", "stages"];

/// Query parameters as a JSON object: list parameters become lists, as does any repeated key.
fn from_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut object = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_component(raw_key)?;
        let value = Value::String(decode_component(raw_value)?);
        match object.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None if LIST_PARAMS.contains(&key.as_str()) => {
                object.insert(key, Value::Array(vec![value]));
            }
            None => {
                object.insert(key, value);
            }
        }
    }
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid(format!("Invalid value for query parameter '{path}': {}", e.into_inner()))
    })
}

/// Percent-decodes one query component (`+` is a space); invalid UTF-8 and NUL are refused.
fn decode_component(raw: &str) -> Result<String, ApiError> {
    let decoded = kiln_core::text::percent_decode(raw.replace('+', " ").as_bytes());
    if decoded.contains(&0) {
        return Err(nul_refused());
    }
    String::from_utf8(decoded).map_err(|_| ApiError::invalid("A query parameter is not valid UTF-8 once decoded"))
}

/// Text with NUL cannot be stored by every backend (PostgreSQL refuses it), so it is refused
/// everywhere, before anything is read or written.
fn nul_refused() -> ApiError {
    ApiError::invalid("Text values cannot contain the NUL character (\\u0000)")
}

/// Deepest nesting of arrays and objects a request may have; MLflow's requests need four.
const MAX_DEPTH: usize = 64;

/// One pass over the raw JSON before it is parsed: refuses nesting deeper than [`MAX_DEPTH`]
/// (even inside fields that would be ignored) and `\\u0000` escapes inside strings. Outside
/// strings valid JSON has no backslashes or quotes, and inside them every escape is a backslash
/// and one character (or `uXXXX`), so stepping over escapes keeps the scan exact.
fn prescan(json: &[u8]) -> Result<(), ApiError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0;
    while i < json.len() {
        match (in_string, json[i]) {
            (true, b'\\') => {
                if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                    return Err(nul_refused());
                }
                i += 1;
            }
            (true, b'"') => in_string = false,
            (false, b'"') => in_string = true,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ApiError::invalid(format!(
                        "The request body nests arrays and objects more than {MAX_DEPTH} levels deep"
                    )));
                }
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_component("a%20b+c").unwrap(), "a b c");
        assert_eq!(decode_component("100%").unwrap(), "100%");
        assert_eq!(decode_component("%e2%82%ac").unwrap(), "\u{20ac}");
        assert!(decode_component("%ff%fe").is_err());
    }

    #[test]
    fn nul_is_refused() {
        assert!(prescan(br#"{"a": "x\u0000y"}"#).is_err());
        assert!(prescan(br#"{"a": "x\\u0000y"}"#).is_ok());
        assert!(prescan(br#"{"a": "x\\\u0000"}"#).is_err());
        assert!(prescan(br#"{"a": "\"\u0000"}"#).is_err());
        assert!(from_json::<Value>(br#"{"key": "a\u0000"}"#).is_err());
        assert!(decode_component("a%00b").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_even_where_ignored() {
        let deep = format!("{{\"a\": 1, \"ignored\": {}{}}}", "[".repeat(65), "]".repeat(65));
        assert!(prescan(deep.as_bytes()).is_err());
        let fine = format!("{{\"brackets\": \"{}\", \"x\": [[1]]}}", "[".repeat(100));
        assert!(prescan(fine.as_bytes()).is_ok());
    }

    #[test]
    fn repeated_keys_become_lists() {
        let v: Value = from_query("run_ids=a&run_ids=b&metric_key=loss&order_by=name").unwrap();
        assert_eq!(v["run_ids"], serde_json::json!(["a", "b"]));
        assert_eq!(v["metric_key"], "loss");
        assert_eq!(v["order_by"], serde_json::json!(["name"]));
    }

    #[test]
    fn json_errors_are_400s() {
        assert!(from_json::<Value>(b"{").is_err());
        assert!(from_json::<Value>(b"{} trailing").is_err());
        let deep = "[".repeat(100_000);
        assert_eq!(from_json::<Value>(deep.as_bytes()).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(from_json::<Value>(b"").unwrap(), serde_json::json!({}));
    }
}
