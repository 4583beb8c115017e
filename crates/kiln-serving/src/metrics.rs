//! Counters and latency histograms per model, rendered in Prometheus' text format by the HTTP
//! layer.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::model::InferResponse;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BOUNDS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Upper bounds of the batch size buckets, in rows.
const BATCH_BOUNDS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A histogram with fixed buckets; observations in seconds or rows.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations in millionths, to keep it in an integer.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(), sum_micros: AtomicU64::new(0), count: AtomicU64::new(0) }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// What one model (endpoint) has done.
#[derive(Debug)]
pub struct ModelMetrics {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub total: Histogram,
    pub queue: Histogram,
    pub inference: Histogram,
    pub batch_size: Histogram,
    /// Rows written to the inference log.
    pub logged: AtomicU64,
    /// Records the inference log dropped: its queue was full, or their file could not be written.
    pub log_dropped: AtomicU64,
}

impl Default for ModelMetrics {
    fn default() -> Self {
        ModelMetrics {
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            total: Histogram::new(&LATENCY_BOUNDS),
            queue: Histogram::new(&LATENCY_BOUNDS),
            inference: Histogram::new(&LATENCY_BOUNDS),
            batch_size: Histogram::new(&BATCH_BOUNDS),
            logged: AtomicU64::new(0),
            log_dropped: AtomicU64::new(0),
        }
    }
}

impl ModelMetrics {
    pub fn record(&self, result: &Result<InferResponse>, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.total.observe(elapsed.as_secs_f64());
        match result {
            Ok(response) => {
                self.queue.observe(response.timing.queue.as_secs_f64());
                self.inference.observe(response.timing.inference.as_secs_f64());
                self.batch_size.observe(response.timing.batch_rows as f64);
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Every model's metrics in Prometheus' text format, labelled with the endpoint's name and the
/// part the model plays there (`primary`, `challenger`, `shadow`).
pub fn render<'a>(models: impl Iterator<Item = (&'a str, &'a str, &'a ModelMetrics)>) -> String {
    let models: Vec<_> = models.collect();
    let mut out = String::new();
    let counter = |out: &mut String, name: &str, help: &str, get: &dyn Fn(&ModelMetrics) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (model, role, m) in &models {
            let _ = writeln!(out, "{name}{{model=\"{}\",role=\"{role}\"}} {}", escape(model), get(m));
        }
    };
    counter(&mut out, "kiln_inference_requests_total", "Inference requests answered or refused.", &|m| m.requests.load(Ordering::Relaxed));
    counter(&mut out, "kiln_inference_failures_total", "Inference requests that failed.", &|m| m.failures.load(Ordering::Relaxed));
    counter(&mut out, "kiln_inference_log_rows_total", "Rows written to the inference log.", &|m| m.logged.load(Ordering::Relaxed));
    counter(
        &mut out,
        "kiln_inference_log_dropped_total",
        "Requests the inference log dropped (queue full, or a file that could not be written).",
        &|m| m.log_dropped.load(Ordering::Relaxed),
    );
    let histogram = |out: &mut String, name: &str, help: &str, get: &dyn Fn(&ModelMetrics) -> &Histogram| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (model, role, m) in &models {
            get(m).render(out, name, &format!("model=\"{}\",role=\"{role}\"", escape(model)));
        }
    };
    histogram(&mut out, "kiln_inference_request_seconds", "Time from a request's arrival to its answer.", &|m| &m.total);
    histogram(&mut out, "kiln_inference_queue_seconds", "Time a request waited for a model session.", &|m| &m.queue);
    histogram(&mut out, "kiln_inference_run_seconds", "Time the model ran for a request's batch.", &|m| &m.inference);
    histogram(&mut out, "kiln_inference_batch_size", "Rows in the run each request was part of.", &|m| &m.batch_size);
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
