//! The Open Inference Protocol (KServe v2) over REST, with its binary tensor extension: a
//! request may carry a JSON header of `Inference-Header-Content-Length` bytes followed by raw
//! little-endian tensors (`binary_data_size` per input), and may ask for outputs the same way
//! (`binary_data`, `binary_data_output`). `tritonclient` sends binary data by default.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_serving::{DataType, InferRequest, InferResponse, LoadedModel, ModelSource, Role, Tensor, TensorData, data_from_json_text, element_count};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{OipError, ServingState};

pub(super) const HEADER_LENGTH: &str = "inference-header-content-length";

pub(super) async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

/// Ready once the models asked for at start are loaded.
pub(super) async fn ready(State(s): State<ServingState>) -> Response {
    if s.ready.load(std::sync::atomic::Ordering::Acquire) {
        Json(json!({ "ready": true })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ready": false }))).into_response()
    }
}

pub(super) async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": "kiln",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "model_repository"],
    }))
}

pub(super) async fn model_metadata(State(s): State<ServingState>, Path(model): Path<String>) -> Result<Json<Value>, OipError> {
    let m = s.serving.model(&model, None)?;
    Ok(Json(metadata(&m)))
}

pub(super) async fn model_version_metadata(
    State(s): State<ServingState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<Json<Value>, OipError> {
    let m = s.serving.model(&model, Some(&version))?;
    Ok(Json(metadata(&m)))
}

pub(super) async fn model_ready(State(s): State<ServingState>, Path(model): Path<String>) -> Result<Json<Value>, OipError> {
    let m = s.serving.model(&model, None)?;
    Ok(Json(json!({ "name": m.name, "ready": true })))
}

pub(super) async fn model_version_ready(
    State(s): State<ServingState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<Json<Value>, OipError> {
    let m = s.serving.model(&model, Some(&version))?;
    Ok(Json(json!({ "name": m.name, "ready": true })))
}

fn metadata(m: &LoadedModel) -> Value {
    let io = |specs: &[kiln_serving::IoSpec]| -> Vec<Value> {
        specs.iter().map(|s| json!({ "name": s.name, "datatype": s.datatype.as_str(), "shape": s.shape })).collect()
    };
    json!({
        "name": m.name,
        "versions": [m.version],
        "platform": "onnx",
        "inputs": io(&m.inputs),
        "outputs": io(&m.outputs),
    })
}

pub(super) async fn infer(
    State(s): State<ServingState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OipError> {
    run(&s, &model, None, &headers, body).await
}

pub(super) async fn infer_version(
    State(s): State<ServingState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OipError> {
    run(&s, &model, Some(&version), &headers, body).await
}

async fn run(
    s: &ServingState,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OipError> {
    s.serving.model(model, version)?;
    let body = body.map_err(|e| OipError::new(e.status(), e.body_text()))?;
    let (mut request, binary_outputs) = parse_request(headers, &body)?;
    request.request_id = super::request_id_of(headers);
    let response = s.serving.infer(model, version, request).await?;
    Ok(encode_response(response, &binary_outputs))
}

#[derive(Deserialize)]
struct RequestBody {
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InputBody>,
    #[serde(default)]
    outputs: Option<Vec<OutputBody>>,
}

#[derive(Deserialize)]
struct InputBody {
    name: String,
    shape: Vec<u64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    data: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct OutputBody {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// Which outputs are answered in binary: all (`binary_data_output`) or those named.
#[derive(Debug, Default)]
struct BinaryOutputs {
    all: bool,
    named: Vec<String>,
}

impl BinaryOutputs {
    fn wants(&self, name: &str) -> bool {
        self.all || self.named.iter().any(|n| n == name)
    }
}

fn flag(parameters: &Option<Map<String, Value>>, key: &str) -> Result<bool, OipError> {
    match parameters.as_ref().and_then(|p| p.get(key)) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(OipError::invalid(format!("the parameter '{key}' must be true or false, not {other}"))),
    }
}

/// Splits a body into its JSON header and binary part, and reads the inputs from both.
fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<(InferRequest, BinaryOutputs), OipError> {
    let (json_part, mut binary) = match headers.get(HEADER_LENGTH) {
        Some(value) => {
            let n: usize = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| OipError::invalid(format!("the {HEADER_LENGTH} header must be a whole number of bytes")))?;
            if n > body.len() {
                return Err(OipError::invalid(format!(
                    "the {HEADER_LENGTH} header says the JSON part is {n} bytes, but the body has only {}",
                    body.len()
                )));
            }
            body.split_at(n)
        }
        None => (body, &[][..]),
    };
    let parsed: RequestBody = serde_json::from_slice(json_part).map_err(|e| OipError::invalid(format!("the inference request is not valid: {e}")))?;
    let mut inputs = Vec::with_capacity(parsed.inputs.len());
    for input in parsed.inputs {
        let datatype = DataType::parse(&input.datatype).ok_or_else(|| {
            OipError::invalid(format!("input '{}': the datatype '{}' is not one Kiln serves", input.name, input.datatype))
        })?;
        let shape: Vec<usize> = input.shape.iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
        let binary_size = match input.parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                OipError::invalid(format!("input '{}': binary_data_size must be a whole number of bytes", input.name))
            })?),
        };
        let data = match (binary_size, &input.data) {
            (Some(_), Some(_)) => {
                return Err(OipError::invalid(format!("input '{}' has both JSON data and binary_data_size", input.name)));
            }
            (Some(size), None) => {
                let expected = element_count(&shape).and_then(|n| n.checked_mul(datatype.size()));
                if expected != Some(size as usize) {
                    return Err(OipError::invalid(format!(
                        "input '{}': binary_data_size is {size} bytes, but the shape {shape:?} of {} needs {}",
                        input.name,
                        datatype.as_str(),
                        expected.map_or("more than any request can hold".to_string(), |n| format!("{n} bytes"))
                    )));
                }
                if (size as usize) > binary.len() {
                    return Err(OipError::invalid(format!(
                        "input '{}': binary_data_size is {size} bytes, but only {} bytes of binary data remain",
                        input.name,
                        binary.len()
                    )));
                }
                let (mine, rest) = binary.split_at(size as usize);
                binary = rest;
                TensorData::from_le_bytes(datatype, mine)?
            }
            (None, Some(raw)) => data_from_json_text(datatype, &input.name, raw.get())?,
            (None, None) => return Err(OipError::invalid(format!("input '{}' has no data", input.name))),
        };
        inputs.push(Tensor::new(input.name, shape, data)?);
    }
    if !binary.is_empty() {
        return Err(OipError::invalid(format!("{} bytes of binary data are left after the last input that declares any", binary.len())));
    }
    let mut binary_outputs = BinaryOutputs { all: flag(&parsed.parameters, "binary_data_output")?, named: Vec::new() };
    let outputs = match parsed.outputs {
        Some(list) => {
            let mut names = Vec::with_capacity(list.len());
            for o in list {
                if flag(&o.parameters, "binary_data")? {
                    binary_outputs.named.push(o.name.clone());
                }
                names.push(o.name);
            }
            Some(names)
        }
        None => None,
    };
    Ok((InferRequest { id: parsed.id, request_id: None, inputs, outputs }, binary_outputs))
}

#[derive(Serialize)]
struct Answer<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<AnswerOutput<'a>>,
}

#[derive(Serialize)]
struct AnswerOutput<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a TensorData>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

fn encode_response(response: InferResponse, binary: &BinaryOutputs) -> Response {
    let mut blobs: Vec<u8> = Vec::new();
    let mut any_binary = false;
    let outputs = response
        .outputs
        .iter()
        .map(|t| {
            let mut out = AnswerOutput { name: &t.name, datatype: t.datatype().as_str(), shape: &t.shape, parameters: None, data: None };
            if binary.wants(&t.name) {
                any_binary = true;
                let before = blobs.len();
                t.data.write_le_bytes(&mut blobs);
                out.parameters = Some(BinarySize { binary_data_size: blobs.len() - before });
            } else {
                out.data = Some(&t.data);
            }
            out
        })
        .collect();
    let answer = Answer { model_name: &response.model_name, model_version: &response.model_version, id: response.id.as_deref(), outputs };
    let header = match serde_json::to_vec(&answer) {
        Ok(bytes) => bytes,
        Err(e) => return OipError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the answer: {e}")).into_response(),
    };
    if !any_binary {
        return ([(header::CONTENT_TYPE, "application/json")], header).into_response();
    }
    let length = header.len().to_string();
    let mut body = header;
    body.extend_from_slice(&blobs);
    ([(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::HeaderName::from_static(HEADER_LENGTH), length)], body)
        .into_response()
}

pub(super) async fn repository_index(State(s): State<ServingState>) -> Json<Value> {
    let models: Vec<Value> = s
        .serving
        .endpoints()
        .iter()
        .map(|e| {
            let m = e.model();
            json!({ "name": e.name, "version": m.version, "state": "READY", "source": e.primary.source.to_string() })
        })
        .collect();
    Json(Value::Array(models))
}

/// Loads a model: `{"parameters": {"uri": "models:/fraud@champion"}}` serves a new one (or
/// replaces one) from that source; without a URI, the named model is loaded again from its own.
/// `"role": "challenger"` or `"shadow"` with `"percent"` adds a model beside the primary.
pub(super) async fn repository_load(
    State(s): State<ServingState>,
    Path(model): Path<String>,
    body: Bytes,
) -> Result<Response, OipError> {
    let parameters = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        let parsed: Value = serde_json::from_slice(&body).map_err(|e| OipError::invalid(format!("the load request is not JSON: {e}")))?;
        if !parsed.is_object() {
            return Err(OipError::invalid(format!("the load request must be a JSON object, not {parsed}")));
        }
        match parsed.get("parameters") {
            None => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(other) => return Err(OipError::invalid(format!("parameters must be an object, not {other}"))),
        }
    };
    let uri = match parameters.get("uri") {
        None => None,
        Some(Value::String(uri)) if !uri.is_empty() => Some(uri.clone()),
        Some(other) => return Err(OipError::invalid(format!("parameters.uri must be a model URI or folder, not {other}"))),
    };
    let role = match parameters.get("role").map(|r| r.as_str()) {
        None | Some(Some("primary")) => Role::Primary,
        Some(Some("challenger")) => Role::Challenger,
        Some(Some("shadow")) => Role::Shadow,
        Some(_) => return Err(OipError::invalid("parameters.role must be primary, challenger or shadow")),
    };
    let percent = match parameters.get("percent") {
        None if role == Role::Primary => 100.0,
        Some(p) if role != Role::Primary => p.as_f64().ok_or_else(|| OipError::invalid("parameters.percent must be a number"))?,
        _ => return Err(OipError::invalid("parameters.percent goes with a challenger or shadow role, and they need it")),
    };
    let existing = s.serving.endpoint(&model);
    let same_role = existing.as_ref().and_then(|e| e.variants().find(|v| v.role == role).cloned());
    let log_inferences = match parameters.get("log_inferences") {
        None => None,
        Some(Value::Bool(true)) if !s.serving.has_log() => {
            return Err(OipError::invalid(
                "this server keeps no inference log: start kiln serve with --inference-log-uri or --log-inferences \
                 (kiln server with --serve-log-inferences)",
            ));
        }
        Some(Value::Bool(on)) => Some(*on),
        Some(other) => return Err(OipError::invalid(format!("parameters.log_inferences must be true or false, not {other}"))),
    };
    let (source, mut config) = match (uri, same_role) {
        (Some(uri), known) => (ModelSource::parse(&uri), known.map_or_else(|| s.serving.default_config(), |v| v.config().clone())),
        (None, Some(known)) => (known.source.clone(), known.config().clone()),
        (None, None) => {
            return Err(OipError::new(
                StatusCode::NOT_FOUND,
                format!("no {} named '{model}' is served here; give its source as parameters.uri", role.as_str()),
            ));
        }
    };
    if let Some(on) = log_inferences {
        config.log_inferences = on;
    }
    s.serving.load_variant(&model, role, percent, source, config).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn repository_unload(State(s): State<ServingState>, Path(model): Path<String>) -> Result<Response, OipError> {
    s.serving.unload(&model)?;
    Ok(StatusCode::OK.into_response())
}
