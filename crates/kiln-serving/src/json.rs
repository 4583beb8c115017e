//! Tensor data straight between JSON text and typed vectors: a request's `data` (flat or nested
//! arrays) is read into the input's element type without building a JSON value per number, and
//! an answer's data is written the same way. A 1,000-row request carries 30,000 numbers.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::error::{Error, Result};
use crate::tensor::{DataType, TensorData};

/// Deepest nesting of arrays accepted in JSON tensor data.
const MAX_DEPTH: usize = 32;

/// An element type read from JSON numbers (or booleans), strictly: integers only into integer
/// types, within their range.
trait Element: Sized {
    fn from_i64(v: i64) -> Option<Self>;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
}

macro_rules! integer_element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            fn from_i64(v: i64) -> Option<Self> { <$t>::try_from(v).ok() }
            fn from_u64(v: u64) -> Option<Self> { <$t>::try_from(v).ok() }
            fn from_f64(_: f64) -> Option<Self> { None }
        }
    )*};
}
integer_element!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Element for f32 {
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f32)
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f32)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v as f32)
    }
}

impl Element for f64 {
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
}

impl Element for bool {
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
}

/// Reads one JSON value (a number, or an array of them at any depth) into `out`.
struct Flatten<'a, T> {
    out: &'a mut Vec<T>,
    depth: usize,
    datatype: DataType,
}

impl<'de, T: Element> DeserializeSeed<'de> for Flatten<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Element> Visitor<'de> for Flatten<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} values in arrays", self.datatype.as_str())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom(format!("the data is nested deeper than {MAX_DEPTH} levels")));
        }
        if let Some(n) = seq.size_hint() {
            self.out.reserve(n);
        }
        while seq.next_element_seed(Flatten { out: &mut *self.out, depth: self.depth + 1, datatype: self.datatype })?.is_some() {}
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.push(T::from_i64(v), &v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.push(T::from_u64(v), &v)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<(), E> {
        self.push(T::from_f64(v), &v)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<(), E> {
        self.push(T::from_bool(v), &v)
    }
}

impl<T> Flatten<'_, T> {
    fn push<E: serde::de::Error>(self, v: Option<T>, shown: &dyn fmt::Display) -> std::result::Result<(), E> {
        match v {
            Some(v) => {
                self.out.push(v);
                Ok(())
            }
            None => Err(E::custom(format!("{shown} is not a {} value", self.datatype.as_str()))),
        }
    }
}

fn read<T: Element>(datatype: DataType, text: &str) -> serde_json::Result<Vec<T>> {
    let mut out = Vec::new();
    let mut d = serde_json::Deserializer::from_str(text);
    Flatten { out: &mut out, depth: 0, datatype }.deserialize(&mut d)?;
    d.end()?;
    Ok(out)
}

/// A number as the JSON text writes it, read into an element type; None when it does not fit.
trait Number: Sized {
    fn read(text: &str) -> Option<Self>;
}

macro_rules! integer_number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn read(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }
    )*};
}
integer_number!(u8, u16, u32, u64, i8, i16, i32, i64);

/// Powers of ten that f32 and f64 hold exactly (5^10 < 2^24, 5^22 < 2^53).
const POWERS_F32: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
const POWERS_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `-?digits(.digits)?` with at most 19 digits: its sign, its digits as one integer, and how many
/// of them follow the point. None for anything else (an exponent, more digits).
fn short_decimal(text: &str) -> Option<(bool, u64, usize)> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mut mantissa, mut count, mut fraction) = (0u64, 0usize, None::<usize>);
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                count += 1;
                if count > 19 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(b - b'0');
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
    }
    (count > 0 && fraction != Some(0)).then_some((negative, mantissa, fraction.unwrap_or(0)))
}

// A short decimal whose digits and power of ten the float holds exactly is one correctly rounded
// division away (Clinger's fast path), which is what the standard parser answers too; anything
// else goes to the standard parser.
macro_rules! float_number {
    ($($t:ty, $powers:expr, $mantissa_bits:expr;)*) => {$(
        impl Number for $t {
            fn read(text: &str) -> Option<Self> {
                match short_decimal(text) {
                    Some((negative, m, f)) if m <= 1 << $mantissa_bits && f < $powers.len() => {
                        let v = m as $t / $powers[f];
                        Some(if negative { -v } else { v })
                    }
                    _ => text.parse().ok(),
                }
            }
        }
    )*};
}
float_number! {
    f32, POWERS_F32, 24;
    f64, POWERS_F64, 53;
}

/// Numbers of valid JSON text (a number or nested arrays of them) parsed straight into `T` with
/// the standard library's correctly rounded parsers; None at anything else (strings, objects,
/// null, booleans, a number `T` cannot hold, nesting deeper than the limit), which the serde
/// path then reports precisely. The text must already be known to be valid JSON.
fn scan_numbers<T: Number>(text: &str) -> Option<Vec<T>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 4);
    let (mut i, mut depth) = (0, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\n' | b'\r' | b'\t' | b',' => i += 1,
            b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
                i += 1;
            }
            b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                out.push(T::read(&text[start..i])?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The elements of JSON text holding a number or (nested) arrays of numbers, read as `datatype`.
/// `text` must be valid JSON (a raw value from the parsed request).
pub fn data_from_json_text(datatype: DataType, name: &str, text: &str) -> Result<TensorData> {
    let fast = match datatype {
        DataType::Bool => None,
        DataType::Uint8 => scan_numbers(text).map(TensorData::Uint8),
        DataType::Uint16 => scan_numbers(text).map(TensorData::Uint16),
        DataType::Uint32 => scan_numbers(text).map(TensorData::Uint32),
        DataType::Uint64 => scan_numbers(text).map(TensorData::Uint64),
        DataType::Int8 => scan_numbers(text).map(TensorData::Int8),
        DataType::Int16 => scan_numbers(text).map(TensorData::Int16),
        DataType::Int32 => scan_numbers(text).map(TensorData::Int32),
        DataType::Int64 => scan_numbers(text).map(TensorData::Int64),
        DataType::Fp32 => scan_numbers(text).map(TensorData::Fp32),
        DataType::Fp64 => scan_numbers(text).map(TensorData::Fp64),
    };
    if let Some(data) = fast {
        return Ok(data);
    }
    let bad = |e: serde_json::Error| Error::invalid(format!("input '{name}': {e}"));
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(read(datatype, text).map_err(bad)?),
        DataType::Uint8 => TensorData::Uint8(read(datatype, text).map_err(bad)?),
        DataType::Uint16 => TensorData::Uint16(read(datatype, text).map_err(bad)?),
        DataType::Uint32 => TensorData::Uint32(read(datatype, text).map_err(bad)?),
        DataType::Uint64 => TensorData::Uint64(read(datatype, text).map_err(bad)?),
        DataType::Int8 => TensorData::Int8(read(datatype, text).map_err(bad)?),
        DataType::Int16 => TensorData::Int16(read(datatype, text).map_err(bad)?),
        DataType::Int32 => TensorData::Int32(read(datatype, text).map_err(bad)?),
        DataType::Int64 => TensorData::Int64(read(datatype, text).map_err(bad)?),
        DataType::Fp32 => TensorData::Fp32(read(datatype, text).map_err(bad)?),
        DataType::Fp64 => TensorData::Fp64(read(datatype, text).map_err(bad)?),
    })
}

/// The elements as a flat JSON array (NaN and infinities as null, which is all JSON has).
impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        fn all<S: Serializer, T: Serialize>(s: S, v: &[T]) -> std::result::Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for x in v {
                seq.serialize_element(x)?;
            }
            seq.end()
        }
        match self {
            TensorData::Bool(v) => all(s, v),
            TensorData::Uint8(v) => all(s, v),
            TensorData::Uint16(v) => all(s, v),
            TensorData::Uint32(v) => all(s, v),
            TensorData::Uint64(v) => all(s, v),
            TensorData::Int8(v) => all(s, v),
            TensorData::Int16(v) => all(s, v),
            TensorData::Int32(v) => all(s, v),
            TensorData::Int64(v) => all(s, v),
            TensorData::Fp32(v) => all(s, v),
            TensorData::Fp64(v) => all(s, v),
        }
    }
}

/// The elements as nested JSON arrays of a shape (`[[1, 2], [3, 4]]` for [2, 2]).
pub struct Nested<'a>(pub &'a TensorData, pub &'a [usize]);

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        struct Level<'a, T>(&'a [T], &'a [usize]);
        impl<T: Serialize> Serialize for Level<'_, T> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                let Level(values, shape) = self;
                if shape.len() <= 1 {
                    let mut seq = s.serialize_seq(Some(values.len()))?;
                    for x in *values {
                        seq.serialize_element(x)?;
                    }
                    return seq.end();
                }
                let step = shape[1..].iter().product::<usize>().max(1);
                let mut seq = s.serialize_seq(Some(shape[0]))?;
                for chunk in values.chunks(step) {
                    seq.serialize_element(&Level(chunk, &shape[1..]))?;
                }
                seq.end()
            }
        }
        let shape = self.1;
        match self.0 {
            TensorData::Bool(v) => Level(v, shape).serialize(s),
            TensorData::Uint8(v) => Level(v, shape).serialize(s),
            TensorData::Uint16(v) => Level(v, shape).serialize(s),
            TensorData::Uint32(v) => Level(v, shape).serialize(s),
            TensorData::Uint64(v) => Level(v, shape).serialize(s),
            TensorData::Int8(v) => Level(v, shape).serialize(s),
            TensorData::Int16(v) => Level(v, shape).serialize(s),
            TensorData::Int32(v) => Level(v, shape).serialize(s),
            TensorData::Int64(v) => Level(v, shape).serialize(s),
            TensorData::Fp32(v) => Level(v, shape).serialize(s),
            TensorData::Fp64(v) => Level(v, shape).serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_arrays_read_into_the_type() {
        assert_eq!(data_from_json_text(DataType::Fp32, "x", "[[1, 2.5], [3, 4]]").unwrap(), TensorData::Fp32(vec![1.0, 2.5, 3.0, 4.0]));
        assert_eq!(data_from_json_text(DataType::Int64, "x", "[1, -2]").unwrap(), TensorData::Int64(vec![1, -2]));
        assert_eq!(data_from_json_text(DataType::Bool, "x", "[true, false]").unwrap(), TensorData::Bool(vec![true, false]));
        assert_eq!(data_from_json_text(DataType::Fp64, "x", "7").unwrap(), TensorData::Fp64(vec![7.0]));
    }

    #[test]
    fn wrong_values_are_refused_with_the_input_named() {
        for (datatype, text) in [
            (DataType::Int64, "[1.5]"),
            (DataType::Uint8, "[256]"),
            (DataType::Uint8, "[-1]"),
            (DataType::Fp32, "[\"1\"]"),
            (DataType::Fp32, "[null]"),
            (DataType::Fp32, "[{\"a\": 1}]"),
            (DataType::Bool, "[1]"),
        ] {
            let e = data_from_json_text(datatype, "features", text).unwrap_err().to_string();
            assert!(e.contains("input 'features'"), "{text}: {e}");
        }
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(data_from_json_text(DataType::Fp32, "x", &deep).unwrap_err().to_string().contains("nested deeper"));
    }

    #[test]
    fn the_fast_scan_agrees_with_the_serde_path() {
        for text in ["[[1, 2.5], [3, 4e-3]]", "[0.1, -0.0, 1e10, 3.4028235e38]", "5", "[]", "[[ ]]"] {
            let fast: Vec<f32> = scan_numbers(text).unwrap();
            assert_eq!(fast, read::<f32>(DataType::Fp32, text).unwrap(), "{text}");
        }
        assert_eq!(scan_numbers::<i64>("[1, -2, 9007199254740993]").unwrap(), vec![1, -2, 9_007_199_254_740_993]);
        assert!(scan_numbers::<i64>("[1.5]").is_none());
        assert!(scan_numbers::<u8>("[-1]").is_none());
        assert!(scan_numbers::<f32>("[null]").is_none());
        assert!(scan_numbers::<f32>("[true]").is_none());
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(scan_numbers::<f32>(&deep).is_none());
    }

    #[test]
    fn data_writes_as_a_flat_array() {
        assert_eq!(serde_json::to_string(&TensorData::Fp32(vec![1.5, f32::NAN])).unwrap(), "[1.5,null]");
        assert_eq!(serde_json::to_string(&TensorData::Int64(vec![3, -1])).unwrap(), "[3,-1]");
        let data = TensorData::Int64(vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(serde_json::to_string(&Nested(&data, &[2, 3])).unwrap(), "[[1,2,3],[4,5,6]]");
        assert_eq!(serde_json::to_string(&Nested(&data, &[1, 3, 2])).unwrap(), "[[[1,2],[3,4],[5,6]]]");
        assert_eq!(serde_json::to_string(&Nested(&data, &[6])).unwrap(), "[1,2,3,4,5,6]");
    }

    #[test]
    fn short_decimals_read_exactly_as_the_standard_parser_reads_them() {
        for text in ["0", "-0", "0.1", "-0.07871", "17.99", "1001", "16777216", "16777217", "0.30000000000000004",
                     "9007199254740993", "1e5", "1.5E-3", "123456789012345678901", "0.0000000001", "99999999999.5"] {
            assert_eq!(f32::read(text).unwrap().to_bits(), text.parse::<f32>().unwrap().to_bits(), "{text}");
            assert_eq!(f64::read(text).unwrap().to_bits(), text.parse::<f64>().unwrap().to_bits(), "{text}");
        }
        // Random decimals of every length and point position, bit for bit.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let digits = 1 + (next() % 20) as usize;
            let mut text: String = (0..digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            let point = (next() % (digits as u64 + 1)) as usize;
            if point > 0 && point < digits {
                text.insert(point, '.');
            }
            let text = text.trim_start_matches('0');
            let text = if text.is_empty() || text.starts_with('.') { format!("0{text}") } else { text.to_string() };
            let text = if next() % 2 == 0 { format!("-{text}") } else { text };
            assert_eq!(f32::read(&text).unwrap().to_bits(), text.parse::<f32>().unwrap().to_bits(), "{text}");
            assert_eq!(f64::read(&text).unwrap().to_bits(), text.parse::<f64>().unwrap().to_bits(), "{text}");
        }
        for not_short in ["1.", "-", "", "1.2.3", "1e5", "12345678901234567890"] {
            assert_eq!(short_decimal(not_short), None, "{not_short}");
        }
        assert_eq!(short_decimal("-12.50"), Some((true, 1250, 2)));
    }
}
