//! Dynamic batching: requests to one model wait in a queue; whenever a session is free, the
//! requests waiting (up to a row limit, and for at most a set delay) run as one batch, and each
//! gets its own rows of the outputs back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::model::{Sessions, Timing};
use crate::tensor::{Tensor, TensorData};

/// A request waiting for its batch; its inputs are checked and in the model's order.
pub(crate) struct Job {
    pub inputs: Vec<Tensor>,
    pub rows: usize,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Result<Answer>>,
}

pub(crate) struct Answer {
    pub outputs: Vec<Tensor>,
    pub timing: Timing,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_rows: usize,
    pub max_delay: Duration,
}

/// The model's batching loop; ends when the model is dropped (its queue closes).
pub(crate) async fn run(mut queue: mpsc::Receiver<Job>, sessions: Arc<Sessions>, outputs: Vec<String>, limits: Limits) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        // Requests arriving while every session is busy queue up behind `first` and join it.
        let Ok(permit) = sessions.permits.clone().acquire_owned().await else { return };
        let deadline = first.enqueued + limits.max_delay;
        let mut rows = first.rows;
        let mut jobs = vec![first];
        while rows < limits.max_rows {
            let next = next_within(&mut queue, deadline).await;
            let Some(job) = next else { break };
            if rows + job.rows > limits.max_rows || !same_row_shapes(&jobs[0], &job) {
                held = Some(job);
                break;
            }
            rows += job.rows;
            jobs.push(job);
        }
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            drop(permit);
            continue;
        }
        tokio::spawn(run_batch(sessions.clone(), permit, jobs, outputs.clone()));
    }
}

/// The next job, if one arrives before `deadline`. Tokio's timers tick in milliseconds, so the
/// last stretch of a wait (and any wait under 2 ms, such as a 200 µs batch delay) yields to the
/// runtime and looks again instead of sleeping past the deadline.
async fn next_within(queue: &mut mpsc::Receiver<Job>, deadline: Instant) -> Option<Job> {
    loop {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                let left = deadline - now;
                if left > Duration::from_millis(2) {
                    if let Ok(job) = tokio::time::timeout(left - Duration::from_millis(1), queue.recv()).await {
                        return job;
                    }
                } else {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

/// Jobs can share a batch when every input has the same shape past the first dimension.
fn same_row_shapes(a: &Job, b: &Job) -> bool {
    a.inputs.iter().zip(&b.inputs).all(|(x, y)| x.shape.get(1..) == y.shape.get(1..))
}

async fn run_batch(sessions: Arc<Sessions>, permit: OwnedSemaphorePermit, mut jobs: Vec<Job>, names: Vec<String>) {
    let started = Instant::now();
    let rows: usize = jobs.iter().map(|j| j.rows).sum();
    let result = match merge(&mut jobs, rows) {
        Ok(inputs) => sessions.run(permit, inputs, names).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((outputs, inference)) => {
            let mut start = 0;
            for job in jobs {
                let timing = Timing { queue: started.saturating_duration_since(job.enqueued), inference, batch_rows: rows };
                let part = split(&outputs, start, start + job.rows, rows).map(|outputs| Answer { outputs, timing });
                start += job.rows;
                let _ = job.reply.send(part);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(Error::Model(message.clone())));
            }
        }
    }
}

/// Each input of all jobs, joined along the first dimension (taken from the jobs).
fn merge(jobs: &mut [Job], rows: usize) -> Result<Vec<Tensor>> {
    if let [job] = jobs {
        return Ok(std::mem::take(&mut job.inputs));
    }
    (0..jobs[0].inputs.len())
        .map(|i| {
            let first = &jobs[0].inputs[i];
            let parts: Vec<&TensorData> = jobs.iter().map(|j| &j.inputs[i].data).collect();
            let mut shape = first.shape.clone();
            shape[0] = rows;
            Ok(Tensor { name: first.name.clone(), shape, data: TensorData::concat(&parts)? })
        })
        .collect()
}

/// Rows `start..end` of every output of a run over `rows` rows.
fn split(outputs: &[Tensor], start: usize, end: usize, rows: usize) -> Result<Vec<Tensor>> {
    outputs
        .iter()
        .map(|t| {
            if t.shape.first() != Some(&rows) {
                return Err(Error::Model(format!(
                    "the model's output '{}' has the shape {:?}, whose first dimension is not the batch's {rows} rows",
                    t.name, t.shape
                )));
            }
            let mut shape = t.shape.clone();
            shape[0] = end - start;
            Ok(Tensor { name: t.name.clone(), shape, data: t.data.rows(start, end, t.row_len()) })
        })
        .collect()
}
