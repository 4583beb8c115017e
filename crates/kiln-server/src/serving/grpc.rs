//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), as `tritonclient`'s
//! gRPC client speaks it: tensors arrive typed (`contents`) or raw (`raw_input_contents`), and
//! answers carry raw little-endian outputs.

use std::sync::Arc;

use kiln_core::ErrorKind;
use kiln_serving::{DataType, InferRequest, Serving, Tensor, TensorData};
use tonic::{Request, Response, Status};

pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use proto::model_infer_response::InferOutputTensor;
use proto::model_metadata_response::TensorMetadata;
use proto::*;

/// The gRPC service over the models of `serving`; messages up to `max_message_bytes`.
pub fn service(serving: Arc<Serving>, max_message_bytes: usize) -> GrpcInferenceServiceServer<Inference> {
    GrpcInferenceServiceServer::new(Inference { serving })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}

/// The gRPC routes, to serve on their own listener.
pub fn router(serving: Arc<Serving>, max_message_bytes: usize) -> axum::Router {
    tonic::service::Routes::new(service(serving, max_message_bytes)).into_axum_router()
}

pub struct Inference {
    serving: Arc<Serving>,
}

fn status(e: kiln_serving::Error) -> Status {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::InvalidArgument | ErrorKind::AlreadyExists | ErrorKind::InvalidState => Status::invalid_argument(message),
        ErrorKind::NotFound => Status::not_found(message),
        ErrorKind::Unavailable => Status::unavailable(message),
        ErrorKind::Internal => {
            tracing::error!(error = %message, "gRPC inference failed");
            Status::internal(message)
        }
    }
}

fn version(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

#[tonic::async_trait]
impl GrpcInferenceService for Inference {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(&self, request: Request<ModelReadyRequest>) -> Result<Response<ModelReadyResponse>, Status> {
        let r = request.into_inner();
        self.serving.model(&r.name, version(&r.version)).map_err(status)?;
        Ok(Response::new(ModelReadyResponse { ready: true }))
    }

    async fn server_metadata(&self, _: Request<ServerMetadataRequest>) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "kiln".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec!["binary_tensor_data".into(), "model_repository".into()],
        }))
    }

    async fn model_metadata(&self, request: Request<ModelMetadataRequest>) -> Result<Response<ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        let m = self.serving.model(&r.name, version(&r.version)).map_err(status)?;
        let io = |specs: &[kiln_serving::IoSpec]| {
            specs
                .iter()
                .map(|s| TensorMetadata { name: s.name.clone(), datatype: s.datatype.as_str().into(), shape: s.shape.clone() })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: m.name.clone(),
            versions: vec![m.version.clone()],
            platform: "onnx".into(),
            inputs: io(&m.inputs),
            outputs: io(&m.outputs),
        }))
    }

    async fn model_infer(&self, request: Request<ModelInferRequest>) -> Result<Response<ModelInferResponse>, Status> {
        let request_id = request
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string);
        let r = request.into_inner();
        self.serving.model(&r.model_name, version(&r.model_version)).map_err(status)?;
        let inputs = read_inputs(r.inputs, r.raw_input_contents).map_err(Status::invalid_argument)?;
        let outputs = (!r.outputs.is_empty()).then(|| r.outputs.into_iter().map(|o| o.name).collect());
        let id = version(&r.id).map(str::to_string);
        let request = InferRequest { id, request_id: Some(request_id), inputs, outputs };
        let answer = self.serving.infer(&r.model_name, version(&r.model_version), request).await.map_err(status)?;
        let mut raw = Vec::with_capacity(answer.outputs.len());
        let outputs = answer
            .outputs
            .iter()
            .map(|t| {
                let mut bytes = Vec::new();
                t.data.write_le_bytes(&mut bytes);
                raw.push(bytes);
                InferOutputTensor {
                    name: t.name.clone(),
                    datatype: t.datatype().as_str().into(),
                    shape: t.shape.iter().map(|&d| d as i64).collect(),
                    parameters: Default::default(),
                    contents: None,
                }
            })
            .collect();
        Ok(Response::new(ModelInferResponse {
            model_name: answer.model_name,
            model_version: answer.model_version,
            id: answer.id.unwrap_or_default(),
            parameters: Default::default(),
            outputs,
            raw_output_contents: raw,
        }))
    }
}

/// The inputs, from raw bytes (one entry per input) or from each input's typed contents.
fn read_inputs(inputs: Vec<model_infer_request::InferInputTensor>, raw: Vec<Vec<u8>>) -> Result<Vec<Tensor>, String> {
    if !raw.is_empty() && raw.len() != inputs.len() {
        return Err(format!("raw_input_contents has {} entries for {} inputs; give one per input", raw.len(), inputs.len()));
    }
    let mut raw = raw.into_iter();
    inputs
        .into_iter()
        .map(|input| {
            let datatype = DataType::parse(&input.datatype)
                .ok_or_else(|| format!("input '{}': the datatype '{}' is not one Kiln serves", input.name, input.datatype))?;
            let shape = input
                .shape
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| format!("input '{}': the shape {:?} has a negative size", input.name, input.shape)))
                .collect::<Result<Vec<_>, _>>()?;
            let data = match raw.next() {
                Some(bytes) => {
                    let expected = kiln_serving::element_count(&shape).and_then(|n| n.checked_mul(datatype.size()));
                    if expected != Some(bytes.len()) {
                        return Err(format!(
                            "input '{}': {} bytes of raw data, but the shape {shape:?} of {} needs {}",
                            input.name,
                            bytes.len(),
                            datatype.as_str(),
                            expected.map_or("more than any request can hold".to_string(), |n| format!("{n} bytes"))
                        ));
                    }
                    TensorData::from_le_bytes(datatype, &bytes).map_err(|e| e.to_string())?
                }
                None => typed(&input.name, datatype, input.contents.unwrap_or_default())?,
            };
            Tensor::new(input.name, shape, data).map_err(|e| e.to_string())
        })
        .collect()
}

/// Typed contents, from the field the protocol names for the datatype.
fn typed(name: &str, datatype: DataType, c: InferTensorContents) -> Result<TensorData, String> {
    fn narrow<A: Copy, B: TryFrom<A>>(name: &str, values: Vec<A>, what: &str) -> Result<Vec<B>, String> {
        values.into_iter().map(|v| B::try_from(v).map_err(|_| format!("input '{name}': a value does not fit {what}"))).collect()
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(c.bool_contents),
        DataType::Uint8 => TensorData::Uint8(narrow(name, c.uint_contents, "UINT8")?),
        DataType::Uint16 => TensorData::Uint16(narrow(name, c.uint_contents, "UINT16")?),
        DataType::Uint32 => TensorData::Uint32(c.uint_contents),
        DataType::Uint64 => TensorData::Uint64(c.uint64_contents),
        DataType::Int8 => TensorData::Int8(narrow(name, c.int_contents, "INT8")?),
        DataType::Int16 => TensorData::Int16(narrow(name, c.int_contents, "INT16")?),
        DataType::Int32 => TensorData::Int32(c.int_contents),
        DataType::Int64 => TensorData::Int64(c.int64_contents),
        DataType::Fp32 => TensorData::Fp32(c.fp32_contents),
        DataType::Fp64 => TensorData::Fp64(c.fp64_contents),
    })
}
