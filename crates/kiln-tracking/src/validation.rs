//! MLflow's validation rules and limits, so that what `mlflow server` accepts Kiln accepts, and
//! what it refuses Kiln refuses with the same error code.

use crate::entities::Tag;
use crate::error::{Error, Result};

pub const MAX_KEY_LENGTH: usize = 250;
/// Longer parameter values are cut to this many characters, as MLflow does.
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// Longer run tag values are cut to this many characters, as MLflow does.
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
/// Experiment tag values longer than this are refused.
pub const MAX_EXPERIMENT_TAG_VALUE_LENGTH: usize = 20000;
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_PER_BATCH: usize = 100;
pub const MAX_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Largest page of runs or experiments a search returns.
pub const MAX_SEARCH_RESULTS: i64 = 50000;
pub const MAX_DATASET_NAME_LENGTH: usize = 500;

/// Checks a metric, parameter or tag key: letters, digits, `_ - . : /` and spaces, at most 250
/// characters, and not a path that would resolve to another name (`a//b`, `./a`, `../a`, `/a`).
pub fn validate_key(what: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(format!("Missing value for required parameter '{what} key': it must be non-empty")));
    }
    if key.chars().count() > MAX_KEY_LENGTH {
        return Err(Error::invalid(format!(
            "{what} key '{}...' is {} characters long; the limit is {MAX_KEY_LENGTH}",
            key.chars().take(40).collect::<String>(),
            key.chars().count()
        )));
    }
    if let Some(bad) = key.chars().find(|&c| !(c.is_alphanumeric() || "_-.:/ ".contains(c))) {
        return Err(Error::invalid(format!(
            "Invalid {what} key '{key}': the character {bad:?} is not allowed; keys may contain letters, digits, \
             underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)"
        )));
    }
    if !is_normal_path(key) {
        return Err(Error::invalid(format!(
            "Invalid {what} key '{key}': names are also used as file paths and must not resolve to another name \
             (no leading or trailing '/', no '//', no '.' or '..' parts)"
        )));
    }
    Ok(())
}

fn is_normal_path(key: &str) -> bool {
    !key.starts_with('/')
        && !key.ends_with('/')
        && !key.contains("//")
        && key.split('/').all(|part| part != "." && part != "..")
}

/// Cuts `value` to at most `limit` characters.
pub fn truncate_chars(value: &mut String, limit: usize) {
    if let Some((byte, _)) = value.char_indices().nth(limit) {
        value.truncate(byte);
    }
}

pub fn validate_tags(what: &str, tags: &[Tag]) -> Result<()> {
    tags.iter().try_for_each(|t| validate_key(what, &t.key))
}

/// Parses an experiment id as MLflow issues them: a decimal integer in a string.
pub fn parse_experiment_id(id: &str) -> Result<i64> {
    if id.is_empty() {
        return Err(Error::invalid("Missing value for required parameter 'experiment_id'"));
    }
    id.parse::<i64>().map_err(|_| {
        Error::invalid(format!(
            "Invalid experiment id '{}': experiment ids are integers, such as '0' or '12'",
            id.chars().take(64).collect::<String>()
        ))
    })
}

pub fn validate_max_results(max_results: i64, limit: i64) -> Result<()> {
    if max_results <= 0 || max_results > limit {
        return Err(Error::invalid(format!(
            "Invalid value {max_results} for parameter 'max_results': it must be between 1 and {limit}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["loss", "val/loss", "a b:c-d.e_f", "système", &"k".repeat(250)] {
            assert!(validate_key("metric", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a//b", "/a", "a/", "./a", "a/./b", "../a", "a/..", ".", "..", "a;b", "a\0b", "a\\b", &"k".repeat(251)] {
            assert!(validate_key("metric", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncation_counts_characters() {
        let mut s = "é".repeat(10);
        truncate_chars(&mut s, 4);
        assert_eq!(s, "éééé");
        let mut short = "ab".to_string();
        truncate_chars(&mut short, 4);
        assert_eq!(short, "ab");
    }
}
