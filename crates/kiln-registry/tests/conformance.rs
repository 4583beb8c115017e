//! The registry's store conformance suite: every test runs on SQLite and on PostgreSQL. The
//! artifact store is a fresh local folder per test. PostgreSQL is reached at $KILN_TEST_PG
//! (default postgres://postgres@127.0.0.1:5432); each test makes its own database and drops it.

use std::future::Future;
use std::path::PathBuf;

use kiln_artifacts::{ArtifactPath, ArtifactStore};
use kiln_core::ErrorKind;
use kiln_registry::*;
use kiln_store::{MetaStore, StoreOptions};
use kiln_tracking::{CreateLoggedModel, CreateRun, Tag, Tracking};
use sqlx::Connection;

struct Env {
    registry: Registry,
    tracking: Tracking,
    artifacts: ArtifactStore,
}

fn pg_admin() -> String {
    std::env::var("KILN_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn open(uri: &str, folder: &PathBuf) -> Env {
    let store = MetaStore::connect(uri, StoreOptions::default())
        .await
        .expect("connect");
    let tracking = Tracking::open(store, "mlflow-artifacts:/")
        .await
        .expect("open tracking");
    let artifacts = ArtifactStore::open(folder.to_str().unwrap()).expect("artifact folder");
    Env {
        registry: Registry::new(tracking.clone(), artifacts.clone()),
        tracking,
        artifacts,
    }
}

async fn run_on<F, Fut>(postgres: bool, test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let folder =
        std::env::temp_dir().join(format!("kiln-registry-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&folder).unwrap();
    let db = if postgres {
        let name = format!("kiln_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_admin()))
            .await
            .expect("PostgreSQL must be reachable at $KILN_TEST_PG for the conformance suite");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create");
        Some(name)
    } else {
        None
    };
    let uri = match &db {
        Some(name) => format!("{}/{name}", pg_admin()),
        None => format!("sqlite:///{}", folder.join("kiln.db").display()),
    };
    let env = open(&uri, &folder).await;
    let store = env.tracking.store().clone();
    test(env).await;
    store.close().await;
    if let Some(name) = db {
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_admin()))
            .await
            .expect("admin");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop database");
    }
    std::fs::remove_dir_all(&folder).unwrap();
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[tokio::test] async fn $name() { super::run_on(false, super::$name).await } )*
        }
        mod on_postgres {
            $( #[tokio::test] async fn $name() { super::run_on(true, super::$name).await } )*
        }
    };
}

conformance!(
    registered_model_lifecycle,
    version_numbers_are_never_reused,
    stages_and_latest_versions,
    aliases_follow_versions,
    sources_stay_in_the_artifact_store,
    searches,
    model_format_is_recorded,
);

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.into(),
        value: value.into(),
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

/// A run in the Default experiment; answers its id and its `runs:/` source for "model".
async fn new_run(t: &Tracking) -> String {
    t.create_run(CreateRun {
        experiment_id: "0".into(),
        ..CreateRun::default()
    })
    .await
    .unwrap()
    .info
    .run_id
}

async fn new_version(r: &Registry, name: &str, run_id: &str) -> ModelVersion {
    r.create_model_version(CreateModelVersion {
        name: name.into(),
        source: format!("runs:/{run_id}/model"),
        run_id: Some(run_id.into()),
        ..CreateModelVersion::default()
    })
    .await
    .unwrap()
}

async fn registered_model_lifecycle(e: Env) {
    let r = &e.registry;
    let m = r
        .create_registered_model(
            "fraud",
            &[tag("team", "risk"), tag("team", "ops")],
            Some("first"),
        )
        .await
        .unwrap();
    assert_eq!(m.tags, vec![tag("team", "ops")]);
    assert_eq!(m.description.as_deref(), Some("first"));
    assert_eq!(
        kind(r.create_registered_model("fraud", &[], None).await),
        ErrorKind::AlreadyExists
    );
    for bad in ["", " ", "a/b", "a:b", "..x", "."] {
        assert_eq!(
            kind(r.create_registered_model(bad, &[], None).await),
            ErrorKind::InvalidArgument,
            "{bad:?}"
        );
    }
    let run = new_run(&e.tracking).await;
    new_version(r, "fraud", &run).await;

    r.create_registered_model("taken", &[], None).await.unwrap();
    assert_eq!(
        kind(r.rename_registered_model("fraud", "taken").await),
        ErrorKind::AlreadyExists
    );
    let renamed = r
        .rename_registered_model("fraud", "fraud-v2")
        .await
        .unwrap();
    assert_eq!(renamed.latest_versions[0].name, "fraud-v2");
    assert_eq!(
        kind(r.get_registered_model("fraud").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        r.get_model_version("fraud-v2", "1").await.unwrap().name,
        "fraud-v2"
    );

    let updated = r
        .update_registered_model("fraud-v2", Some("second"))
        .await
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("second"));
    assert!(updated.last_updated_timestamp >= m.last_updated_timestamp);

    r.set_registered_model_tag("fraud-v2", &tag("stage", "beta"))
        .await
        .unwrap();
    r.delete_registered_model_tag("fraud-v2", "team")
        .await
        .unwrap();
    r.delete_registered_model_tag("fraud-v2", "never-set")
        .await
        .unwrap();
    assert_eq!(
        r.get_registered_model("fraud-v2").await.unwrap().tags,
        vec![tag("stage", "beta")]
    );
    assert_eq!(
        kind(r.set_registered_model_tag("missing", &tag("a", "b")).await),
        ErrorKind::NotFound
    );

    r.delete_registered_model("fraud-v2").await.unwrap();
    assert_eq!(
        kind(r.get_model_version("fraud-v2", "1").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(r.delete_registered_model("fraud-v2").await),
        ErrorKind::NotFound
    );
    // A model made again under the old name starts again from version 1.
    r.create_registered_model("fraud-v2", &[], None)
        .await
        .unwrap();
    assert_eq!(new_version(r, "fraud-v2", &run).await.version, "1");
}

async fn version_numbers_are_never_reused(e: Env) {
    let r = &e.registry;
    r.create_registered_model("m", &[], None).await.unwrap();
    let run = new_run(&e.tracking).await;
    for expected in ["1", "2", "3"] {
        assert_eq!(new_version(r, "m", &run).await.version, expected);
    }
    r.delete_model_version("m", "3").await.unwrap();
    assert_eq!(
        kind(r.get_model_version("m", "3").await),
        ErrorKind::NotFound
    );
    assert_eq!(new_version(r, "m", &run).await.version, "4");
    assert_eq!(
        kind(r.delete_model_version("m", "3").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(r.get_model_version("m", "x").await),
        ErrorKind::InvalidArgument
    );

    let v = r
        .update_model_version("m", "2", Some("described"))
        .await
        .unwrap();
    assert_eq!(v.description, "described");
    r.set_model_version_tag("m", "2", &tag("k", "v"))
        .await
        .unwrap();
    assert_eq!(
        r.get_model_version("m", "2").await.unwrap().tags,
        vec![tag("k", "v")]
    );
    r.delete_model_version_tag("m", "2", "k").await.unwrap();
    assert!(r.get_model_version("m", "2").await.unwrap().tags.is_empty());
    assert_eq!(
        kind(r.set_model_version_tag("m", "9", &tag("k", "v")).await),
        ErrorKind::NotFound
    );

    // Concurrent creations get distinct numbers.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (r, run) = (r.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            new_version(&r, "m", &run).await.version
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().parse::<i64>().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (5..13).collect::<Vec<_>>());
}

async fn stages_and_latest_versions(e: Env) {
    let r = &e.registry;
    r.create_registered_model("m", &[], None).await.unwrap();
    let run = new_run(&e.tracking).await;
    for _ in 0..4 {
        new_version(r, "m", &run).await;
    }
    r.transition_model_version_stage("m", "1", "production", false)
        .await
        .unwrap();
    r.transition_model_version_stage("m", "2", "Production", false)
        .await
        .unwrap();
    let v3 = r
        .transition_model_version_stage("m", "3", "PRODUCTION", true)
        .await
        .unwrap();
    assert_eq!(v3.current_stage, "Production");
    let stage = |v: &str| {
        let r = r.clone();
        let v = v.to_string();
        async move { r.get_model_version("m", &v).await.unwrap().current_stage }
    };
    assert_eq!(stage("1").await, "Archived");
    assert_eq!(stage("2").await, "Archived");
    assert_eq!(stage("4").await, "None");
    assert_eq!(
        kind(
            r.transition_model_version_stage("m", "4", "Archived", true)
                .await
        ),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind(
            r.transition_model_version_stage("m", "4", "Live", false)
                .await
        ),
        ErrorKind::InvalidArgument
    );

    let latest = r.get_latest_versions("m", &[]).await.unwrap();
    let pairs: Vec<(String, String)> = latest
        .iter()
        .map(|v| (v.version.clone(), v.current_stage.clone()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("2".into(), "Archived".into()),
            ("3".into(), "Production".into()),
            ("4".into(), "None".into())
        ]
    );
    let production = r
        .get_latest_versions("m", &["production".into()])
        .await
        .unwrap();
    assert_eq!(production.len(), 1);
    assert_eq!(production[0].version, "3");
    assert!(
        r.get_latest_versions("m", &["Staging".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        kind(r.get_latest_versions("m", &["nope".into()]).await),
        ErrorKind::InvalidArgument
    );

    let resolved = r
        .resolve_model_uri(&ModelUri::parse("models:/m/Production").unwrap())
        .await
        .unwrap();
    assert_eq!(resolved.version, "3");
    assert_eq!(
        r.resolve_model_uri(&ModelUri::parse("models:/m/latest").unwrap())
            .await
            .unwrap()
            .version,
        "4"
    );
    assert_eq!(
        kind(
            r.resolve_model_uri(&ModelUri::parse("models:/m/Staging").unwrap())
                .await
        ),
        ErrorKind::NotFound
    );
}

async fn aliases_follow_versions(e: Env) {
    let r = &e.registry;
    r.create_registered_model("m", &[], None).await.unwrap();
    let run = new_run(&e.tracking).await;
    new_version(r, "m", &run).await;
    new_version(r, "m", &run).await;
    r.set_registered_model_alias("m", "champion", "1")
        .await
        .unwrap();
    assert_eq!(
        r.get_model_version_by_alias("m", "champion")
            .await
            .unwrap()
            .version,
        "1"
    );
    assert_eq!(
        r.get_model_version("m", "1").await.unwrap().aliases,
        vec!["champion"]
    );
    r.set_registered_model_alias("m", "champion", "2")
        .await
        .unwrap();
    r.set_registered_model_alias("m", "shadow", "1")
        .await
        .unwrap();
    let model = r.get_registered_model("m").await.unwrap();
    assert_eq!(
        model.aliases,
        vec![
            Alias {
                alias: "champion".into(),
                version: "2".into()
            },
            Alias {
                alias: "shadow".into(),
                version: "1".into()
            }
        ]
    );
    assert_eq!(
        r.resolve_model_uri(&ModelUri::parse("models:/m@champion").unwrap())
            .await
            .unwrap()
            .version,
        "2"
    );

    for bad in ["latest", "v3", "a b", ""] {
        assert_eq!(
            kind(r.set_registered_model_alias("m", bad, "1").await),
            ErrorKind::InvalidArgument,
            "{bad}"
        );
    }
    assert_eq!(
        kind(r.set_registered_model_alias("m", "ghost", "7").await),
        ErrorKind::NotFound
    );

    r.delete_model_version("m", "2").await.unwrap();
    // As in MLflow, an unknown alias of a known model is a bad parameter.
    assert_eq!(
        kind(r.get_model_version_by_alias("m", "champion").await),
        ErrorKind::InvalidArgument
    );
    r.delete_registered_model_alias("m", "shadow")
        .await
        .unwrap();
    assert!(
        r.get_registered_model("m")
            .await
            .unwrap()
            .aliases
            .is_empty()
    );
}

async fn sources_stay_in_the_artifact_store(e: Env) {
    let (r, t) = (&e.registry, &e.tracking);
    r.create_registered_model("m", &[], None).await.unwrap();
    let run = new_run(t).await;
    let run_uri = t.get_run(&run).await.unwrap().info.artifact_uri;
    let create = |source: String, run_id: Option<String>, model_id: Option<String>| {
        let r = r.clone();
        async move {
            r.create_model_version(CreateModelVersion {
                name: "m".into(),
                source,
                run_id,
                model_id,
                ..CreateModelVersion::default()
            })
            .await
        }
    };

    let v = create(format!("runs:/{run}/model"), Some(run.clone()), None)
        .await
        .unwrap();
    assert_eq!(v.storage_location, format!("{run_uri}/model"));
    assert_eq!(v.run_id.as_deref(), Some(run.as_str()));
    let v = create(format!("{run_uri}/model"), Some(run.clone()), None)
        .await
        .unwrap();
    assert_eq!(v.storage_location, format!("{run_uri}/model"));

    let model = t
        .create_logged_model(CreateLoggedModel {
            experiment_id: "0".into(),
            source_run_id: Some(run.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = model.info.model_id.clone();
    let v = create(format!("models:/{id}"), None, Some(id.clone()))
        .await
        .unwrap();
    assert_eq!(v.storage_location, model.info.artifact_uri);
    assert_eq!(v.run_id.as_deref(), Some(run.as_str()));
    let tags = t.get_logged_model(&id).await.unwrap().info.tags;
    assert_eq!(
        tags,
        vec![tag("mlflow.modelVersions", r#"[{"name":"m","version":3}]"#)]
    );
    let copy = create("models:/m/3".into(), None, None).await.unwrap();
    assert_eq!(copy.storage_location, model.info.artifact_uri);

    let refused = [
        (format!("models:/{id}"), None),
        (format!("runs:/{run}/../other"), Some(run.clone())),
        (format!("runs:/{run}/%2e%2e/other"), Some(run.clone())),
        (
            format!("runs:/{run}/model"),
            Some("0123456789abcdef0123456789abcdef".to_string()),
        ),
        (
            "mlflow-artifacts:/0/other-run/artifacts/model".into(),
            Some(run.clone()),
        ),
        (format!("{run_uri}/../../x"), Some(run.clone())),
        (format!("{run_uri}/model"), None),
        ("file:///etc/passwd".into(), Some(run.clone())),
        ("/etc".into(), Some(run.clone())),
        ("../x".into(), None),
        ("s3://bucket/model".into(), Some(run.clone())),
        ("models:/m-doesnotexist".into(), None),
        ("models://host/m/1".into(), None),
    ];
    for (source, run_id) in refused {
        let got = create(source.clone(), run_id, None).await;
        assert!(
            matches!(
                got.as_ref().map_err(Error::kind),
                Err(ErrorKind::InvalidArgument | ErrorKind::NotFound)
            ),
            "{source}: {got:?}"
        );
    }
    assert_eq!(
        r.search_model_versions(Search::default())
            .await
            .unwrap()
            .model_versions
            .len(),
        4,
        "a refused source left a version"
    );
}

async fn searches(e: Env) {
    let r = &e.registry;
    let run_a = new_run(&e.tracking).await;
    let run_b = new_run(&e.tracking).await;
    for (name, team) in [("alpha", "x"), ("Beta", "y"), ("gamma", "x")] {
        r.create_registered_model(name, &[tag("team", team)], None)
            .await
            .unwrap();
        new_version(r, name, &run_a).await;
    }
    new_version(r, "alpha", &run_b).await;
    r.set_model_version_tag("alpha", "2", &tag("validated", "yes"))
        .await
        .unwrap();

    let models = |filter: &str, order: &[&str]| {
        let r = r.clone();
        let req = Search {
            filter: filter.into(),
            order_by: order.iter().map(|s| s.to_string()).collect(),
            ..Search::default()
        };
        async move {
            r.search_registered_models(req)
                .await
                .unwrap()
                .registered_models
                .into_iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(models("", &[]).await, ["Beta", "alpha", "gamma"]);
    assert_eq!(models("name ILIKE 'b%'", &[]).await, ["Beta"]);
    assert_eq!(
        models("tags.team = 'x'", &["name DESC"]).await,
        ["gamma", "alpha"]
    );
    assert_eq!(
        models("name IN ('alpha', 'gamma') AND tags.team != 'y'", &[]).await,
        ["alpha", "gamma"]
    );
    assert!(
        r.search_registered_models(Search {
            filter: "name = ".into(),
            ..Search::default()
        })
        .await
        .is_err()
    );
    assert!(
        r.search_registered_models(Search {
            max_results: Some(1001),
            ..Search::default()
        })
        .await
        .is_err()
    );

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = r
            .search_registered_models(Search {
                max_results: Some(2),
                page_token: token.clone(),
                ..Search::default()
            })
            .await
            .unwrap();
        seen.extend(page.registered_models.into_iter().map(|m| m.name));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["Beta", "alpha", "gamma"]);

    let versions = |filter: &str, order: &[&str]| {
        let r = r.clone();
        let req = Search {
            filter: filter.into(),
            order_by: order.iter().map(|s| s.to_string()).collect(),
            ..Search::default()
        };
        async move {
            r.search_model_versions(req)
                .await
                .unwrap()
                .model_versions
                .into_iter()
                .map(|v| format!("{}/{}", v.name, v.version))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        versions("", &["name ASC"]).await,
        ["Beta/1", "alpha/2", "alpha/1", "gamma/1"]
    );
    assert_eq!(
        versions(&format!("run_id = '{run_b}'"), &[]).await,
        ["alpha/2"]
    );
    assert_eq!(
        versions(&format!("run_id IN ('{run_a}') AND name = 'alpha'"), &[]).await,
        ["alpha/1"]
    );
    assert_eq!(versions("tags.validated = 'yes'", &[]).await, ["alpha/2"]);
    assert_eq!(versions("version_number > 1", &[]).await, ["alpha/2"]);
    assert_eq!(
        versions("name = 'alpha'", &["version_number ASC"]).await,
        ["alpha/1", "alpha/2"]
    );
    assert_eq!(
        versions("source_path LIKE 'runs:/%'", &["name DESC"])
            .await
            .len(),
        4
    );
}

const ONNX_MLMODEL: &str = r#"flavors:
  onnx:
    data: model.onnx
  python_function:
    loader_module: mlflow.onnx
signature:
  inputs: '[{"type": "tensor", "name": "X", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
  outputs: '[{"type": "tensor", "name": "label", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
"#;

async fn model_format_is_recorded(e: Env) {
    let (r, t) = (&e.registry, &e.tracking);
    r.create_registered_model("m", &[], None).await.unwrap();
    let model = t
        .create_logged_model(CreateLoggedModel {
            experiment_id: "0".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let folder = model
        .info
        .artifact_uri
        .strip_prefix("mlflow-artifacts:/")
        .unwrap()
        .to_string();
    let path = ArtifactPath::parse(&format!("{folder}/MLmodel")).unwrap();
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        ONNX_MLMODEL.as_bytes(),
    ))]);
    e.artifacts.put(&path, body).await.unwrap();
    let id = model.info.model_id;
    r.create_model_version(CreateModelVersion {
        name: "m".into(),
        source: format!("models:/{id}"),
        model_id: Some(id.clone()),
        ..CreateModelVersion::default()
    })
    .await
    .unwrap();
    let format = r
        .model_version_format("m", "1")
        .await
        .unwrap()
        .expect("a format");
    assert_eq!(format.flavors, ["onnx", "python_function"]);
    assert_eq!(format.onnx_model.as_deref(), Some("model.onnx"));
    assert_eq!(
        format.inputs,
        vec![TensorSpec {
            name: Some("X".into()),
            dtype: "float32".into(),
            shape: Some(vec![-1, 4])
        }]
    );
    assert_eq!(format.outputs[0].name.as_deref(), Some("label"));

    // A version whose folder has no MLmodel registers without a format.
    let run = new_run(t).await;
    new_version(r, "m", &run).await;
    assert_eq!(r.model_version_format("m", "2").await.unwrap(), None);
}
