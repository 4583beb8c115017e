//! Model serving: ONNX models (from a folder, a run or the registry) run through ONNX Runtime,
//! with concurrent requests merged into batches, checked against each model's inputs, counted
//! per model, followed when their alias or stage moves, and optionally logged to Parquet files
//! for monitoring. Protocols (the Open Inference
//! Protocol, MLflow's `/invocations`) live in the HTTP layer over [`Serving`].

mod batch;
mod client;
mod error;
mod inference_log;
mod json;
mod metrics;
mod model;
mod resolve;
mod runtime;
mod serving;
mod tensor;

pub use client::{Resolved, TrackingClient};
pub use error::{Error, Result};
pub use inference_log::{InferenceLog, InferenceLogOptions, LogDestination};
pub use json::{Nested, data_from_json_text};
pub use metrics::{Histogram, ModelMetrics, render as render_metrics};
pub use resolve::Resolver;
pub use model::{InferRequest, InferResponse, IoSpec, LoadedModel, ModelConfig, Timing, onnx_file};
pub use runtime::{OnnxRuntime, onnx_runtime};
pub use serving::{Endpoint, ModelSource, Role, Serving, ServingOptions, Variant, clear_cache, default_cache};
pub use tensor::{DataType, Tensor, TensorData, data_from_json, element_count};
