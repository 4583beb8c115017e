//! A loaded model: its ONNX Runtime sessions, its inputs and outputs, and inference on it, with
//! concurrent requests merged into batches.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_registry::ModelFormat;
use ort::session::Session;
use ort::value::ValueType;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::batch::{self, Job};
use crate::error::{Error, Result};
use crate::metrics::ModelMetrics;
use crate::runtime::onnx_runtime;
use crate::tensor::{DataType, Tensor, TensorData};

/// Fewest rows worth a session of their own when a large request is split over free sessions.
const MIN_SHARD_ROWS: usize = 128;

/// How a model is run. Per model; `kiln serve` sets them from its flags.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// ONNX Runtime sessions, each running one batch at a time.
    pub sessions: usize,
    /// Threads each session uses inside one operator.
    pub intra_threads: usize,
    /// Most rows merged into one run; 1 turns batching off.
    pub max_batch_size: usize,
    /// How long a request may wait for others to join its batch. Zero merges only what is
    /// already waiting while every session is busy, which costs no latency.
    pub max_batch_delay: Duration,
    /// Requests waiting for a session, beyond which new ones are refused as unavailable.
    pub max_queue: usize,
    /// Longest a request may take, queue included.
    pub timeout: Duration,
    /// Whether answered requests go to the inference log (when the process has one).
    pub log_inferences: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ModelConfig {
            sessions: cores,
            intra_threads: 1,
            max_batch_size: 64,
            max_batch_delay: Duration::ZERO,
            max_queue: 4096,
            timeout: Duration::from_secs(30),
            log_inferences: false,
        }
    }
}

/// An input or output: name, element type and shape (-1 where any size goes).
#[derive(Debug, Clone, PartialEq)]
pub struct IoSpec {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

/// What a request asks: its inputs and, optionally, which outputs to return.
#[derive(Debug, Clone, Default)]
pub struct InferRequest {
    /// The id the request's body gives (the Open Inference Protocol's `id`), echoed back.
    pub id: Option<String>,
    /// The transport's id of the request (`x-request-id`), for logs.
    pub request_id: Option<String>,
    pub inputs: Vec<Tensor>,
    pub outputs: Option<Vec<String>>,
}

/// The answer, with where its time went.
#[derive(Debug, Clone)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    pub id: Option<String>,
    pub outputs: Vec<Tensor>,
    pub timing: Timing,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// Waiting for a session (and for a batch to fill).
    pub queue: Duration,
    /// The model's run, for the whole batch.
    pub inference: Duration,
    /// Rows in the run this request was part of.
    pub batch_rows: usize,
}

/// A model ready to answer.
pub struct LoadedModel {
    pub name: String,
    pub version: String,
    /// Where it was loaded from, for logs and metadata.
    pub origin: String,
    pub inputs: Vec<IoSpec>,
    pub outputs: Vec<IoSpec>,
    /// Whether requests may be merged: every input and output has a free first dimension.
    pub batchable: bool,
    config: ModelConfig,
    sessions: Arc<Sessions>,
    queue: Option<mpsc::Sender<Job>>,
    pub metrics: Arc<ModelMetrics>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("name", &self.name).field("version", &self.version).field("origin", &self.origin).finish()
    }
}

/// The ONNX model file a model folder holds: the `onnx` flavor's file named in `MLmodel`, else
/// `model.onnx`; a path to an `.onnx` file is the file itself.
pub fn onnx_file(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let mlmodel = path.join("MLmodel");
    let name = match std::fs::read_to_string(&mlmodel) {
        Ok(text) => {
            let format = ModelFormat::parse(&text)
                .ok_or_else(|| Error::Model(format!("{} is not an MLmodel file (a YAML mapping with flavors)", mlmodel.display())))?;
            format.onnx_model.ok_or_else(|| {
                Error::Model(format!(
                    "the model at {} has no onnx flavor (it has {}); Kiln serves ONNX models: log it with mlflow.onnx",
                    path.display(),
                    format.flavors.join(", ")
                ))
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "model.onnx".to_string(),
        Err(e) => return Err(Error::Io(format!("cannot read {}: {e}", mlmodel.display()))),
    };
    if name.split(['/', '\\']).any(|part| part == "..") || Path::new(&name).is_absolute() {
        return Err(Error::Model(format!("the MLmodel file names '{name}' as the ONNX model, outside the model's folder")));
    }
    let file = path.join(&name);
    if !file.is_file() {
        return Err(Error::Model(format!("the model's ONNX file {} does not exist", file.display())));
    }
    Ok(file)
}

impl LoadedModel {
    /// Loads and warms a model (blocking: call it off the async threads, inside the runtime).
    /// `path` is a model folder or an `.onnx` file; `origin` says where it came from.
    pub fn load(
        name: &str,
        version: &str,
        path: &Path,
        origin: &str,
        config: &ModelConfig,
        metrics: Arc<ModelMetrics>,
    ) -> Result<Arc<LoadedModel>> {
        let runtime = onnx_runtime()?;
        let file = onnx_file(path)?;
        let count = config.sessions.max(1);
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            sessions.push(
                Session::builder(runtime.environment())?
                    .with_intra_threads(config.intra_threads.max(1))
                    .map_err(ort::Error::from)?
                    .with_inter_threads(1)
                    .map_err(ort::Error::from)?
                    .commit_from_file(&file)?,
            );
        }
        let inputs = specs(sessions[0].inputs().iter().map(|o| (o.name(), o.dtype())), "input")?;
        let outputs = specs(sessions[0].outputs().iter().map(|o| (o.name(), o.dtype())), "output")?;
        let batchable = config.max_batch_size > 1
            && inputs.iter().chain(&outputs).all(|s| s.shape.first().is_some_and(|&d| d < 0));
        let sessions = Arc::new(Sessions { permits: Arc::new(Semaphore::new(count)), idle: Mutex::new(sessions) });
        let output_names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
        let mut model = LoadedModel {
            name: name.to_string(),
            version: version.to_string(),
            origin: origin.to_string(),
            inputs,
            outputs,
            batchable,
            config: config.clone(),
            sessions: sessions.clone(),
            queue: None,
            metrics,
        };
        model.warm_up()?;
        if batchable {
            let (tx, rx) = mpsc::channel(config.max_queue.max(1));
            let limits = batch::Limits { max_rows: config.max_batch_size, max_delay: config.max_batch_delay };
            tokio::runtime::Handle::current().spawn(batch::run(rx, sessions, output_names, limits));
            model.queue = Some(tx);
        }
        Ok(Arc::new(model))
    }

    /// One run on one row of zeros in every session, so that the first request does not pay
    /// for ONNX Runtime's lazy set-up. A model whose inputs have no such row is left cold.
    fn warm_up(&self) -> Result<()> {
        let inputs: Option<Vec<Tensor>> = self
            .inputs
            .iter()
            .map(|spec| {
                let shape: Vec<usize> = spec.shape.iter().map(|&d| if d < 0 { 1 } else { d as usize }).collect();
                let n = crate::tensor::element_count(&shape)?;
                let data = TensorData::from_le_bytes(spec.datatype, &vec![0u8; n.checked_mul(spec.datatype.size())?]).ok()?;
                Some(Tensor { name: spec.name.clone(), shape, data })
            })
            .collect();
        let Some(inputs) = inputs else { return Ok(()) };
        let mut idle = self.sessions.idle.lock().unwrap_or_else(|e| e.into_inner());
        for session in idle.iter_mut() {
            if let Err(e) = run_session(session, inputs.clone(), &self.outputs.iter().map(|o| o.name.clone()).collect::<Vec<_>>()) {
                tracing::warn!(model = %self.name, error = %e, "warming the model up on zeros failed; it starts cold");
                break;
            }
        }
        Ok(())
    }

    /// Checks a request against the model and runs it.
    pub async fn infer(&self, request: InferRequest) -> Result<InferResponse> {
        let started = Instant::now();
        let result = self.infer_checked(request).await;
        self.metrics.record(&result, started.elapsed());
        result
    }

    async fn infer_checked(&self, request: InferRequest) -> Result<InferResponse> {
        let inputs = self.check_inputs(request.inputs)?;
        if let Some(wanted) = &request.outputs {
            for name in wanted {
                if !self.outputs.iter().any(|o| &o.name == name) {
                    return Err(Error::invalid(format!(
                        "the model {} has no output '{name}'; its outputs are {}",
                        self.name,
                        self.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        let rows = inputs.first().map_or(0, Tensor::rows);
        let enqueued = Instant::now();
        let answer = match &self.queue {
            Some(queue) if rows > 0 && rows < self.config.max_batch_size => {
                let (reply, wait) = oneshot::channel();
                queue.try_send(Job { inputs, rows, enqueued, reply }).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => Error::Unavailable(format!(
                        "the model {} has {} requests waiting; try again shortly",
                        self.name, self.config.max_queue
                    )),
                    mpsc::error::TrySendError::Closed(_) => Error::Unavailable(format!("the model {} is unloading", self.name)),
                })?;
                tokio::time::timeout(self.config.timeout, wait)
                    .await
                    .map_err(|_| Error::Timeout(self.config.timeout.as_millis() as u64))?
                    .map_err(|_| Error::Unavailable(format!("the model {} stopped before answering", self.name)))??
            }
            _ => {
                let names: Vec<String> = self.outputs.iter().map(|o| o.name.clone()).collect();
                let run = async {
                    let permit = self.sessions.permits.clone().acquire_owned().await.map_err(|_| Error::Unavailable("unloading".into()))?;
                    let queue = enqueued.elapsed();
                    // A large request is split over the sessions that are free, run side by side.
                    let mut permits = vec![permit];
                    if self.batchable {
                        while permits.len() < rows / MIN_SHARD_ROWS {
                            match self.sessions.permits.clone().try_acquire_owned() {
                                Ok(p) => permits.push(p),
                                Err(_) => break,
                            }
                        }
                    }
                    let (outputs, inference) = if permits.len() == 1 {
                        self.sessions.run(permits.remove(0), inputs, names).await?
                    } else {
                        self.run_sharded(permits, inputs, rows, names).await?
                    };
                    Ok::<_, Error>(batch::Answer { outputs, timing: Timing { queue, inference, batch_rows: rows } })
                };
                tokio::time::timeout(self.config.timeout, run).await.map_err(|_| Error::Timeout(self.config.timeout.as_millis() as u64))??
            }
        };
        let outputs = match &request.outputs {
            Some(wanted) => answer.outputs.into_iter().filter(|t| wanted.contains(&t.name)).collect(),
            None => answer.outputs,
        };
        Ok(InferResponse { model_name: self.name.clone(), model_version: self.version.clone(), id: request.id, outputs, timing: answer.timing })
    }

    /// Runs `rows` rows as one shard per permit (a free session each), side by side, and joins
    /// the outputs in row order.
    async fn run_sharded(
        &self,
        permits: Vec<OwnedSemaphorePermit>,
        inputs: Vec<Tensor>,
        rows: usize,
        names: Vec<String>,
    ) -> Result<(Vec<Tensor>, Duration)> {
        let shards = permits.len();
        let runs = permits.into_iter().enumerate().map(|(i, permit)| {
            let (start, end) = (rows * i / shards, rows * (i + 1) / shards);
            let part = inputs
                .iter()
                .map(|t| {
                    let mut shape = t.shape.clone();
                    shape[0] = end - start;
                    Tensor { name: t.name.clone(), shape, data: t.data.rows(start, end, t.row_len()) }
                })
                .collect();
            self.sessions.run(permit, part, names.clone())
        });
        let parts = futures_util::future::try_join_all(runs).await?;
        let inference = parts.iter().map(|(_, d)| *d).max().unwrap_or_default();
        let outputs = (0..names.len())
            .map(|o| {
                let pieces: Vec<&Tensor> = parts.iter().map(|(outs, _)| &outs[o]).collect();
                let mut shape = pieces[0].shape.clone();
                if shape.is_empty() {
                    return Err(Error::Model(format!("the model's output '{}' has no rows to join", names[o])));
                }
                shape[0] = pieces.iter().map(|t| t.shape.first().copied().unwrap_or(0)).sum();
                let data = TensorData::concat(&pieces.iter().map(|t| &t.data).collect::<Vec<_>>())?;
                Ok(Tensor { name: names[o].clone(), shape, data })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((outputs, inference))
    }

    /// The inputs in the model's order, each of the model's type and shape, with one row count.
    fn check_inputs(&self, mut given: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let names = || self.inputs.iter().map(|i| format!("'{}'", i.name)).collect::<Vec<_>>().join(", ");
        for (i, t) in given.iter().enumerate() {
            if !self.inputs.iter().any(|s| s.name == t.name) {
                return Err(Error::invalid(format!("the model {} has no input '{}'; its inputs are {}", self.name, t.name, names())));
            }
            if given[..i].iter().any(|u| u.name == t.name) {
                return Err(Error::invalid(format!("the input '{}' is given twice", t.name)));
            }
        }
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let at = given
                .iter()
                .position(|t| t.name == spec.name)
                .ok_or_else(|| Error::invalid(format!("the input '{}' is missing; the model {} takes {}", spec.name, self.name, names())))?;
            let t = given.swap_remove(at);
            if t.datatype() != spec.datatype {
                return Err(Error::invalid(format!(
                    "the input '{}' is {}, but the model takes {}",
                    t.name,
                    t.datatype().as_str(),
                    spec.datatype.as_str()
                )));
            }
            let fits = t.shape.len() == spec.shape.len() && t.shape.iter().zip(&spec.shape).all(|(&d, &s)| s < 0 || d as i64 == s);
            if !fits {
                return Err(Error::invalid(format!(
                    "the input '{}' has the shape {:?}, but the model takes {} (-1 is any size)",
                    t.name,
                    t.shape,
                    format_shape(&spec.shape)
                )));
            }
            ordered.push(t);
        }
        if self.batchable
            && let Some(first) = ordered.first()
            && let Some(other) = ordered.iter().find(|t| t.rows() != first.rows())
        {
            return Err(Error::invalid(format!(
                "the inputs disagree on the number of rows: '{}' has {}, '{}' has {}",
                first.name,
                first.rows(),
                other.name,
                other.rows()
            )));
        }
        Ok(ordered)
    }
}

fn format_shape(shape: &[i64]) -> String {
    format!("[{}]", shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
}

fn specs<'a>(outlets: impl Iterator<Item = (&'a str, &'a ValueType)>, what: &str) -> Result<Vec<IoSpec>> {
    outlets
        .map(|(name, ty)| match ty {
            ValueType::Tensor { ty, shape, .. } => Ok(IoSpec {
                name: name.to_string(),
                datatype: DataType::from_onnx(*ty)
                    .ok_or_else(|| Error::Model(format!("the model's {what} '{name}' is a tensor of {ty:?}, which Kiln does not serve")))?,
                shape: shape.iter().copied().collect(),
            }),
            other => Err(Error::Model(format!(
                "the model's {what} '{name}' is a {other:?}, not a tensor; convert classifiers with zipmap disabled \
                 (skl2onnx: options={{'zipmap': False}})"
            ))),
        })
        .collect()
}

/// A model's sessions: each runs one batch at a time, on the blocking thread pool.
pub(crate) struct Sessions {
    pub(crate) permits: Arc<Semaphore>,
    idle: Mutex<Vec<Session>>,
}

impl Sessions {
    /// Runs inputs on a free session (the permit says one is free); gives the outputs in
    /// `names` order and the run's duration.
    pub(crate) async fn run(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        inputs: Vec<Tensor>,
        names: Vec<String>,
    ) -> Result<(Vec<Tensor>, Duration)> {
        let mut session = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .ok_or_else(|| Error::Unavailable("no model session is free".into()))?;
        let sessions = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = run_session(&mut session, inputs, &names);
            sessions.idle.lock().unwrap_or_else(|e| e.into_inner()).push(session);
            drop(permit);
            result.map(|outputs| (outputs, started.elapsed()))
        })
        .await;
        joined.map_err(|e| Error::Model(format!("the model's run failed: {e}")))?
    }
}

fn run_session(session: &mut Session, inputs: Vec<Tensor>, names: &[String]) -> Result<Vec<Tensor>> {
    let values = inputs
        .into_iter()
        .map(|t| Ok((t.name, t.data.into_ort(&t.shape)?)))
        .collect::<Result<Vec<_>>>()?;
    let outputs = session.run(values)?;
    names
        .iter()
        .map(|name| {
            let value = outputs.get(name).ok_or_else(|| Error::Model(format!("the model gave no output '{name}'")))?;
            let (shape, data) = TensorData::from_ort(value)?;
            Ok(Tensor { name: name.clone(), shape, data })
        })
        .collect()
}
