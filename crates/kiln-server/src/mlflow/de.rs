//! Field readers as lenient as MLflow's protobuf JSON parser: 64-bit integers and doubles may
//! arrive as strings ("NaN" and "Infinity" included).

use std::fmt;

use kiln_tracking::ViewType;
use serde::Deserializer;
use serde::de::{self, SeqAccess, Visitor};

pub fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v).map(Some).map_err(|_| E::custom(format!("{v} is out of the range of a 64-bit integer")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && v.abs() < 9.2e18 {
                Ok(Some(v as i64))
            } else {
                Err(E::custom(format!("expected an integer, found {v}")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim().parse::<i64>().map(Some).map_err(|_| E::custom(format!("expected an integer, found '{v}'")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

pub fn double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, or \"NaN\", \"Infinity\" or \"-Infinity\"")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.trim() {
                "NaN" | "nan" => Ok(Some(f64::NAN)),
                "Infinity" | "inf" => Ok(Some(f64::INFINITY)),
                "-Infinity" | "-inf" => Ok(Some(f64::NEG_INFINITY)),
                other => other
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .map(Some)
                    .ok_or_else(|| E::custom(format!("expected a number, found '{v}'"))),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// ACTIVE_ONLY, DELETED_ONLY or ALL, by name or number (1, 2, 3); MLflow reads anything else as
/// ACTIVE_ONLY.
pub fn view_type<'de, D: Deserializer<'de>>(d: D) -> Result<ViewType, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = ViewType;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("ACTIVE_ONLY, DELETED_ONLY or ALL")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(match v {
                2 => ViewType::DeletedOnly,
                3 => ViewType::All,
                _ => ViewType::ActiveOnly,
            })
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_i64(v.min(4) as i64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(match v {
                "DELETED_ONLY" | "2" => ViewType::DeletedOnly,
                "ALL" | "3" => ViewType::All,
                _ => ViewType::ActiveOnly,
            })
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(ViewType::ActiveOnly)
        }
    }
    d.deserialize_any(V)
}

/// An enum field given by name or by number, as text.
pub fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a name or a number")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A flag as JSON's true/false or as the text "true"/"false" (a query string's form).
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(E::custom(format!("'{v}' is not true or false"))),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}
