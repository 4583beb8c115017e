//! Inference logging for monitoring: each answered request's inputs, outputs, model version,
//! timing and ids, appended off the request's path to Parquet files in an artifact store, one
//! folder per endpoint and hour (`<endpoint>/date=2026-11-26/hour=14/<file>.parquet`, the layout
//! pandas, pyarrow, Spark and DuckDB read as partitions).
//!
//! A request hands its record to a bounded queue and goes on. One task gathers the records by
//! endpoint, version, role, hour and tensor layout, and writes a group out as one file when it
//! holds `max_rows` rows, when it has waited `flush_every`, and when the log is closed. A record
//! that finds the queue full, or whose file cannot be written, is dropped: drops are counted per
//! model and role (`/metrics`) and logged.
//!
//! A request whose tensors share their first dimension (its batch) gives one row per example;
//! any other gives one row holding whole tensors. Each input and output is a column named
//! `input.<name>` or `output.<name>`: a plain value when an example holds one element, else a
//! list of the example's elements in row-major order.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, ListArray, PrimitiveArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType as ArrowType, Field, Schema, TimeUnit};
use bytes::Bytes;
use kiln_artifacts::{ArtifactPath, ArtifactStore};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tokio::sync::{mpsc, oneshot};

use crate::client::TrackingClient;
use crate::metrics::ModelMetrics;
use crate::serving::Role;
use crate::tensor::{DataType, Tensor, TensorData};

/// Most tensor elements one file gathers, whatever its row count (keeps list offsets and memory bounded).
const MAX_GROUP_ELEMENTS: usize = 8 * 1024 * 1024;

/// Where the files go.
#[derive(Debug, Clone)]
pub enum LogDestination {
    /// A store Kiln writes itself (its own artifact store, or one named by URI), under `prefix`.
    Store { store: ArtifactStore, prefix: String },
    /// A tracking server's proxied artifact API (kiln server, or mlflow server serving
    /// artifacts), under `prefix`.
    Tracking { client: TrackingClient, prefix: String },
}

impl LogDestination {
    fn describe(&self) -> String {
        match self {
            LogDestination::Store { store, prefix } => format!("{} under '{prefix}'", store.description()),
            LogDestination::Tracking { client, prefix } => format!("{} (proxied artifacts) under '{prefix}'", client.base()),
        }
    }

    fn prefix(&self) -> &str {
        match self {
            LogDestination::Store { prefix, .. } | LogDestination::Tracking { prefix, .. } => prefix,
        }
    }

    async fn write(&self, path: &str, bytes: Bytes) -> Result<(), String> {
        match self {
            LogDestination::Store { store, .. } => {
                let path = ArtifactPath::parse(path).map_err(|e| e.to_string())?;
                let body = futures_util::stream::once(async move { Ok::<_, Infallible>(bytes) });
                store.put(&path, body).await.map(|_| ()).map_err(|e| e.to_string())
            }
            LogDestination::Tracking { client, .. } => client.upload(path, bytes).await.map_err(|e| e.to_string()),
        }
    }
}

/// How the log batches its files.
#[derive(Debug, Clone)]
pub struct InferenceLogOptions {
    /// Records that may wait to be written; beyond it new ones are dropped.
    pub queue: usize,
    /// Longest a record waits before its file is written.
    pub flush_every: Duration,
    /// Most rows per file.
    pub max_rows: usize,
}

impl Default for InferenceLogOptions {
    fn default() -> Self {
        InferenceLogOptions { queue: 10_000, flush_every: Duration::from_secs(60), max_rows: 100_000 }
    }
}

/// One answered request.
pub(crate) struct Record {
    pub time: SystemTime,
    pub endpoint: String,
    pub version: String,
    pub role: Role,
    /// The transport's id (`x-request-id`).
    pub request_id: Option<String>,
    /// The id the request's body gave (the Open Inference Protocol's `id`).
    pub id: Option<String>,
    pub total: Duration,
    pub queue: Duration,
    pub inference: Duration,
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<Tensor>,
    pub metrics: Arc<ModelMetrics>,
}

impl Record {
    /// Examples the record holds when its tensors share a first dimension.
    fn batch(&self) -> Option<usize> {
        let mut tensors = self.inputs.iter().chain(&self.outputs);
        let n = *tensors.next()?.shape.first()?;
        tensors.all(|t| t.shape.first() == Some(&n)).then_some(n)
    }

    fn rows(&self) -> usize {
        self.batch().unwrap_or(1)
    }

    fn elements(&self) -> usize {
        self.inputs.iter().chain(&self.outputs).map(|t| t.data.len()).sum()
    }

    /// Elements per row of a tensor of this record.
    fn row_len(&self, tensor: &Tensor) -> usize {
        match self.batch() {
            Some(_) => tensor.row_len(),
            None => tensor.data.len(),
        }
    }

    fn layout(&self) -> Vec<Column> {
        let column = |prefix: &str, t: &Tensor| Column {
            name: format!("{prefix}.{}", t.name),
            datatype: t.datatype(),
            scalar: self.row_len(t) == 1,
        };
        self.inputs.iter().map(|t| column("input", t)).chain(self.outputs.iter().map(|t| column("output", t))).collect()
    }

    fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        self.inputs.iter().chain(&self.outputs)
    }
}

/// A tensor column of a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Column {
    name: String,
    datatype: DataType,
    /// One element per row: a plain column rather than a list.
    scalar: bool,
}

/// Records that go into one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    endpoint: String,
    version: String,
    role: Role,
    /// Hours since the Unix epoch, UTC.
    hour: i64,
    columns: Vec<Column>,
}

struct Group {
    started: Instant,
    records: Vec<Record>,
    rows: usize,
    elements: usize,
}

enum Message {
    Record(Box<Record>),
    Close(oneshot::Sender<()>),
}

/// The process's inference log; models with logging on hand it their answered requests.
pub struct InferenceLog {
    queue: mpsc::Sender<Message>,
    dropped: AtomicU64,
    destination: String,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for InferenceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceLog").field("destination", &self.destination).finish()
    }
}

impl InferenceLog {
    /// Starts the task that writes the files (on the current Tokio runtime).
    pub fn start(destination: LogDestination, options: InferenceLogOptions) -> Arc<InferenceLog> {
        let (queue, rx) = mpsc::channel(options.queue.max(1));
        let described = destination.describe();
        tracing::info!(destination = %described, flush_seconds = options.flush_every.as_secs_f64(), "inference log on");
        let task = tokio::spawn(run(rx, destination, options));
        Arc::new(InferenceLog { queue, dropped: AtomicU64::new(0), destination: described, task: Mutex::new(Some(task)) })
    }

    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Queues a record; never waits. A full queue drops it, counted.
    pub(crate) fn push(&self, record: Record) {
        let metrics = record.metrics.clone();
        if self.queue.try_send(Message::Record(Box::new(record))).is_err() {
            metrics.log_dropped.fetch_add(1, Ordering::Relaxed);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "the inference log's queue is full (or closed): records dropped so far");
            }
        }
    }

    /// Writes every record queued so far and stops; records pushed later are dropped.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = finished.await;
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Message>, destination: LogDestination, options: InferenceLogOptions) {
    let mut groups: HashMap<GroupKey, Group> = HashMap::new();
    let mut tick = tokio::time::interval(options.flush_every.clamp(Duration::from_millis(10), Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = Vec::new();
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Record(record)) => {
                    if let Some((key, group)) = add(&mut groups, *record, &options) {
                        write(&destination, key, group).await;
                    }
                }
                Some(Message::Close(done)) => {
                    closing.push(done);
                    break;
                }
                None => break,
            },
            _ = tick.tick() => {
                let due: Vec<GroupKey> =
                    groups.iter().filter(|(_, g)| g.started.elapsed() >= options.flush_every).map(|(k, _)| k.clone()).collect();
                for key in due {
                    if let Some(group) = groups.remove(&key) {
                        write(&destination, key, group).await;
                    }
                }
            }
        }
    }
    rx.close();
    while let Some(message) = rx.recv().await {
        match message {
            Message::Record(record) => {
                if let Some((key, group)) = add(&mut groups, *record, &options) {
                    write(&destination, key, group).await;
                }
            }
            Message::Close(done) => closing.push(done),
        }
    }
    for (key, group) in groups.drain() {
        write(&destination, key, group).await;
    }
    for done in closing {
        let _ = done.send(());
    }
}

/// Adds a record to its group; gives the group back when it is full.
fn add(groups: &mut HashMap<GroupKey, Group>, record: Record, options: &InferenceLogOptions) -> Option<(GroupKey, Group)> {
    if record.rows() == 0 {
        return None;
    }
    let seconds = record.time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let key = GroupKey {
        endpoint: record.endpoint.clone(),
        version: record.version.clone(),
        role: record.role,
        hour: seconds.div_euclid(3600),
        columns: record.layout(),
    };
    let group = groups.entry(key.clone()).or_insert_with(|| Group { started: Instant::now(), records: Vec::new(), rows: 0, elements: 0 });
    group.rows += record.rows();
    group.elements += record.elements();
    group.records.push(record);
    if group.rows >= options.max_rows || group.elements >= MAX_GROUP_ELEMENTS {
        return groups.remove(&key).map(|g| (key, g));
    }
    None
}

/// Encodes a group as Parquet and writes it; on failure its records are counted as dropped.
async fn write(destination: &LogDestination, key: GroupKey, group: Group) {
    static FILES: AtomicU64 = AtomicU64::new(0);
    let path = file_path(destination.prefix(), &key, FILES.fetch_add(1, Ordering::Relaxed));
    let rows = group.rows;
    let (encoded, records) = tokio::task::spawn_blocking(move || {
        let encoded = encode(&key, &group.records);
        (encoded, group.records)
    })
    .await
    .unwrap_or_else(|e| (Err(format!("encoding panicked: {e}")), Vec::new()));
    let result = match encoded {
        Err(e) => Err(e),
        Ok(bytes) => {
            let bytes = Bytes::from(bytes);
            match destination.write(&path, bytes.clone()).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "writing an inference log file failed; trying once more");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    destination.write(&path, bytes).await
                }
            }
        }
    };
    match result {
        Ok(()) => {
            for r in &records {
                r.metrics.logged.fetch_add(r.rows() as u64, Ordering::Relaxed);
            }
            tracing::debug!(path = %path, rows, "inference log file written");
        }
        Err(e) => {
            for r in &records {
                r.metrics.log_dropped.fetch_add(1, Ordering::Relaxed);
            }
            tracing::error!(path = %path, rows, error = %e, "an inference log file could not be written; its records are dropped");
        }
    }
}

/// `<prefix>/<endpoint>/date=YYYY-MM-DD/hour=HH/<version>-<role>-<time>-<n>-<random>.parquet`.
fn file_path(prefix: &str, key: &GroupKey, n: u64) -> String {
    let now = chrono::Utc::now();
    let hour = chrono::DateTime::from_timestamp(key.hour * 3600, 0).unwrap_or(now);
    let version: String =
        key.version.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).take(64).collect();
    let random = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{version}-{}-{}-{n:06}-{}.parquet", key.role.as_str(), now.format("%Y%m%dT%H%M%S"), &random[..8]);
    let folder = format!("{}/date={}/hour={}", key.endpoint, hour.format("%Y-%m-%d"), hour.format("%H"));
    match prefix.trim_matches('/') {
        "" => format!("{folder}/{name}"),
        prefix => format!("{prefix}/{folder}/{name}"),
    }
}

/// The group's records as one Parquet file.
fn encode(key: &GroupKey, records: &[Record]) -> Result<Vec<u8>, String> {
    let rows: usize = records.iter().map(Record::rows).sum();
    let repeat_str = |get: &dyn Fn(&Record) -> Option<&str>| -> ArrayRef {
        Arc::new(records.iter().flat_map(|r| std::iter::repeat_n(get(r), r.rows())).collect::<StringArray>())
    };
    let repeat_ms = |get: &dyn Fn(&Record) -> Duration| -> ArrayRef {
        Arc::new(records.iter().flat_map(|r| std::iter::repeat_n(get(r).as_secs_f64() * 1e3, r.rows())).collect::<Float64Array>())
    };
    let micros = |r: &Record| r.time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let mut fields = vec![
        Field::new("time", ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("model", ArrowType::Utf8, false),
        Field::new("version", ArrowType::Utf8, false),
        Field::new("role", ArrowType::Utf8, false),
        Field::new("request_id", ArrowType::Utf8, true),
        Field::new("id", ArrowType::Utf8, true),
        Field::new("row", ArrowType::UInt32, false),
        Field::new("latency_ms", ArrowType::Float64, false),
        Field::new("queue_ms", ArrowType::Float64, false),
        Field::new("inference_ms", ArrowType::Float64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(records.iter().flat_map(|r| std::iter::repeat_n(micros(r), r.rows())))
                .with_timezone("UTC"),
        ),
        repeat_str(&|r| Some(r.endpoint.as_str())),
        repeat_str(&|r| Some(r.version.as_str())),
        repeat_str(&|r| Some(r.role.as_str())),
        repeat_str(&|r| r.request_id.as_deref()),
        repeat_str(&|r| r.id.as_deref()),
        Arc::new(UInt32Array::from_iter_values(records.iter().flat_map(|r| 0..r.rows() as u32))),
        repeat_ms(&|r| r.total),
        repeat_ms(&|r| r.queue),
        repeat_ms(&|r| r.inference),
    ];
    for (i, column) in key.columns.iter().enumerate() {
        let tensors: Vec<&Tensor> = records.iter().map(|r| r.tensors().nth(i).expect("a group's records share their layout")).collect();
        let values = values_array(column.datatype, &tensors);
        let value_type = values.data_type().clone();
        if column.scalar {
            fields.push(Field::new(&column.name, value_type, false));
            columns.push(values);
            continue;
        }
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0i32);
        let mut end = 0usize;
        for (r, t) in records.iter().zip(&tensors) {
            let step = r.row_len(t);
            for _ in 0..r.rows() {
                end += step;
                offsets.push(i32::try_from(end).map_err(|_| "too many elements for one file".to_string())?);
            }
        }
        let item = Arc::new(Field::new_list_field(value_type, false));
        let list = ListArray::try_new(item.clone(), OffsetBuffer::new(ScalarBuffer::from(offsets)), values, None)
            .map_err(|e| e.to_string())?;
        fields.push(Field::new(&column.name, ArrowType::List(item), false));
        columns.push(Arc::new(list));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.into_inner().map_err(|e| e.to_string())
}

/// Every tensor's elements one after the other, as one Arrow array of their type.
fn values_array(datatype: DataType, tensors: &[&Tensor]) -> ArrayRef {
    macro_rules! gather {
        ($variant:ident, $array:ty) => {{
            let mut out = Vec::with_capacity(tensors.iter().map(|t| t.data.len()).sum());
            for t in tensors {
                if let TensorData::$variant(v) = &t.data {
                    out.extend_from_slice(v);
                }
            }
            Arc::new(<$array>::from(out)) as ArrayRef
        }};
    }
    match datatype {
        DataType::Bool => gather!(Bool, BooleanArray),
        DataType::Uint8 => gather!(Uint8, PrimitiveArray<UInt8Type>),
        DataType::Uint16 => gather!(Uint16, PrimitiveArray<UInt16Type>),
        DataType::Uint32 => gather!(Uint32, PrimitiveArray<UInt32Type>),
        DataType::Uint64 => gather!(Uint64, PrimitiveArray<UInt64Type>),
        DataType::Int8 => gather!(Int8, PrimitiveArray<Int8Type>),
        DataType::Int16 => gather!(Int16, PrimitiveArray<Int16Type>),
        DataType::Int32 => gather!(Int32, PrimitiveArray<Int32Type>),
        DataType::Int64 => gather!(Int64, PrimitiveArray<Int64Type>),
        DataType::Fp32 => gather!(Fp32, PrimitiveArray<Float32Type>),
        DataType::Fp64 => gather!(Fp64, PrimitiveArray<Float64Type>),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn record(id: &str, rows: usize, time: SystemTime, metrics: &Arc<ModelMetrics>) -> Record {
        let x: Vec<f32> = (0..rows * 3).map(|i| i as f32).collect();
        let label: Vec<i64> = (0..rows as i64).collect();
        Record {
            time,
            endpoint: "iris".into(),
            version: "3".into(),
            role: Role::Primary,
            request_id: Some(id.into()),
            id: None,
            total: Duration::from_micros(1500),
            queue: Duration::from_micros(100),
            inference: Duration::from_micros(900),
            inputs: vec![Tensor::new("x", vec![rows, 3], TensorData::Fp32(x)).unwrap()],
            outputs: vec![Tensor::new("label", vec![rows], TensorData::Int64(label)).unwrap()],
            metrics: metrics.clone(),
        }
    }

    fn read(bytes: Vec<u8>) -> RecordBatch {
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    #[test]
    fn a_batch_gives_a_row_per_example() {
        let metrics = Arc::new(ModelMetrics::default());
        let time = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let records = vec![record("a", 2, time, &metrics), record("b", 1, time, &metrics)];
        let key = GroupKey { endpoint: "iris".into(), version: "3".into(), role: Role::Primary, hour: 0, columns: records[0].layout() };
        assert_eq!(records[1].layout(), key.columns);
        let batch = read(encode(&key, &records).unwrap());
        assert_eq!(batch.num_rows(), 3);
        let ids = batch.column_by_name("request_id").unwrap().as_string::<i32>();
        assert_eq!((ids.value(0), ids.value(1), ids.value(2)), ("a", "a", "b"));
        let row = batch.column_by_name("row").unwrap().as_primitive::<UInt32Type>();
        assert_eq!(row.values().to_vec(), vec![0, 1, 0]);
        let x = batch.column_by_name("input.x").unwrap().as_list::<i32>();
        assert_eq!(x.value(1).as_primitive::<Float32Type>().values().to_vec(), vec![3.0, 4.0, 5.0]);
        assert_eq!(x.value(2).as_primitive::<Float32Type>().values().to_vec(), vec![0.0, 1.0, 2.0]);
        let label = batch.column_by_name("output.label").unwrap().as_primitive::<Int64Type>();
        assert_eq!(label.values().to_vec(), vec![0, 1, 0]);
        let latency = batch.column_by_name("latency_ms").unwrap().as_primitive::<Float64Type>();
        assert!((latency.value(0) - 1.5).abs() < 1e-9);
        assert!(batch.column_by_name("id").unwrap().is_null(0));
    }

    #[test]
    fn tensors_without_a_shared_batch_make_one_row() {
        let metrics = Arc::new(ModelMetrics::default());
        let mut r = record("a", 2, UNIX_EPOCH, &metrics);
        r.outputs = vec![Tensor::new("score", vec![1], TensorData::Fp64(vec![0.5])).unwrap()];
        assert_eq!(r.rows(), 1);
        let key = GroupKey { endpoint: "iris".into(), version: "3".into(), role: Role::Shadow, hour: 0, columns: r.layout() };
        let batch = read(encode(&key, &[r]).unwrap());
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column_by_name("input.x").unwrap().as_list::<i32>().value(0).len(), 6);
        assert_eq!(batch.column_by_name("output.score").unwrap().as_primitive::<Float64Type>().value(0), 0.5);
    }

    #[test]
    fn files_are_partitioned_by_endpoint_date_and_hour() {
        let key = GroupKey { endpoint: "iris".into(), version: "m-1/2".into(), role: Role::Challenger, hour: 490_000, columns: vec![] };
        let path = file_path("inference-logs", &key, 7);
        assert!(path.starts_with("inference-logs/iris/date=2025-11-24/hour=16/m-1_2-challenger-"), "{path}");
        assert!(path.ends_with(".parquet") && path.contains("-000007-"), "{path}");
        assert!(file_path("", &key, 7).starts_with("iris/date="));
    }

    #[tokio::test]
    async fn records_reach_files_and_a_full_queue_counts_its_drops() {
        let folder = std::env::temp_dir().join(format!("kiln-log-test-{}", uuid::Uuid::new_v4().simple()));
        let store = ArtifactStore::open(folder.to_str().unwrap()).unwrap();
        let options = InferenceLogOptions { queue: 4, flush_every: Duration::from_secs(3600), max_rows: 1_000 };
        let log = InferenceLog::start(LogDestination::Store { store, prefix: "logs".into() }, options);
        let metrics = Arc::new(ModelMetrics::default());
        for i in 0..100 {
            log.push(record(&i.to_string(), 1, SystemTime::now(), &metrics));
        }
        log.close().await;
        log.push(record("late", 1, SystemTime::now(), &metrics));
        let (logged, dropped) = (metrics.logged.load(Ordering::Relaxed), metrics.log_dropped.load(Ordering::Relaxed));
        assert_eq!(logged + dropped, 101);
        assert!(dropped >= 1 && logged >= 4, "logged {logged}, dropped {dropped}");
        let mut files = Vec::new();
        let mut pending = vec![folder.join("logs")];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() { pending.push(path) } else { files.push(path) }
            }
        }
        let rows: usize = files.iter().map(|f| read(std::fs::read(f).unwrap()).num_rows()).sum();
        assert_eq!(rows as u64, logged);
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
