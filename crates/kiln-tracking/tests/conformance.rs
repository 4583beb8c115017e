//! The store conformance suite: every test runs on SQLite and on PostgreSQL, through the same
//! tracking service. PostgreSQL is reached at $KILN_TEST_PG (default
//! postgres://postgres@127.0.0.1:5432); each test makes its own database and drops it.

use std::future::Future;

use kiln_store::{MetaStore, StoreOptions};
use kiln_tracking::*;
use sqlx::Connection;

/// A fresh SQLite file (WAL, a writer and a pool of readers, as `kiln server` runs it).
async fn sqlite_store(options: StoreOptions) -> (MetaStore, Scratch) {
    let path = std::env::temp_dir().join(format!("kiln-test-{}.db", uuid::Uuid::new_v4().simple()));
    let store = MetaStore::connect(&format!("sqlite:///{}", path.display()), options).await.expect("SQLite");
    (store, Scratch::SqliteFile(path))
}

async fn sqlite() -> (Tracking, Scratch) {
    let (store, scratch) = sqlite_store(StoreOptions::default()).await;
    (Tracking::open(store, "mlflow-artifacts:/").await.expect("open tracking"), scratch)
}

fn pg_admin() -> String {
    std::env::var("KILN_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn postgres_store(options: StoreOptions) -> (MetaStore, Scratch) {
    let name = format!("kiln_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_admin()))
        .await
        .expect("PostgreSQL must be reachable at $KILN_TEST_PG for the conformance suite");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create database");
    let store = MetaStore::connect(&format!("{}/{name}", pg_admin()), options).await.expect("connect");
    (store, Scratch::PgDatabase(name))
}

async fn postgres() -> (Tracking, Scratch) {
    let (store, scratch) = postgres_store(StoreOptions::default()).await;
    (Tracking::open(store, "mlflow-artifacts:/").await.expect("open tracking"), scratch)
}

async fn drop_pg(name: &str) {
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_admin())).await.expect("admin");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop database");
}

/// What a test made for itself and removes afterwards.
enum Scratch {
    SqliteFile(std::path::PathBuf),
    PgDatabase(String),
}

async fn run_on<F, Fut>(backend: (Tracking, Scratch), test: F)
where
    F: FnOnce(Tracking) -> Fut,
    Fut: Future<Output = ()>,
{
    let (tracking, db) = backend;
    let store = tracking.store().clone();
    test(tracking).await;
    clean_up(store, db).await;
}

async fn clean_up(store: MetaStore, db: Scratch) {
    store.close().await;
    match db {
        Scratch::SqliteFile(file) => {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = file.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
        }
        Scratch::PgDatabase(name) => drop_pg(&name).await,
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[tokio::test] async fn $name() { super::run_on(super::sqlite().await, super::$name).await } )*
        }
        mod on_postgres {
            $( #[tokio::test] async fn $name() { super::run_on(super::postgres().await, super::$name).await } )*
        }
    };
}

conformance!(
    default_experiment_exists,
    experiments_lifecycle,
    experiment_tags,
    runs_lifecycle,
    run_names,
    batch_is_all_or_nothing,
    latest_metric_rules,
    metric_history_pages,
    search_runs_filters,
    search_runs_order_and_pages,
    search_experiments_filters,
    bulk_interval_sampling,
    datasets_and_outputs,
    concurrent_batches_all_land,
    migrations_are_idempotent,
    doubles_round_trip_exactly,
    logged_models_lifecycle,
    logged_model_search,
    long_histories_are_sampled_at_a_stride,
);

/// Upgrades from an earlier schema, on both backends: each starts from a store migrated only to
/// that version, holding data written as that version wrote it.
mod upgrades {
    #[tokio::test]
    async fn sqlite_from_version_2() {
        let (store, scratch) = super::sqlite_store(super::StoreOptions { migrate: false, ..Default::default() }).await;
        super::first_points_are_filled_in(store.clone()).await;
        super::clean_up(store, scratch).await;
    }

    #[tokio::test]
    async fn postgres_from_version_2() {
        let (store, scratch) = super::postgres_store(super::StoreOptions { migrate: false, ..Default::default() }).await;
        super::first_points_are_filled_in(store.clone()).await;
        super::clean_up(store, scratch).await;
    }
}

/// Version 3 keeps each metric's first point in step order beside its latest: upgrading fills it
/// in from the points already there.
async fn first_points_are_filled_in(store: MetaStore) {
    use kiln_store::query;
    assert_eq!(store.migrate_to(2).await.unwrap(), vec![1, 2]);
    let mut tx = store.begin_write().await.unwrap();
    query(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
         VALUES ('old', 'mlflow-artifacts:/old', 'active', 0, 0)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let experiment: i64 = query("SELECT experiment_id FROM experiments WHERE name = 'old'").fetch_one(&mut *tx).await.unwrap().try_get(0).unwrap();
    query(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri) \
         VALUES ('0123456789abcdef0123456789abcdef', $1, 'old', 'u', 'FINISHED', 0, 'active', 'mlflow-artifacts:/old/r')",
    )
    .bind(experiment)
    .execute(&mut *tx)
    .await
    .unwrap();
    let run_pk: i64 = query("SELECT run_pk FROM runs").fetch_one(&mut *tx).await.unwrap().try_get(0).unwrap();
    // Logged in reverse step order: the first point in step order is the last one logged.
    let points: Vec<(i64, i64, f64)> = (0..5).map(|i| (40 - 10 * i, 100 + i, i as f64 + 0.5)).collect();
    for (step, timestamp, value) in &points {
        query("INSERT INTO metrics (run_pk, key, step, timestamp, value_key, is_nan) VALUES ($1, 'loss', $2, $3, $4, 0)")
            .bind(run_pk)
            .bind(*step)
            .bind(*timestamp)
            .bind(value.to_bits() as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    query("INSERT INTO latest_metrics (run_pk, key, step, timestamp, value, value_key, is_nan) VALUES ($1, 'loss', 40, 100, 0.5, $2, 0)")
        .bind(run_pk)
        .bind(0.5f64.to_bits() as i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(store.migrate().await.unwrap(), vec![3]);
    let row = query("SELECT first_step, first_timestamp, first_value_key, first_is_nan FROM latest_metrics")
        .fetch_one(&store)
        .await
        .unwrap();
    let first: (i64, i64, i64, i64) = (row.try_get(0).unwrap(), row.try_get(1).unwrap(), row.try_get(2).unwrap(), row.try_get(3).unwrap());
    assert_eq!(first, (0, 104, 4.5f64.to_bits() as i64, 0));
    // The upgraded store goes on keeping both ends as points arrive.
    let t = Tracking::open(store, "mlflow-artifacts:/").await.unwrap();
    let run = "0123456789abcdef0123456789abcdef".to_string();
    t.log_batch(&run, Batch { metrics: vec![metric("loss", 9.0, 200, -1), metric("loss", 8.0, 201, 50)], ..Batch::default() })
        .await
        .unwrap();
    let latest = t.get_run(&run).await.unwrap().data.metrics;
    assert_eq!(latest.iter().map(|m| (m.key.as_str(), m.step)).collect::<Vec<_>>(), vec![("loss", 50)]);
    let row = query("SELECT first_step, first_timestamp FROM latest_metrics").fetch_one(t.store()).await.unwrap();
    assert_eq!((row.try_get::<i64, _>(0).unwrap(), row.try_get::<i64, _>(1).unwrap()), (-1, 200));
}

fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric { key: key.into(), value, timestamp, step }
}

async fn new_run(t: &Tracking, experiment_id: &str, name: &str, start_time: i64) -> String {
    t.create_run(CreateRun {
        experiment_id: experiment_id.into(),
        run_name: Some(name.into()),
        start_time: Some(start_time),
        ..CreateRun::default()
    })
    .await
    .unwrap()
    .info
    .run_id
}

async fn history(t: &Tracking, run_id: &str, key: &str, max: Option<i64>, token: Option<&str>) -> (Vec<Metric>, Option<String>) {
    let mut rx = t.metric_history(run_id, key, max, token).await.unwrap();
    let mut points = Vec::new();
    while let Some(chunk) = rx.recv().await {
        match chunk.unwrap() {
            HistoryChunk::Points(p) => points.extend(p),
            HistoryChunk::End { next_page_token } => return (points, next_page_token),
        }
    }
    panic!("history stream ended without End");
}

async fn search(t: &Tracking, experiment_id: &str, filter: &str, order_by: &[&str]) -> Vec<String> {
    t.search_runs(RunSearch {
        experiment_ids: vec![experiment_id.into()],
        filter: filter.into(),
        order_by: order_by.iter().map(|s| s.to_string()).collect(),
        ..RunSearch::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{filter}: {e}"))
    .runs
    .into_iter()
    .map(|r| r.info.run_name)
    .collect()
}

async fn default_experiment_exists(t: Tracking) {
    let e = t.get_experiment("0").await.unwrap();
    assert_eq!(e.name, "Default");
    assert_eq!(e.artifact_location, "mlflow-artifacts:/0");
    assert_eq!(e.lifecycle_stage, "active");
}

async fn experiments_lifecycle(t: Tracking) {
    let id = t.create_experiment("exp", None, &[tag("a", "1")]).await.unwrap();
    assert_eq!(id, "1");
    let e = t.get_experiment(&id).await.unwrap();
    assert_eq!(e.artifact_location, "mlflow-artifacts:/1");
    assert_eq!(e.tags, vec![tag("a", "1")]);
    assert_eq!(t.create_experiment("exp", None, &[]).await.unwrap_err().kind(), kiln_core::ErrorKind::AlreadyExists);
    assert_eq!(t.get_experiment("99").await.unwrap_err().kind(), kiln_core::ErrorKind::NotFound);
    assert_eq!(t.get_experiment("x").await.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument);

    for bad in ["mlflow-artifacts:/../../etc", "mlflow-artifacts:/a/%2e%2e/b", "mlflow-artifacts:/a\\b", "/etc", "file:///etc", "s3://b/../x", "ftp://h/x"] {
        let refused = t.create_experiment("escape", Some(bad), &[]).await;
        assert_eq!(refused.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument, "{bad}");
    }
    let other = t.create_experiment("other", Some("s3://bucket/x"), &[]).await.unwrap();
    assert_eq!(t.get_experiment(&other).await.unwrap().artifact_location, "s3://bucket/x");
    assert_eq!(t.rename_experiment(&id, "other").await.unwrap_err().kind(), kiln_core::ErrorKind::AlreadyExists);
    t.rename_experiment(&id, "renamed").await.unwrap();
    assert_eq!(t.get_experiment_by_name("renamed").await.unwrap().experiment_id, id);

    let run = new_run(&t, &id, "r", 1).await;
    t.delete_experiment(&id).await.unwrap();
    assert_eq!(t.get_run(&run).await.unwrap().info.lifecycle_stage, "deleted");
    assert_eq!(t.delete_experiment(&id).await.unwrap_err().kind(), kiln_core::ErrorKind::NotFound);
    assert_eq!(t.rename_experiment(&id, "again").await.unwrap_err().kind(), kiln_core::ErrorKind::InvalidState);
    let refused = t.create_run(CreateRun { experiment_id: id.clone(), ..CreateRun::default() }).await;
    assert_eq!(refused.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument);
    t.restore_experiment(&id).await.unwrap();
    assert_eq!(t.get_run(&run).await.unwrap().info.lifecycle_stage, "active");
    assert_eq!(t.restore_experiment(&id).await.unwrap_err().kind(), kiln_core::ErrorKind::NotFound);
}

async fn experiment_tags(t: Tracking) {
    let id = t.create_experiment("tags", None, &[]).await.unwrap();
    t.set_experiment_tag(&id, &tag("k", "v1")).await.unwrap();
    t.set_experiment_tag(&id, &tag("k", "v2")).await.unwrap();
    t.set_experiment_tag(&id, &tag("long", &"x".repeat(20000))).await.unwrap();
    assert!(t.set_experiment_tag(&id, &tag("long", &"x".repeat(20001))).await.is_err());
    assert!(t.set_experiment_tag(&id, &tag("../k", "v")).await.is_err());
    let e = t.get_experiment(&id).await.unwrap();
    assert_eq!(e.tags.iter().find(|t| t.key == "k").unwrap().value, "v2");
    t.delete_experiment_tag(&id, "k").await.unwrap();
    assert_eq!(t.delete_experiment_tag(&id, "k").await.unwrap_err().kind(), kiln_core::ErrorKind::NotFound);
}

async fn runs_lifecycle(t: Tracking) {
    let id = t.create_experiment("runs", None, &[]).await.unwrap();
    let run = t
        .create_run(CreateRun {
            experiment_id: id.clone(),
            user_id: Some("ana".into()),
            start_time: Some(42),
            tags: vec![tag("team", "ml")],
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let run_id = run.info.run_id.clone();
    assert_eq!(run_id.len(), 32);
    assert_eq!(run.info.artifact_uri, format!("mlflow-artifacts:/{id}/{run_id}/artifacts"));
    assert_eq!(run.info.status, "RUNNING");
    let info = t
        .update_run(&run_id, UpdateRun { status: Some("FINISHED".into()), end_time: Some(99), run_name: None })
        .await
        .unwrap();
    assert_eq!((info.status.as_str(), info.end_time), ("FINISHED", Some(99)));
    assert!(t.update_run(&run_id, UpdateRun { status: Some("BOGUS".into()), ..UpdateRun::default() }).await.is_err());
    t.delete_run(&run_id).await.unwrap();
    t.delete_run(&run_id).await.unwrap();
    let refused = t.log_batch(&run_id, Batch { params: vec![tag("p", "1")], ..Batch::default() }).await;
    assert_eq!(refused.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument);
    t.restore_run(&run_id).await.unwrap();
    let got = t.get_run(&run_id).await.unwrap();
    assert_eq!(got.info.lifecycle_stage, "active");
    assert_eq!(got.info.user_id, "ana");
    assert!(got.data.tags.contains(&tag("team", "ml")));
    assert_eq!(t.get_run("0123").await.unwrap_err().kind(), kiln_core::ErrorKind::NotFound);
    assert_eq!(t.delete_run("nope").await.unwrap_err().kind(), kiln_core::ErrorKind::NotFound);
}

async fn run_names(t: Tracking) {
    let id = t.create_experiment("names", None, &[]).await.unwrap();
    let generated = t.create_run(CreateRun { experiment_id: id.clone(), ..CreateRun::default() }).await.unwrap();
    assert_eq!(generated.info.run_name.split('-').count(), 3);
    assert!(generated.data.tags.contains(&tag("mlflow.runName", &generated.info.run_name)));
    let from_tag = t
        .create_run(CreateRun { experiment_id: id.clone(), tags: vec![tag("mlflow.runName", "tagged")], ..CreateRun::default() })
        .await
        .unwrap();
    assert_eq!(from_tag.info.run_name, "tagged");
    let clash = t
        .create_run(CreateRun {
            experiment_id: id.clone(),
            run_name: Some("a".into()),
            tags: vec![tag("mlflow.runName", "b")],
            ..CreateRun::default()
        })
        .await;
    assert_eq!(clash.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument);
    let run_id = from_tag.info.run_id;
    t.log_batch(&run_id, Batch { tags: vec![tag("mlflow.runName", "renamed")], ..Batch::default() }).await.unwrap();
    assert_eq!(t.get_run(&run_id).await.unwrap().info.run_name, "renamed");
    t.log_batch(&run_id, Batch { tags: vec![tag("mlflow.runName", "")], ..Batch::default() }).await.unwrap();
    assert_eq!(t.get_run(&run_id).await.unwrap().info.run_name, "renamed");
    t.update_run(&run_id, UpdateRun { run_name: Some("final".into()), ..UpdateRun::default() }).await.unwrap();
    let run = t.get_run(&run_id).await.unwrap();
    assert_eq!(run.info.run_name, "final");
    assert!(run.data.tags.contains(&tag("mlflow.runName", "final")));
}

async fn batch_is_all_or_nothing(t: Tracking) {
    let id = t.create_experiment("batch", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    t.log_batch(&run, Batch { params: vec![tag("lr", "0.1")], ..Batch::default() }).await.unwrap();
    let conflicting = Batch {
        metrics: vec![metric("loss", 1.0, 10, 0)],
        params: vec![tag("new", "x"), tag("lr", "0.2")],
        tags: vec![tag("t", "v")],
        ..Batch::default()
    };
    assert_eq!(t.log_batch(&run, conflicting).await.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument);
    let got = t.get_run(&run).await.unwrap();
    assert!(got.data.metrics.is_empty(), "metrics of a rejected batch were written");
    assert_eq!(got.data.params, vec![tag("lr", "0.1")]);
    assert!(!got.data.tags.iter().any(|t| t.key == "t"));

    let dup = Batch { params: vec![tag("a", "1"), tag("a", "1")], ..Batch::default() };
    assert!(t.log_batch(&run, dup).await.is_err());
    let too_many = Batch { metrics: (0..1001).map(|i| metric("m", 1.0, i, i)).collect(), ..Batch::default() };
    assert!(t.log_batch(&run, too_many).await.is_err());
    let bad_key = Batch { metrics: vec![metric("ok", 1.0, 1, 0), metric("a//b", 1.0, 1, 0)], ..Batch::default() };
    assert!(t.log_batch(&run, bad_key).await.is_err());
    assert!(t.get_run(&run).await.unwrap().data.metrics.is_empty());

    let long = Batch { params: vec![tag("long", &"p".repeat(7000))], tags: vec![tag("long", &"t".repeat(9000))], ..Batch::default() };
    t.log_batch(&run, long).await.unwrap();
    let got = t.get_run(&run).await.unwrap();
    assert_eq!(got.data.params.iter().find(|p| p.key == "long").unwrap().value.len(), 6000);
    assert_eq!(got.data.tags.iter().find(|p| p.key == "long").unwrap().value.len(), 8000);
    let last_wins = Batch { tags: vec![tag("dup", "1"), tag("dup", "2")], ..Batch::default() };
    t.log_batch(&run, last_wins).await.unwrap();
    assert!(t.get_run(&run).await.unwrap().data.tags.contains(&tag("dup", "2")));
}

async fn latest_metric_rules(t: Tracking) {
    let id = t.create_experiment("latest", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    let points = vec![
        metric("a", 5.0, 100, 2),
        metric("a", 9.0, 50, 1),
        metric("b", 1.0, 10, 0),
        metric("b", f64::NAN, 10, 0),
        metric("c", f64::NAN, 10, 0),
        metric("c", -1.0, 10, 0),
        metric("inf", f64::INFINITY, 1, 0),
    ];
    t.log_batch(&run, Batch { metrics: points, ..Batch::default() }).await.unwrap();
    t.log_batch(&run, Batch { metrics: vec![metric("a", 1.0, 1, 2)], ..Batch::default() }).await.unwrap();
    let latest = t.get_run(&run).await.unwrap().data.metrics;
    let get = |k: &str| latest.iter().find(|m| m.key == k).unwrap().clone();
    assert_eq!(get("a").value, 5.0);
    assert_eq!(get("b").value, 1.0);
    assert!(get("c").value.is_nan());
    assert_eq!(get("inf").value, f64::MAX);
}

async fn metric_history_pages(t: Tracking) {
    let id = t.create_experiment("history", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    let points: Vec<Metric> = (0..5000).map(|i| metric("loss", i as f64 / 10.0, 10_000 - i, i)).collect();
    for chunk in points.chunks(1000) {
        t.log_batch(&run, Batch { metrics: chunk.to_vec(), ..Batch::default() }).await.unwrap();
    }
    t.log_batch(&run, Batch { metrics: vec![points[0].clone()], ..Batch::default() }).await.unwrap();
    let (all, token) = history(&t, &run, "loss", None, None).await;
    assert_eq!(all.len(), 5000, "identical points are stored once");
    assert!(token.is_none());
    assert!(all.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "ordered by timestamp");
    assert_eq!(all[0].step, 4999);
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (page, next) = history(&t, &run, "loss", Some(1500), token.as_deref()).await;
        paged.extend(page);
        match next {
            Some(n) => token = Some(n),
            None => break,
        }
    }
    assert_eq!(paged, all);
    assert!(history(&t, &run, "nope", None, None).await.0.is_empty());
    assert!(history(&t, "0000", "loss", None, None).await.0.is_empty());
    assert!(t.metric_history(&run, "loss", Some(0), None).await.is_err());
    assert!(t.metric_history(&run, "loss", None, Some("bad")).await.is_err());
}

async fn setup_search(t: &Tracking) -> String {
    let id = t.create_experiment("search", None, &[]).await.unwrap();
    let rows: &[(&str, i64, Option<f64>, Option<&str>, &str)] = &[
        ("r1", 10, Some(0.3), Some("0.01"), "Red"),
        ("r2", 20, Some(0.7), Some("0.01"), "blue"),
        ("r3", 30, Some(f64::NAN), Some("0.1"), "red"),
        ("r4", 40, None, None, "green"),
        ("r5", 50, Some(0.1), Some("0.1"), "Blue"),
    ];
    for (name, start, loss, lr, color) in rows {
        let run = new_run(t, &id, name, *start).await;
        let mut batch = Batch { tags: vec![tag("color", color)], ..Batch::default() };
        if let Some(loss) = loss {
            batch.metrics.push(metric("loss", *loss, 1, 0));
        }
        if let Some(lr) = lr {
            batch.params.push(tag("lr", lr));
        }
        t.log_batch(&run, batch).await.unwrap();
    }
    id
}

async fn search_runs_filters(t: Tracking) {
    let id = setup_search(&t).await;
    let cases: &[(&str, &[&str])] = &[
        ("", &["r5", "r4", "r3", "r2", "r1"]),
        ("metrics.loss < 0.5", &["r5", "r1"]),
        ("metrics.loss != 0.3", &["r5", "r3", "r2"]),
        ("metrics.loss >= 0.3 and params.lr = '0.01'", &["r2", "r1"]),
        ("params.lr != '0.01'", &["r5", "r3"]),
        ("params.lr LIKE '0.0%'", &["r2", "r1"]),
        ("tags.color LIKE 'b%'", &["r2"]),
        ("tags.color ILIKE 'b%'", &["r5", "r2"]),
        ("tags.color = 'red'", &["r3"]),
        ("params.lr IS NULL", &["r4"]),
        ("params.lr IS NOT NULL", &["r5", "r3", "r2", "r1"]),
        ("attributes.run_name = 'r2'", &["r2"]),
        ("run_name IN ('r1')", &[]),
        ("attributes.start_time > 25", &["r5", "r4", "r3"]),
        ("attributes.status = 'RUNNING' and attributes.start_time <= 10", &["r1"]),
        ("tags.`color` = 'green'", &["r4"]),
        ("params.lr = '0.01'' OR ''1''=''1'", &[]),
    ];
    for (filter, expected) in cases {
        if filter.starts_with("run_name IN") {
            assert!(t.search_runs(RunSearch { experiment_ids: vec![id.clone()], filter: filter.to_string(), ..RunSearch::default() }).await.is_err());
            continue;
        }
        assert_eq!(search(&t, &id, filter, &[]).await, *expected, "{filter}");
    }
    let all = t.search_runs(RunSearch { experiment_ids: vec![id.clone()], ..RunSearch::default() }).await.unwrap();
    let r2 = all.runs.iter().find(|r| r.info.run_name == "r2").unwrap().info.run_id.clone();
    assert_eq!(search(&t, &id, &format!("attributes.run_id IN ('{r2}', 'nope')"), &[]).await, ["r2"]);
    assert_eq!(search(&t, &id, &format!("attributes.run_id NOT IN ('{r2}')"), &[]).await.len(), 4);
    for bad in ["metrics.loss < 'x'", "params.lr > 1", "nope.x = 1", "metrics.loss < 1 or params.lr = '1'"] {
        let r = t.search_runs(RunSearch { experiment_ids: vec![id.clone()], filter: bad.into(), ..RunSearch::default() }).await;
        assert_eq!(r.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument, "{bad}");
    }
}

async fn search_runs_order_and_pages(t: Tracking) {
    let id = setup_search(&t).await;
    assert_eq!(search(&t, &id, "", &["metrics.loss ASC"]).await, ["r5", "r1", "r2", "r3", "r4"]);
    assert_eq!(search(&t, &id, "metrics.loss < 0.5", &["metrics.loss DESC"]).await, ["r1", "r5"]);
    assert_eq!(search(&t, &id, "metrics.loss >= 0.1 and metrics.loss <= 0.3", &["metrics.loss"]).await, ["r5", "r1"]);
    assert_eq!(search(&t, &id, "metrics.loss != 0.3", &["metrics.loss"]).await, ["r5", "r2", "r3"]);
    assert_eq!(search(&t, &id, "", &["metrics.loss DESC"]).await, ["r2", "r1", "r5", "r3", "r4"]);
    assert_eq!(search(&t, &id, "", &["params.lr DESC"]).await, ["r5", "r3", "r2", "r1", "r4"]);
    assert_eq!(search(&t, &id, "", &["tags.color"]).await, ["r5", "r1", "r2", "r4", "r3"]);
    assert_eq!(search(&t, &id, "", &["attributes.start_time ASC"]).await, ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(search(&t, &id, "", &["run_name DESC"]).await, ["r5", "r4", "r3", "r2", "r1"]);
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = t
            .search_runs(RunSearch { experiment_ids: vec![id.clone()], max_results: 2, page_token: token.clone(), ..RunSearch::default() })
            .await
            .unwrap();
        assert!(page.runs.len() <= 2);
        names.extend(page.runs.into_iter().map(|r| r.info.run_name));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(names, ["r5", "r4", "r3", "r2", "r1"]);
    for max in [0, 50001] {
        let r = t.search_runs(RunSearch { experiment_ids: vec![id.clone()], max_results: max, ..RunSearch::default() }).await;
        assert!(r.is_err(), "max_results {max}");
    }
    let deleted = search(&t, &id, "attributes.run_name = 'r1'", &[]).await;
    assert_eq!(deleted, ["r1"]);
    let all = t.search_runs(RunSearch { experiment_ids: vec![id.clone()], ..RunSearch::default() }).await.unwrap();
    let r1 = all.runs.iter().find(|r| r.info.run_name == "r1").unwrap();
    t.delete_run(&r1.info.run_id).await.unwrap();
    let only_deleted = t
        .search_runs(RunSearch { experiment_ids: vec![id.clone()], view: ViewType::DeletedOnly, ..RunSearch::default() })
        .await
        .unwrap();
    assert_eq!(only_deleted.runs.len(), 1);
    assert_eq!(search(&t, &id, "", &[]).await.len(), 4);
}

async fn search_experiments_filters(t: Tracking) {
    for name in ["alpha", "Beta", "gamma"] {
        let id = t.create_experiment(name, None, &[]).await.unwrap();
        if name == "alpha" {
            t.set_experiment_tag(&id, &tag("team", "x")).await.unwrap();
        }
    }
    let names = |filter: &str, order: &[&str]| {
        let t = t.clone();
        let req = ExperimentSearch {
            filter: filter.to_string(),
            view: ViewType::ActiveOnly,
            max_results: 100,
            order_by: order.iter().map(|s| s.to_string()).collect(),
            page_token: None,
        };
        async move { t.search_experiments(req).await.unwrap().experiments.into_iter().map(|e| e.name).collect::<Vec<_>>() }
    };
    assert_eq!(names("", &["name ASC"]).await, ["Beta", "Default", "alpha", "gamma"]);
    assert_eq!(names("name ILIKE '%B%'", &[]).await, ["Beta"]);
    assert_eq!(names("name LIKE '%a'", &["name"]).await, ["Beta", "alpha", "gamma"]);
    assert_eq!(names("tags.team = 'x'", &[]).await, ["alpha"]);
    assert_eq!(names("tags.team IS NULL", &["name DESC"]).await, ["gamma", "Default", "Beta"]);
    assert_eq!(names("experiment_id IN ('0', '2')", &["name"]).await, ["Beta", "Default"]);
}

async fn bulk_interval_sampling(t: Tracking) {
    let id = t.create_experiment("bulk", None, &[]).await.unwrap();
    let a = new_run(&t, &id, "a", 1).await;
    let b = new_run(&t, &id, "b", 2).await;
    t.log_batch(&a, Batch { metrics: (0..10).map(|i| metric("m", i as f64, i, i)).collect(), ..Batch::default() })
        .await
        .unwrap();
    t.log_batch(&b, Batch { metrics: vec![metric("m", 7.0, 1, 3)], ..Batch::default() }).await.unwrap();
    let got = t
        .metric_history_bulk_interval(BulkIntervalQuery {
            run_ids: vec![b.clone(), a.clone(), "missing".into()],
            metric_key: "m".into(),
            max_results: Some(3),
            ..BulkIntervalQuery::default()
        })
        .await
        .unwrap();
    let summary: Vec<(String, i64)> = got.iter().map(|m| (m.run_id.clone(), m.metric.step)).collect();
    assert_eq!(summary, vec![(b.clone(), 3), (a.clone(), 0), (a.clone(), 4), (a.clone(), 9)]);
    let ranged = t
        .metric_history_bulk_interval(BulkIntervalQuery {
            run_ids: vec![a.clone()],
            metric_key: "m".into(),
            start_step: Some(2),
            end_step: Some(4),
            ..BulkIntervalQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ranged.iter().map(|m| m.metric.step).collect::<Vec<_>>(), vec![2, 3, 4]);
    let bad = BulkIntervalQuery { run_ids: vec![a.clone()], metric_key: "m".into(), start_step: Some(1), ..BulkIntervalQuery::default() };
    assert!(t.metric_history_bulk_interval(bad).await.is_err());

    // Every sample size over histories of a few lengths keeps exactly MLflow's points.
    for n in [1i64, 2, 10, 23, 64] {
        let run = new_run(&t, &id, &format!("n{n}"), 3).await;
        t.log_batch(&run, Batch { metrics: (0..n).map(|i| metric("s", i as f64, i, i)).collect(), ..Batch::default() })
            .await
            .unwrap();
        for k in 1..=n + 1 {
            let q = BulkIntervalQuery { run_ids: vec![run.clone()], metric_key: "s".into(), max_results: Some(k), ..BulkIntervalQuery::default() };
            let steps: Vec<i64> = t.metric_history_bulk_interval(q).await.unwrap().iter().map(|m| m.metric.step).collect();
            let expected: Vec<i64> = sample_positions(n as usize, k as usize).into_iter().map(|p| p as i64).collect();
            assert_eq!(steps, expected, "{n} points sampled to {k}");
        }
    }
}

async fn long_histories_are_sampled_at_a_stride(t: Tracking) {
    let id = t.create_experiment("long", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "long", 1).await;
    let n = EXACT_SAMPLE_LIMIT + 20_001;
    // Logged in reverse step order, so logging order and step order disagree.
    let points: Vec<Metric> = (0..n).map(|i| metric("m", i as f64, 1_000 + i, n - 1 - i)).collect();
    for chunk in points.chunks(1000) {
        t.log_batch(&run, Batch { metrics: chunk.to_vec(), ..Batch::default() }).await.unwrap();
    }
    let sample = |k: i64| {
        let t = t.clone();
        let q = BulkIntervalQuery { run_ids: vec![run.clone()], metric_key: "m".into(), max_results: Some(k), ..BulkIntervalQuery::default() };
        async move { t.metric_history_bulk_interval(q).await.unwrap().into_iter().map(|m| m.metric.step).collect::<Vec<i64>>() }
    };
    let steps = sample(2500).await;
    assert!(steps.len() <= 2500 && steps.len() >= 2400, "{} points", steps.len());
    assert_eq!((steps[0], *steps.last().unwrap()), (0, n - 1), "the first and last points are kept");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "answered in step order");
    let widest = steps.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(widest <= (n - 1) / 2498 + 1, "evenly spread: widest gap {widest}");
    assert_eq!(sample(1).await, vec![n - 1], "one point: the last in step order");
    assert_eq!(sample(2).await, vec![0, n - 1]);
    // A range inside the history finds its own ends.
    let q = BulkIntervalQuery {
        run_ids: vec![run.clone()],
        metric_key: "m".into(),
        start_step: Some(10),
        end_step: Some(n - 11),
        max_results: Some(2),
    };
    let ends: Vec<i64> = t.metric_history_bulk_interval(q).await.unwrap().into_iter().map(|m| m.metric.step).collect();
    assert_eq!(ends, vec![10, n - 11]);
    // Points logged later at either end move the kept ends.
    t.log_batch(&run, Batch { metrics: vec![metric("m", -1.0, 5, -5), metric("m", 0.5, 6, n + 7)], ..Batch::default() })
        .await
        .unwrap();
    assert_eq!(sample(2).await, vec![-5, n + 7]);
    // Ties on step are broken by timestamp, then value, as the history orders them.
    t.log_batch(&run, Batch { metrics: vec![metric("m", -2.0, 4, -5), metric("m", 0.25, 9, n + 7)], ..Batch::default() })
        .await
        .unwrap();
    let ends = t
        .metric_history_bulk_interval(BulkIntervalQuery {
            run_ids: vec![run.clone()],
            metric_key: "m".into(),
            max_results: Some(2),
            ..BulkIntervalQuery::default()
        })
        .await
        .unwrap();
    let ends: Vec<(i64, i64, f64)> = ends.iter().map(|m| (m.metric.step, m.metric.timestamp, m.metric.value)).collect();
    assert_eq!(ends, vec![(-5, 4, -2.0), (n + 7, 9, 0.25)]);
}

/// MLflow's sampling of `n` ordered points down to at most `k`: the first point of each of `k`
/// near-equal buckets (the first `n % k` one larger), with the last point always kept.
fn sample_positions(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    let (q, r) = (n / k, n % k);
    let mut positions: Vec<usize> = (0..k).map(|b| b * q + b.min(r)).collect();
    if positions.last() != Some(&(n - 1)) {
        *positions.last_mut().expect("k >= 1") = n - 1;
    }
    positions
}

#[test]
fn sampling_matches_mlflow() {
    assert_eq!(sample_positions(10, 2), vec![0, 9]);
    assert_eq!(sample_positions(10, 3), vec![0, 4, 9]);
    assert_eq!(sample_positions(10, 4), vec![0, 3, 6, 9]);
    assert_eq!(sample_positions(10, 7), vec![0, 2, 4, 6, 7, 8, 9]);
    assert_eq!(sample_positions(10, 1), vec![9]);
    assert_eq!(sample_positions(5, 3), vec![0, 2, 4]);
    assert_eq!(sample_positions(3, 10), vec![0, 1, 2]);
    assert_eq!(sample_positions(0, 10), Vec::<usize>::new());
}

async fn datasets_and_outputs(t: Tracking) {
    let id = t.create_experiment("data", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    let other = new_run(&t, &id, "o", 2).await;
    let dataset = |source: &str| Dataset {
        name: "iris".into(),
        digest: "abc".into(),
        source_type: "local".into(),
        source: source.into(),
        schema: Some("{}".into()),
        profile: None,
    };
    let input = |source: &str, context: &str| DatasetInput { tags: vec![tag("mlflow.data.context", context)], dataset: dataset(source) };
    t.log_inputs(&run, vec![input("first", "train")], vec![]).await.unwrap();
    t.log_inputs(&run, vec![input("first", "eval")], vec![]).await.unwrap();
    t.log_inputs(&other, vec![input("second", "eval")], vec![]).await.unwrap();
    let got = t.get_run(&run).await.unwrap().inputs.dataset_inputs;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].tags, vec![tag("mlflow.data.context", "train")]);
    let got = t.get_run(&other).await.unwrap().inputs.dataset_inputs;
    assert_eq!(got[0].dataset.source, "first", "a dataset is kept as first logged");
    assert_eq!(search(&t, &id, "datasets.name = 'iris' and datasets.context = 'train'", &[]).await, ["r"]);
    assert_eq!(search(&t, &id, "datasets.digest IN ('abc')", &[]).await, ["o", "r"]);
    t.log_outputs(&run, vec![ModelOutput { model_id: "m-1".into(), step: 3 }]).await.unwrap();
    assert_eq!(t.get_run(&run).await.unwrap().outputs.model_outputs, vec![ModelOutput { model_id: "m-1".into(), step: 3 }]);
}

async fn concurrent_batches_all_land(t: Tracking) {
    let id = t.create_experiment("concurrent", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    let mut tasks = Vec::new();
    for worker in 0..8i64 {
        let (t, run) = (t.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            for batch in 0..10i64 {
                let metrics = (0..100).map(|i| metric(&format!("w{worker}"), i as f64, batch * 100 + i, batch * 100 + i)).collect();
                t.log_batch(&run, Batch { metrics, ..Batch::default() }).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for worker in 0..8 {
        assert_eq!(history(&t, &run, &format!("w{worker}"), None, None).await.0.len(), 1000);
    }
}

async fn migrations_are_idempotent(t: Tracking) {
    assert!(t.store().migrate().await.unwrap().is_empty());
    let again = Tracking::open(t.store().clone(), "mlflow-artifacts:/").await.unwrap();
    assert_eq!(again.get_experiment("0").await.unwrap().name, "Default");
}

async fn doubles_round_trip_exactly(t: Tracking) {
    let id = t.create_experiment("exact", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    let values = [
        0.12211025850028055,
        9007199254740991.0,
        1e-300,
        5e-324,
        -2.2250738585072014e-308,
        0.1,
        1.0 / 3.0,
        f64::MAX,
        1.0009595399496053e223,
        5.1391479358566495e-229,
        -2.4182585100455157e240,
    ];
    let metrics: Vec<Metric> = values.iter().enumerate().map(|(i, &v)| metric(&format!("m{i}"), v, i as i64, i64::MAX - i as i64)).collect();
    t.log_batch(&run, Batch { metrics, ..Batch::default() }).await.unwrap();
    let latest = t.get_run(&run).await.unwrap().data.metrics;
    for (i, &v) in values.iter().enumerate() {
        let key = format!("m{i}");
        let got = latest.iter().find(|m| m.key == key).unwrap();
        assert_eq!(got.value.to_bits(), v.to_bits(), "latest {key}");
        assert_eq!(got.step, i64::MAX - i as i64);
        let (points, _) = history(&t, &run, &key, None, None).await;
        assert_eq!(points[0].value.to_bits(), v.to_bits(), "history {key}");
    }
}

async fn logged_models_lifecycle(t: Tracking) {
    let id = t.create_experiment("models", None, &[]).await.unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    let created = t
        .create_logged_model(CreateLoggedModel {
            experiment_id: id.clone(),
            name: Some("clf".into()),
            source_run_id: Some(run.clone()),
            params: vec![tag("alpha", "2")],
            tags: vec![tag("t", "v")],
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap();
    let model_id = created.info.model_id.clone();
    assert!(
        model_id.starts_with("m-") && model_id.len() == 34,
        "{model_id}"
    );
    assert_eq!(created.info.status, "LOGGED_MODEL_PENDING");
    assert_eq!(
        created.info.artifact_uri,
        format!("mlflow-artifacts:/{id}/models/{model_id}/artifacts")
    );
    assert_eq!(created.data.params, vec![tag("alpha", "2")]);
    assert_eq!(created.info.tags, vec![tag("t", "v")]);

    let bad = |name: &str| CreateLoggedModel {
        experiment_id: id.clone(),
        name: Some(name.into()),
        ..CreateLoggedModel::default()
    };
    for name in ["", "a/b", "a.b", "50%"] {
        assert_eq!(
            t.create_logged_model(bad(name)).await.unwrap_err().kind(),
            kiln_core::ErrorKind::InvalidArgument,
            "{name}"
        );
    }
    let unnamed = t
        .create_logged_model(CreateLoggedModel {
            experiment_id: id.clone(),
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap();
    assert!(!unnamed.info.name.is_empty());
    let missing_run = CreateLoggedModel {
        experiment_id: id.clone(),
        source_run_id: Some("nope".into()),
        ..CreateLoggedModel::default()
    };
    assert_eq!(
        t.create_logged_model(missing_run).await.unwrap_err().kind(),
        kiln_core::ErrorKind::NotFound
    );

    let ready = t
        .finalize_logged_model(&model_id, LoggedModelStatus::Ready)
        .await
        .unwrap();
    assert_eq!(ready.info.status, "LOGGED_MODEL_READY");
    t.set_logged_model_tags(&model_id, vec![tag("t", "w"), tag("u", "1")])
        .await
        .unwrap();
    t.delete_logged_model_tag(&model_id, "u").await.unwrap();
    assert_eq!(
        t.delete_logged_model_tag(&model_id, "u")
            .await
            .unwrap_err()
            .kind(),
        kiln_core::ErrorKind::NotFound
    );
    t.log_logged_model_params(&model_id, vec![tag("beta", "3")])
        .await
        .unwrap();

    let point = |value: f64, step: i64, dataset: Option<&str>| ModelMetric {
        key: "acc".into(),
        value,
        timestamp: 10 + step,
        step,
        dataset_name: dataset.map(String::from),
        dataset_digest: dataset.map(|_| "d1".into()),
        model_id: model_id.clone(),
        run_id: String::new(),
    };
    let batch = Batch {
        metrics: vec![metric("acc", 0.5, 10, 0), metric("acc", 0.75, 11, 1)],
        model_metrics: vec![point(0.5, 0, None), point(0.75, 1, Some("eval"))],
        ..Batch::default()
    };
    t.log_batch(&run, batch).await.unwrap();
    let got = t.get_logged_model(&model_id).await.unwrap();
    assert_eq!(got.info.tags, vec![tag("t", "w")]);
    assert_eq!(got.data.params, vec![tag("alpha", "2"), tag("beta", "3")]);
    assert_eq!(got.data.metrics.len(), 2);
    assert_eq!(got.data.metrics[1].dataset_name.as_deref(), Some("eval"));
    assert_eq!(got.data.metrics[1].run_id, run);
    assert_eq!(
        t.get_run(&run).await.unwrap().data.metrics.len(),
        1,
        "the run keeps its own latest metric"
    );

    let unknown = Batch {
        metrics: vec![metric("m", 1.0, 1, 0)],
        model_metrics: vec![ModelMetric {
            model_id: "m-nope".into(),
            ..point(1.0, 0, None)
        }],
        ..Batch::default()
    };
    assert_eq!(
        t.log_batch(&run, unknown).await.unwrap_err().kind(),
        kiln_core::ErrorKind::NotFound
    );
    let metrics = t.get_run(&run).await.unwrap().data.metrics;
    assert!(
        metrics.iter().all(|m| m.key != "m"),
        "a refused batch left a metric"
    );

    // A model's params are written once.
    let again = t.log_logged_model_params(&model_id, vec![tag("beta", "3")]).await;
    assert_eq!(again.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument);
    let twice = CreateLoggedModel {
        experiment_id: id.clone(),
        params: vec![tag("p", "1"), tag("p", "1")],
        ..CreateLoggedModel::default()
    };
    assert_eq!(t.create_logged_model(twice).await.unwrap_err().kind(), kiln_core::ErrorKind::InvalidArgument);

    t.delete_logged_model(&model_id).await.unwrap();
    assert_eq!(
        t.get_logged_model(&model_id).await.unwrap_err().kind(),
        kiln_core::ErrorKind::NotFound
    );
    assert_eq!(t.get_logged_model_with(&model_id, true).await.unwrap().info.model_id, model_id);
    // Deleting it again changes nothing; an unknown model is not found.
    t.delete_logged_model(&model_id).await.unwrap();
    assert_eq!(t.delete_logged_model("m-unknown").await.unwrap_err().kind(), kiln_core::ErrorKind::NotFound);
}

async fn logged_model_search(t: Tracking) {
    let id = t
        .create_experiment("search-models", None, &[])
        .await
        .unwrap();
    let run = new_run(&t, &id, "r", 1).await;
    let mut ids = Vec::new();
    for (name, lr, acc) in [("a", "0.1", 0.9), ("b", "0.2", 0.7), ("c", "0.1", f64::NAN)] {
        let m = t
            .create_logged_model(CreateLoggedModel {
                experiment_id: id.clone(),
                name: Some(name.into()),
                params: vec![tag("lr", lr)],
                tags: vec![tag("kind", if name == "b" { "tree" } else { "linear" })],
                ..CreateLoggedModel::default()
            })
            .await
            .unwrap();
        let model_metrics = vec![ModelMetric {
            key: "acc".into(),
            value: acc,
            timestamp: 1,
            step: 0,
            dataset_name: Some("eval".into()),
            dataset_digest: None,
            model_id: m.info.model_id.clone(),
            run_id: String::new(),
        }];
        t.log_batch(
            &run,
            Batch {
                metrics: vec![metric("acc", acc, 1, 0)],
                model_metrics,
                ..Batch::default()
            },
        )
        .await
        .unwrap();
        ids.push(m.info.model_id);
    }
    let names = |filter: &str, order: Vec<LoggedModelOrder>| {
        let t = t.clone();
        let req = LoggedModelSearch {
            experiment_ids: vec![id.clone()],
            filter: filter.into(),
            order_by: order,
            ..LoggedModelSearch::default()
        };
        async move {
            t.search_logged_models(req)
                .await
                .unwrap()
                .models
                .into_iter()
                .map(|m| m.info.name)
                .collect::<Vec<_>>()
        }
    };
    let by = |field: &str, ascending: bool| {
        vec![LoggedModelOrder {
            field_name: field.into(),
            ascending,
            ..LoggedModelOrder::default()
        }]
    };
    assert_eq!(names("", by("name", true)).await, ["a", "b", "c"]);
    assert_eq!(
        names("params.lr = '0.1'", by("name", false)).await,
        ["c", "a"]
    );
    assert_eq!(
        names("tags.kind != 'tree' AND name LIKE '%'", by("name", true)).await,
        ["a", "c"]
    );
    assert_eq!(names("metrics.acc > 0.8", vec![]).await, ["a"]);
    assert_eq!(
        names("", by("metrics.acc", true)).await,
        ["b", "a", "c"],
        "NaN and missing values sort last"
    );
    assert_eq!(names("", by("metrics.acc", false)).await, ["a", "b", "c"]);
    assert_eq!(
        names(
            "name IN ('a', 'b') AND status = 'PENDING'",
            by("name", true)
        )
        .await,
        ["a", "b"]
    );
    for bad in ["metrics.acc LIKE 'x'", "nonsense = 1", "params.lr > 1"] {
        let req = LoggedModelSearch {
            experiment_ids: vec![id.clone()],
            filter: bad.into(),
            ..LoggedModelSearch::default()
        };
        assert_eq!(
            t.search_logged_models(req).await.unwrap_err().kind(),
            kiln_core::ErrorKind::InvalidArgument,
            "{bad}"
        );
    }
    let no_experiments = LoggedModelSearch::default();
    assert!(t.search_logged_models(no_experiments).await.unwrap().models.is_empty());
    let other_dataset = LoggedModelSearch {
        experiment_ids: vec![id.clone()],
        datasets: vec![DatasetFilter {
            dataset_name: "train".into(),
            dataset_digest: None,
        }],
        ..LoggedModelSearch::default()
    };
    assert!(
        t.search_logged_models(other_dataset)
            .await
            .unwrap()
            .models
            .is_empty()
    );

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let req = LoggedModelSearch {
            experiment_ids: vec![id.clone()],
            max_results: Some(2),
            page_token: token.clone(),
            ..LoggedModelSearch::default()
        };
        let page = t.search_logged_models(req).await.unwrap();
        seen.extend(page.models.into_iter().map(|m| m.info.model_id));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}
