//! MLflow's scoring protocol, as `mlflow models serve` answers it: `POST /invocations` with
//! JSON (`dataframe_split`, `dataframe_records`, `instances`, `inputs`) or CSV, answered as
//! `{"predictions": {output: values}}`; `/ping`, `/health` and `/version`.
//!
//! A data frame's columns, in order, are the features of the model's one input; `instances` and
//! `inputs` give the input's rows as nested lists, or several inputs by name.

use std::collections::HashMap;
use std::fmt;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_serving::{InferRequest, IoSpec, LoadedModel, Nested, Tensor, data_from_json, data_from_json_text};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{OipError, ServingState};

pub(super) async fn ping() -> &'static str {
    "\n"
}

pub(super) async fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

pub(super) async fn invocations(State(s): State<ServingState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, OipError> {
    let endpoints = s.serving.endpoints();
    let name = match endpoints.as_slice() {
        [one] => one.name.clone(),
        [] => return Err(OipError::new(StatusCode::SERVICE_UNAVAILABLE, "no model is served here")),
        several => {
            return Err(OipError::invalid(format!(
                "{} models are served here; name one with /models/<name>/invocations ({})",
                several.len(),
                several.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    };
    score(&s, &name, &headers, body).await
}

pub(super) async fn model_invocations(
    State(s): State<ServingState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OipError> {
    score(&s, &model, &headers, body).await
}

async fn score(s: &ServingState, name: &str, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, OipError> {
    let model = s.serving.model(name, None)?;
    let model = model.as_ref();
    let body = body.map_err(|e| OipError::new(e.status(), e.body_text()))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let inputs = match media.as_str() {
        "application/json" | "" => from_json(model, &body)?,
        "text/csv" => from_csv(model, &body)?,
        other => {
            return Err(OipError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("this server takes application/json or text/csv, not {other}"),
            ));
        }
    };
    let request = InferRequest { id: None, request_id: super::request_id_of(headers), inputs, outputs: None };
    let response = s.serving.infer(name, None, request).await?;
    // {"predictions": {output: nested values, ...}}, outputs in the model's order.
    let mut body = String::from("{\"predictions\":{");
    for (i, t) in response.outputs.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let name = serde_json::to_string(&t.name).unwrap_or_default();
        let values = serde_json::to_string(&Nested(&t.data, &t.shape))
            .map_err(|e| OipError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the answer: {e}")))?;
        body.push_str(&name);
        body.push(':');
        body.push_str(&values);
    }
    body.push_str("}}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A data frame's rows as the one input's features.
fn frame_input(model: &LoadedModel, rows: Vec<Vec<Value>>, columns: usize) -> Result<Vec<Tensor>, OipError> {
    let spec = single_input(model, "a data frame")?;
    if let Some(bad) = rows.iter().position(|r| r.len() != columns) {
        return Err(OipError::invalid(format!("row {bad} has {} values, but the frame has {columns} columns", rows[bad].len())));
    }
    let shape = match spec.shape.len() {
        1 if columns == 1 => vec![rows.len()],
        2 => vec![rows.len(), columns],
        _ => {
            return Err(OipError::invalid(format!(
                "the model's input '{}' has the shape {:?}; a data frame can fill only a [rows, columns] input",
                spec.name, spec.shape
            )));
        }
    };
    let flat = Value::Array(rows.into_iter().flatten().collect());
    Ok(vec![Tensor::new(spec.name.clone(), shape, data_from_json(spec.datatype, &spec.name, &flat)?)?])
}

fn single_input<'m>(model: &'m LoadedModel, what: &str) -> Result<&'m IoSpec, OipError> {
    match model.inputs.as_slice() {
        [one] => Ok(one),
        several => Err(OipError::invalid(format!(
            "{what} fills a model with one input; the model {} takes {} ({}): send them by name with \"inputs\"",
            model.name,
            several.len(),
            several.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[derive(Deserialize)]
struct Split {
    #[serde(default)]
    columns: Option<Vec<Value>>,
    data: Vec<Vec<Value>>,
}

/// One record of `dataframe_records`, its columns in the order they were written.
struct Record(Vec<Value>);

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Record;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a record: an object of column names and values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
                let mut values = Vec::new();
                while let Some((_, v)) = map.next_entry::<String, Value>()? {
                    values.push(v);
                }
                Ok(Record(values))
            }
        }
        d.deserialize_map(V)
    }
}

struct Records(Vec<Record>);

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Records;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of records")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records, A::Error> {
                let mut out = Vec::new();
                while let Some(r) = seq.next_element::<Record>()? {
                    out.push(r);
                }
                Ok(Records(out))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
enum Payload {
    #[serde(rename = "dataframe_split")]
    Split(Split),
    #[serde(rename = "dataframe_records")]
    Records(Records),
    #[serde(rename = "instances")]
    Instances(Box<RawValue>),
    #[serde(rename = "inputs")]
    Inputs(Box<RawValue>),
}

/// The body's one key names the format; MLflow's `params` beside it are not taken.
fn from_json(model: &LoadedModel, body: &[u8]) -> Result<Vec<Tensor>, OipError> {
    let formats = "dataframe_split, dataframe_records, instances or inputs";
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|e| OipError::invalid(format!("the body must be a JSON object with one of {formats}: {e}")))?;
    match payload {
        Payload::Split(split) => {
            let columns = match &split.columns {
                Some(c) => c.len(),
                None => split.data.first().map_or(0, Vec::len),
            };
            frame_input(model, split.data, columns)
        }
        Payload::Records(records) => {
            let columns = records.0.first().map_or(0, |r| r.0.len());
            frame_input(model, records.0.into_iter().map(|r| r.0).collect(), columns)
        }
        Payload::Instances(raw) | Payload::Inputs(raw) => {
            if raw.get().trim_start().starts_with('{') {
                let named: HashMap<String, Box<RawValue>> = serde_json::from_str(raw.get())
                    .map_err(|e| OipError::invalid(format!("the inputs by name must each be a list of rows: {e}")))?;
                let mut out = Vec::with_capacity(named.len());
                for (name, value) in named {
                    let spec = model.inputs.iter().find(|s| s.name == name).ok_or_else(|| {
                        OipError::invalid(format!("the model {} has no input '{name}'", model.name))
                    })?;
                    out.push(nested_tensor(spec, value.get())?);
                }
                Ok(out)
            } else {
                Ok(vec![nested_tensor(single_input(model, "a list of rows")?, raw.get())?])
            }
        }
    }
}

/// Deepest nesting of lists taken for one input.
const MAX_NESTING: usize = 32;

/// The shape nested lists in JSON text spell out: at each depth, the length of the first list
/// there. Empty when the text is not a list.
fn nested_shape(text: &str) -> Result<Vec<usize>, OipError> {
    let (mut shape, mut seen, mut closed): (Vec<usize>, Vec<bool>, Vec<bool>) = (Vec::new(), Vec::new(), Vec::new());
    let mut depth = 0usize;
    for b in text.bytes() {
        match b {
            b'[' => {
                if depth > 0 && !closed[depth - 1] {
                    seen[depth - 1] = true;
                }
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(OipError::invalid("the data is nested too deeply"));
                }
                if shape.len() < depth {
                    shape.push(0);
                    seen.push(false);
                    closed.push(false);
                }
            }
            b']' => {
                let Some(level) = depth.checked_sub(1) else { break };
                if !closed[level] {
                    shape[level] += usize::from(seen[level]);
                    closed[level] = true;
                }
                depth = level;
            }
            b',' if depth > 0 && !closed[depth - 1] => shape[depth - 1] += 1,
            b' ' | b'\n' | b'\r' | b'\t' | b',' => {}
            _ if depth > 0 && !closed[depth - 1] => seen[depth - 1] = true,
            _ => {}
        }
    }
    // A list that stayed empty ends the shape there (`[[]]` is [1, 0]).
    Ok(shape.iter().zip(&seen).position(|(_, seen)| !seen).map_or(shape.clone(), |i| shape[..=i].to_vec()))
}

/// A tensor from nested lists in JSON text, its shape read from the nesting (which must be even).
fn nested_tensor(spec: &IoSpec, text: &str) -> Result<Tensor, OipError> {
    let mut shape = nested_shape(text)?;
    if shape.is_empty() {
        return Err(OipError::invalid(format!("input '{}' must be a list of rows", spec.name)));
    }
    if shape.len() + 1 == spec.shape.len() && spec.shape.last() == Some(&1) {
        shape.push(1);
    }
    let data = data_from_json_text(spec.datatype, &spec.name, text)?;
    Tensor::new(spec.name.clone(), shape.clone(), data).map_err(|_| {
        OipError::invalid(format!("input '{}': the rows are not all the same shape (the first is {:?})", spec.name, &shape[1..]))
    })
}

/// CSV with a header row: each further line a row of numbers.
fn from_csv(model: &LoadedModel, body: &[u8]) -> Result<Vec<Tensor>, OipError> {
    let text = std::str::from_utf8(body).map_err(|_| OipError::invalid("the CSV body is not UTF-8"))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| OipError::invalid("the CSV body is empty: it needs a header row"))?;
    let columns = header.split(',').count();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let row = line
            .split(',')
            .map(|cell| {
                let cell = cell.trim();
                cell.parse::<f64>()
                    .ok()
                    .and_then(|x| if x.fract() == 0.0 && x.abs() < 9.0e15 { Some(json!(x as i64)) } else { serde_json::Number::from_f64(x).map(Value::Number) })
                    .ok_or_else(|| OipError::invalid(format!("CSV row {}: '{cell}' is not a number", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    frame_input(model, rows, columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_serving::DataType;

    #[test]
    fn records_keep_their_column_order() {
        let r: Records = serde_json::from_str(r#"[{"b": 1, "a": 2}, {"b": 3, "a": 4}]"#).unwrap();
        assert_eq!(r.0[0].0, vec![json!(1), json!(2)]);
    }

    #[test]
    fn a_nested_tensor_needs_even_rows() {
        let spec = IoSpec { name: "x".into(), datatype: DataType::Fp32, shape: vec![-1, 2] };
        assert_eq!(nested_tensor(&spec, "[[1, 2], [3, 4]]").unwrap().shape, vec![2, 2]);
        assert!(nested_tensor(&spec, "[[1, 2], [3]]").is_err());
        assert!(nested_tensor(&spec, "7").is_err());
    }

    #[test]
    fn shapes_come_from_the_first_list_at_each_depth() {
        let shape = |text: &str| nested_shape(text).unwrap();
        assert_eq!(shape("[[1, 2, 3], [4, 5, 6]]"), vec![2, 3]);
        assert_eq!(shape(" [ [ [1,2] , [3,4] ] ] "), vec![1, 2, 2]);
        assert_eq!(shape("[1]"), vec![1]);
        assert_eq!(shape("[]"), vec![0]);
        assert_eq!(shape("[[]]"), vec![1, 0]);
        assert_eq!(shape("[[1e-3, -2.5E+2], [true, false]]"), vec![2, 2]);
        assert_eq!(shape("3"), Vec::<usize>::new());
        assert!(nested_shape(&format!("{}{}", "[".repeat(40), "]".repeat(40))).is_err());
    }
}
