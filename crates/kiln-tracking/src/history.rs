//! Metric history: the full series of one metric (streamed in chunks, never buffered whole),
//! and the downsampled series of several runs that charts draw.

use std::collections::HashMap;

use kiln_core::search::PageToken;
use tokio::sync::mpsc;

use kiln_store::query;
use kiln_store::query::Sql;

use crate::entities::{Metric, RunMetric};
use crate::error::{Error, Result};
use crate::rows;
use crate::runs::require_run_id;
use crate::Tracking;

/// Points per chunk of a streamed history.
const CHUNK: usize = 2048;

pub const MAX_BULK_RUNS: usize = 100;
pub const MAX_BULK_RESULTS: i64 = 2500;
/// Longest history the bulk interval samples exactly as MLflow does (numbering every point in
/// step order); a longer one is sampled at an even stride in logging order, which reads the
/// index once without sorting.
pub const EXACT_SAMPLE_LIMIT: i64 = 100_000;

/// A piece of a metric history as it streams out.
#[derive(Debug)]
pub enum HistoryChunk {
    Points(Vec<Metric>),
    /// The history is complete; a token is there when a further page exists.
    End { next_page_token: Option<String> },
}

/// What `metrics/get-history-bulk-interval` takes.
#[derive(Debug, Clone, Default)]
pub struct BulkIntervalQuery {
    pub run_ids: Vec<String>,
    pub metric_key: String,
    pub start_step: Option<i64>,
    pub end_step: Option<i64>,
    pub max_results: Option<i64>,
}

/// History is read in chunks of [`CHUNK`] points. Chunks after the first continue from the last
/// point read (keyset), so every chunk is a range scan of the metrics table's own order.
fn history_chunk_sql(first: bool) -> String {
    let (after, limit) = if first {
        ("", "LIMIT $3 OFFSET $4")
    } else {
        ("AND (timestamp, step, value_key, is_nan) > ($3, $4, $5, $6)", "LIMIT $7")
    };
    format!(
        "SELECT timestamp, step, value_key, is_nan FROM metrics WHERE run_pk = $1 AND key = $2 {after} \
         ORDER BY timestamp, step, value_key, is_nan {limit}"
    )
}

impl Tracking {
    /// Streams the points of one metric of one run, ordered by timestamp, step and value. An
    /// unknown run or key yields no points. With `max_results`, one page of that many points and
    /// a token for the next.
    pub async fn metric_history(
        &self,
        run_id: &str,
        metric_key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<mpsc::Receiver<Result<HistoryChunk>>> {
        require_run_id(run_id)?;
        if metric_key.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'metric_key'"));
        }
        if let Some(n) = max_results.filter(|&n| n <= 0) {
            return Err(Error::invalid(format!("Invalid value {n} for parameter 'max_results': it must be positive")));
        }
        let token = PageToken::decode(page_token)?;
        let (tx, rx) = mpsc::channel(4);
        let run_pk = match self.find_run(run_id).await {
            Ok(run) => run.pk,
            Err(e) if e.kind() == kiln_core::ErrorKind::NotFound => {
                let _ = tx.send(Ok(HistoryChunk::End { next_page_token: None })).await;
                return Ok(rx);
            }
            Err(e) => return Err(e),
        };
        let pool = self.store.reader().clone();
        let (first_sql, next_sql) = (history_chunk_sql(true), history_chunk_sql(false));
        let key = metric_key.to_string();
        tokio::spawn(async move {
            let page = max_results.unwrap_or(i64::MAX);
            let result = async {
                let mut sent: i64 = 0;
                let mut last: Option<(i64, i64, i64, i64)> = None;
                loop {
                    // One point more than the page holds tells whether a next page exists.
                    let want = (page - sent).saturating_add(1).min(CHUNK as i64);
                    let query = match last {
                        None => query(first_sql.clone())
                            .bind(run_pk)
                            .bind(&key)
                            .bind(want)
                            .bind(i64::try_from(token.offset).unwrap_or(i64::MAX)),
                        Some((timestamp, step, value_key, is_nan)) => query(next_sql.clone())
                            .bind(run_pk)
                            .bind(&key)
                            .bind(timestamp)
                            .bind(step)
                            .bind(value_key)
                            .bind(is_nan)
                            .bind(want),
                    };
                    let found = query.fetch_all(&pool).await?;
                    let count = found.len() as i64;
                    let mut chunk = Vec::with_capacity(found.len());
                    for row in &found {
                        let point = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get::<i64, _>(3)?);
                        chunk.push(Metric {
                            key: key.clone(),
                            value: rows::value_from_key(point.2, point.3 != 0),
                            timestamp: point.0,
                            step: point.1,
                        });
                        last = Some(point);
                    }
                    if count == 0 {
                        return Ok(None);
                    }
                    let room = usize::try_from(page - sent).unwrap_or(usize::MAX);
                    if chunk.len() > room {
                        chunk.truncate(room);
                        flush(&tx, &mut chunk).await;
                        return Ok(Some(PageToken { offset: token.offset + page as u64 }.encode()));
                    }
                    sent += chunk.len() as i64;
                    if !flush(&tx, &mut chunk).await || count < want {
                        return Ok(None);
                    }
                }
            }
            .await;
            let last = result.map(|next_page_token| HistoryChunk::End { next_page_token });
            let _ = tx.send(last).await;
        });
        Ok(rx)
    }

    /// Up to `max_results` points per run in a step range, evenly spaced over each run's points
    /// (always including the last), grouped by run in the order the runs were asked for.
    pub async fn metric_history_bulk_interval(&self, q: BulkIntervalQuery) -> Result<Vec<RunMetric>> {
        if q.run_ids.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'run_ids': name at least one run"));
        }
        if q.run_ids.len() > MAX_BULK_RUNS {
            return Err(Error::invalid(format!(
                "{} run ids were given; at most {MAX_BULK_RUNS} can be read at once",
                q.run_ids.len()
            )));
        }
        if q.metric_key.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'metric_key'"));
        }
        let max_results = q.max_results.unwrap_or(MAX_BULK_RESULTS);
        if !(1..=MAX_BULK_RESULTS).contains(&max_results) {
            return Err(Error::invalid(format!(
                "Invalid value {max_results} for parameter 'max_results': it must be between 1 and {MAX_BULK_RESULTS}"
            )));
        }
        let (start, end) = match (q.start_step, q.end_step) {
            (None, None) => (i64::MIN, i64::MAX),
            (Some(s), Some(e)) if s <= e => (s, e),
            (Some(s), Some(e)) => {
                return Err(Error::invalid(format!("start_step ({s}) must not be greater than end_step ({e})")));
            }
            _ => return Err(Error::invalid("Give both start_step and end_step, or neither")),
        };
        let mut out = Vec::new();
        for run_id in &q.run_ids {
            let run_pk = match self.find_run(run_id).await {
                Ok(run) => run.pk,
                Err(e) if e.kind() == kiln_core::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // Counted only as far as the exact sampling goes: a longer history is not counted whole.
            let count = self.count_points(run_pk, &q.metric_key, (start, end), Some(EXACT_SAMPLE_LIMIT + 1)).await?;
            let points = if count > EXACT_SAMPLE_LIMIT && count > max_results {
                self.stride_sample(run_pk, &q.metric_key, (start, end), max_results).await?
            } else {
                self.exact_sample(run_pk, &q.metric_key, (start, end), count, max_results).await?
            };
            out.extend(points.into_iter().map(|metric| RunMetric { metric, run_id: run_id.clone() }));
        }
        Ok(out)
    }

    /// MLflow's sample, exactly: the points at the positions sample_positions keeps, in step
    /// order, chosen by the database so only the kept points leave it.
    async fn exact_sample(&self, run_pk: i64, key: &str, (start, end): (i64, i64), n: i64, k: i64) -> Result<Vec<Metric>> {
        let mut sql = Sql::new(
            self.store.dialect(),
            "SELECT key, value_key, timestamp, step, is_nan FROM (SELECT key, value_key, timestamp, step, is_nan, \
             ROW_NUMBER() OVER (ORDER BY step, timestamp, value_key, is_nan) - 1 AS pos FROM metrics WHERE run_pk = ",
        );
        sql.bind_int(run_pk).push(" AND key = ").bind_text(key);
        sql.push(" AND step >= ").bind_int(start).push(" AND step <= ").bind_int(end).push(") s");
        if n > k {
            let (bucket, extra) = (n / k, n % k);
            let long_end = extra * (bucket + 1);
            // Bucket b starts at b * bucket + min(b, extra); the last bucket's start gives way
            // to the last point.
            sql.push(" WHERE (CASE WHEN pos < ").bind_int(long_end);
            sql.push(" THEN pos % ").bind_int(bucket + 1).push(" = 0 AND pos / ").bind_int(bucket + 1);
            sql.push(" < ").bind_int(k - 1).push(" ELSE (pos - ").bind_int(long_end).push(") % ").bind_int(bucket);
            sql.push(" = 0 AND ").bind_int(extra).push(" + (pos - ").bind_int(long_end).push(") / ").bind_int(bucket);
            sql.push(" < ").bind_int(k - 1).push(" END) OR pos = ").bind_int(n - 1);
        }
        sql.push(" ORDER BY pos");
        sql.build().fetch_all(self.store.reader()).await?.iter().map(|row| rows::metric(row, 0)).collect()
    }

    /// A sample of a long history: the first and last points in step order, as MLflow keeps
    /// them, and between them points spread evenly over the logging time (the metrics table's
    /// own order): each sampled timestamp is the first at or after the one before plus an even
    /// share of the time span, found by one index seek, so a million points cost a few thousand
    /// seeks. When the points share too few distinct timestamps for that, every `stride`-th
    /// timestamp is taken instead (skipping `stride - 1` index entries each). At most `k`
    /// points, answered in step order.
    /// Points of a metric in a step range, counted up to `cap` when one is given.
    async fn count_points(&self, run_pk: i64, key: &str, (start, end): (i64, i64), cap: Option<i64>) -> Result<i64> {
        let limit = if cap.is_some() { " LIMIT $5" } else { "" };
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM metrics WHERE run_pk = $1 AND key = $2 AND step >= $3 AND step <= $4{limit}) p"
        );
        let mut q = query(sql).bind(run_pk).bind(key).bind(start).bind(end);
        if let Some(cap) = cap {
            q = q.bind(cap);
        }
        Ok(q.fetch_one(self.store.reader()).await?.try_get(0)?)
    }

    async fn stride_sample(&self, run_pk: i64, key: &str, (start, end): (i64, i64), k: i64) -> Result<Vec<Metric>> {
        let in_range = |sql: &mut Sql, table: &str| {
            sql.push(&format!("{table}.run_pk = ")).bind_int(run_pk).push(&format!(" AND {table}.key = ")).bind_text(key);
            sql.push(&format!(" AND {table}.step >= ")).bind_int(start).push(&format!(" AND {table}.step <= ")).bind_int(end);
        };
        let mut points: Vec<Metric> = Vec::new();
        if k > 2 {
            let inner = k - 2;
            // The span of logging time, each end by one seek along the index (MIN and MAX in one
            // query would scan every point).
            let mut ends = [None, None];
            for (end, direction) in ends.iter_mut().zip(["ASC", "DESC"]) {
                let mut q = Sql::new(self.store.dialect(), "SELECT m.timestamp FROM metrics m WHERE ");
                in_range(&mut q, "m");
                q.push(&format!(" ORDER BY m.timestamp {direction} LIMIT 1"));
                if let Some(row) = q.build().fetch_optional(self.store.reader()).await? {
                    *end = Some(row.try_get::<i64, _>(0)?);
                }
            }
            let [first, last] = ends;
            let width = match (first, last) {
                // Rounded up, so that the samples reach the end of the span.
                (Some(a), Some(b)) => b.saturating_sub(a).saturating_add(inner - 1) / inner,
                _ => 0,
            };
            // Seeking by time first; when the points bunch on a few timestamps that gives too few
            // samples, stepping by count instead.
            for seek in [width > 1, false] {
                let mut sql =
                    Sql::new(self.store.dialect(), "WITH RECURSIVE s (i, ts) AS (SELECT 0, (SELECT MIN(m.timestamp) FROM metrics m WHERE ");
                in_range(&mut sql, "m");
                sql.push(") UNION ALL SELECT s.i + 1, (SELECT x.timestamp FROM metrics x WHERE ");
                in_range(&mut sql, "x");
                if seek {
                    sql.push(" AND x.timestamp >= s.ts + ").bind_int(width).push(" ORDER BY x.timestamp LIMIT 1");
                } else {
                    let n = self.count_points(run_pk, key, (start, end), None).await?;
                    let stride = ((n + inner - 1) / inner).max(1);
                    sql.push(" AND x.timestamp > s.ts ORDER BY x.timestamp LIMIT 1 OFFSET ").bind_int(stride - 1);
                }
                sql.push(") FROM s WHERE s.ts IS NOT NULL AND s.i + 1 < ").bind_int(inner);
                // CROSS JOIN keeps the sampled timestamps as the outer loop (SQLite otherwise may
                // scan every point and look each up among the samples).
                sql.push(") SELECT m.key, m.value_key, m.timestamp, m.step, m.is_nan FROM s CROSS JOIN metrics m WHERE m.timestamp = s.ts AND ");
                in_range(&mut sql, "m");
                points.clear();
                let mut by_timestamp: HashMap<i64, usize> = HashMap::new();
                for row in sql.build().fetch_all(self.store.reader()).await? {
                    let point = rows::metric(&row, 0)?;
                    // One point per sampled timestamp: the first in step order.
                    match by_timestamp.get(&point.timestamp) {
                        Some(&at) if (point.step, point.value.to_bits()) < (points[at].step, points[at].value.to_bits()) => points[at] = point,
                        Some(_) => {}
                        None => {
                            by_timestamp.insert(point.timestamp, points.len());
                            points.push(point);
                        }
                    }
                }
                if !seek || points.len() as i64 >= inner / 2 {
                    break;
                }
            }
        }
        // The two ends in step order are kept beside the latest value; they answer when the range
        // holds the whole history, which is what a chart asks for first.
        let ends = query(
            "SELECT key, value_key, timestamp, step, is_nan, key, first_value_key, first_timestamp, first_step, first_is_nan \
             FROM latest_metrics WHERE run_pk = $1 AND key = $2",
        )
        .bind(run_pk)
        .bind(key)
        .fetch_optional(self.store.reader())
        .await?;
        if let Some(row) = ends {
            let (last, first) = (rows::metric(&row, 0)?, rows::metric(&row, 5)?);
            if start <= first.step && last.step <= end {
                points.extend([last, first].into_iter().take(k.min(2) as usize));
                return Ok(sorted(points));
            }
        }
        for direction in ["DESC", "ASC"].into_iter().take(k.min(2) as usize) {
            let mut sql = Sql::new(self.store.dialect(), "SELECT key, value_key, timestamp, step, is_nan FROM metrics m WHERE ");
            in_range(&mut sql, "m");
            sql.push(&format!(
                " ORDER BY m.step {direction}, m.timestamp {direction}, m.value_key {direction}, m.is_nan {direction} LIMIT 1"
            ));
            if let Some(row) = sql.build().fetch_optional(self.store.reader()).await? {
                points.push(rows::metric(&row, 0)?);
            }
        }
        Ok(sorted(points))
    }
}

/// Points in step order, each once.
fn sorted(mut points: Vec<Metric>) -> Vec<Metric> {
    let order = |m: &Metric| (m.step, m.timestamp, m.value.to_bits());
    points.sort_by_key(order);
    points.dedup_by_key(|m| order(m));
    points
}

/// Sends the chunk if it holds anything; false when the receiver has gone.
async fn flush(tx: &mpsc::Sender<Result<HistoryChunk>>, chunk: &mut Vec<Metric>) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let points = std::mem::replace(chunk, Vec::with_capacity(CHUNK));
    tx.send(Ok(HistoryChunk::Points(points))).await.is_ok()
}
