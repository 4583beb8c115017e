use proptest::prelude::*;

use super::*;

fn runs(text: &str) -> Result<Filter, crate::Error> {
    parse_filter(text, Schema::Runs)
}

fn cmp(entity: Entity, op: Op, value: Value) -> Comparison {
    Comparison { entity, op, value }
}

#[test]
fn empty_filter_matches_everything() {
    assert_eq!(runs("").unwrap().clauses, vec![]);
    assert_eq!(runs("   ").unwrap().clauses, vec![]);
}

#[test]
fn empty_clauses_around_and_are_skipped() {
    for text in ["AND", "params.p = 'x' AND", "AND params.p = 'x'", "params.p = 'x' and and metrics.m > 0"] {
        assert!(runs(text).is_ok(), "{text}");
    }
    assert_eq!(runs("and params.p = 'x' and").unwrap().clauses.len(), 1);
}

#[test]
fn parses_the_common_filter() {
    let f = runs("metrics.loss < 0.5 and params.lr = '0.01'").unwrap();
    assert_eq!(
        f.clauses,
        vec![
            cmp(Entity::Metric("loss".into()), Op::Lt, Value::Number(0.5)),
            cmp(Entity::Param("lr".into()), Op::Eq, Value::String("0.01".into())),
        ]
    );
}

#[test]
fn prefixes_and_aliases() {
    let f = runs("metric.a >= -1e3 AND param.b LIKE 'x%' and tag.c ILIKE '%Y' and attr.created > 5").unwrap();
    assert_eq!(f.clauses[0], cmp(Entity::Metric("a".into()), Op::Ge, Value::Number(-1000.0)));
    assert_eq!(f.clauses[1].op, Op::Like);
    assert_eq!(f.clauses[2].entity, Entity::Tag("c".into()));
    assert_eq!(f.clauses[3].entity, Entity::Attribute("start_time".into()));
}

#[test]
fn quoted_keys() {
    let f = runs("metrics.`my loss` > 1 and tags.\"team name\" = 'ml' and params.\"a.b\" != \"c\"").unwrap();
    assert_eq!(f.clauses[0].entity, Entity::Metric("my loss".into()));
    assert_eq!(f.clauses[1].entity, Entity::Tag("team name".into()));
    assert_eq!(f.clauses[2], cmp(Entity::Param("a.b".into()), Op::Ne, Value::String("c".into())));
}

#[test]
fn dotted_keys_keep_their_dots() {
    let f = runs("tags.mlflow.runName = 'x'").unwrap();
    assert_eq!(f.clauses[0].entity, Entity::Tag("mlflow.runName".into()));
}

#[test]
fn in_lists() {
    let f = runs("attributes.run_id IN ('a', 'b') and datasets.name NOT IN ('train')").unwrap();
    assert_eq!(f.clauses[0].value, Value::List(vec!["a".into(), "b".into()]));
    assert_eq!(f.clauses[1].op, Op::NotIn);
}

#[test]
fn refuses_what_mlflow_refuses() {
    for bad in [
        "metrics.loss < 'x'",
        "metrics.loss LIKE '%'",
        "params.lr < 0.5",
        "params.lr = 0.5",
        "tags.x IN ('a')",
        "attributes.status IN ('a')",
        "attributes.lifecycle_stage = 'active'",
        "METRICS.loss < 1",
        "metrics.loss IS NULL",
        "attributes.nope = 'x'",
        "foo.bar = 'x'",
        "metrics.loss < 0.5 or params.lr = '1'",
        "metrics.loss",
        "metrics.loss <",
        "metrics.loss == 1",
        "metrics. = 1",
        "params.lr = 'unterminated",
        "attributes.run_id IN ()",
        "attributes.run_id IN ('a' 'b')",
        "datasets.size = 'x'",
        "attributes.start_time = 'x'",
        "metrics.loss < 0.5 params.lr = '1'",
    ] {
        let err = runs(bad).expect_err(bad);
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{bad}");
        assert!(err.to_string().starts_with("Invalid filter"), "{bad}: {err}");
    }
}

#[test]
fn experiment_filters() {
    let f = parse_filter("name LIKE 'exp%' and tags.owner = 'me' and creation_time > 0", Schema::Experiments).unwrap();
    assert_eq!(f.clauses.len(), 3);
    assert!(parse_filter("metrics.loss < 1", Schema::Experiments).is_err());
    assert!(parse_filter("attributes.name = 'x'", Schema::Experiments).is_err());
    assert!(parse_filter("name IN ('x')", Schema::Experiments).is_err());
    let f = parse_filter("experiment_id IN ('1', '2') and tags.t IS NOT NULL", Schema::Experiments).unwrap();
    assert_eq!(f.clauses[1].op, Op::IsNotNull);
}

#[test]
fn order_by_clauses() {
    let o = parse_order_by(&["metrics.loss DESC", "params.`lr x`", "created asc"], Schema::Runs).unwrap();
    assert_eq!(o[0], OrderBy { entity: Entity::Metric("loss".into()), ascending: false });
    assert_eq!(o[1], OrderBy { entity: Entity::Param("lr x".into()), ascending: true });
    assert_eq!(o[2].entity, Entity::Attribute("start_time".into()));
    for bad in ["metrics.loss DESC; DROP TABLE runs", "", "metrics.loss sideways", "datasets.name", "attributes.lifecycle_stage"] {
        assert!(parse_order_by(&[bad], Schema::Runs).is_err(), "{bad}");
    }
    assert!(parse_order_by(&["attributes.start_time", "start_time DESC"], Schema::Runs).is_err());
    assert!(parse_order_by(&["tags.x"], Schema::Experiments).is_err());
}

#[test]
fn oversized_filter_is_refused() {
    let text = "params.a = 'x' and ".repeat(10_000);
    assert!(runs(&text).is_err());
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_./-]{0,12}",
        "[a-zA-Z0-9 _.-]{1,12}",
    ]
}

fn quote_key(k: &str) -> String {
    if k.chars().all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c)) && !k.contains('.') {
        k.to_string()
    } else {
        format!("`{}`", k.replace('`', "``"))
    }
}

fn quote_value(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn comparison() -> impl Strategy<Value = Comparison> {
    let num_op = prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Lt), Just(Op::Le), Just(Op::Gt), Just(Op::Ge)];
    let str_op = prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Like), Just(Op::ILike)];
    let value = "[^\\x00]{0,10}";
    prop_oneof![
        (key(), num_op, -1e9f64..1e9).prop_map(|(k, op, n)| cmp(Entity::Metric(k), op, Value::Number(n))),
        (key(), str_op.clone(), value).prop_map(|(k, op, v)| cmp(Entity::Param(k), op, Value::String(v))),
        (key(), str_op, value).prop_map(|(k, op, v)| cmp(Entity::Tag(k), op, Value::String(v))),
        (key(), any::<bool>()).prop_map(|(k, not)| cmp(Entity::Tag(k), if not { Op::IsNotNull } else { Op::IsNull }, Value::Null)),
        (proptest::collection::vec(value, 1..4), any::<bool>()).prop_map(|(items, neg)| cmp(
            Entity::Attribute("run_id".into()),
            if neg { Op::NotIn } else { Op::In },
            Value::List(items)
        )),
    ]
}

fn render(c: &Comparison) -> String {
    let prefix = match &c.entity {
        Entity::Metric(_) => "metrics",
        Entity::Param(_) => "params",
        Entity::Tag(_) => "tags",
        Entity::Attribute(_) => "attributes",
        Entity::Dataset(_) => "datasets",
    };
    let value = match &c.value {
        Value::Number(n) => format!("{n:?}"),
        Value::String(s) => quote_value(s),
        Value::List(items) => format!("({})", items.iter().map(|s| quote_value(s)).collect::<Vec<_>>().join(", ")),
        Value::Null => String::new(),
    };
    format!("{prefix}.{} {} {value}", quote_key(c.entity.key()), c.op.as_str())
}

proptest! {
    #[test]
    fn rendered_filters_parse_back(clauses in proptest::collection::vec(comparison(), 1..5)) {
        let text = clauses.iter().map(render).collect::<Vec<_>>().join(" and ");
        let parsed = runs(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed.clauses, clauses);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        let _ = runs(&text);
        let _ = parse_filter(&text, Schema::Experiments);
        let _ = parse_order_by(&[text.as_str()], Schema::Runs);
    }

    #[test]
    fn arbitrary_bytes_of_the_language_never_panic(text in "[a-z.`'\"()<>=! ,0-9-]{0,60}") {
        let _ = runs(&text);
    }
}

#[test]
fn logged_model_searches() {
    let f = parse_filter("name = 'm' AND metrics.acc > 0.9 AND params.lr IN ('0.1', '0.2') AND tags.t LIKE 'x%'", Schema::LoggedModels)
        .unwrap();
    assert_eq!(f.clauses.len(), 4);
    assert_eq!(f.clauses[1].entity, Entity::Metric("acc".into()));
    let f = parse_filter("creation_time > 5", Schema::LoggedModels).unwrap();
    assert_eq!(f.clauses[0].entity, Entity::Attribute("creation_timestamp".into()));
    for bad in ["metrics.acc LIKE 'x'", "params.p > 3", "datasets.name = 'x'", "run_name = 'x'", "metric.acc > 1"] {
        assert!(parse_filter(bad, Schema::LoggedModels).is_err(), "{bad}");
    }
    assert!(parse_order_by(&["params.p"], Schema::LoggedModels).is_err());
}

#[test]
fn registry_searches() {
    let f = parse_filter("name ILIKE 'fraud%' AND tags.team = 'risk'", Schema::RegisteredModels).unwrap();
    assert_eq!(f.clauses[0].op, Op::ILike);
    assert!(parse_filter("name IN ('a', 'b')", Schema::RegisteredModels).is_ok());
    let f = parse_filter("run_id IN ('a', 'b') AND version_number >= 2 AND source_path LIKE 'mlflow-artifacts:%'", Schema::ModelVersions)
        .unwrap();
    assert_eq!(f.clauses[1].value, Value::Number(2.0));
    for bad in ["metrics.m > 1", "params.p = 'x'", "tags.t IS NULL", "source_path IN ('x')", "description = 'x'"] {
        assert!(parse_filter(bad, Schema::ModelVersions).is_err(), "{bad}");
        assert!(parse_filter(bad, Schema::RegisteredModels).is_err(), "{bad}");
    }
    let o = parse_order_by(&["timestamp DESC"], Schema::RegisteredModels).unwrap();
    assert_eq!(o[0].entity, Entity::Attribute("last_updated_timestamp".into()));
    assert!(parse_order_by(&["tags.t"], Schema::ModelVersions).is_err());
}
