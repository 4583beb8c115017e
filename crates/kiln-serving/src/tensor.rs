//! Tensors as requests carry them: a name, a shape and flat, row-major data of one element type,
//! named with the Open Inference Protocol's datatypes (`FP32`, `INT64`, ...).

use ort::value::TensorElementType;
use serde_json::Value;

use crate::error::{Error, Result};

macro_rules! element_types {
    ($( $variant:ident, $rust:ty, $name:literal, $onnx:ident; )*) => {
        /// An element type every protocol and ONNX Runtime share.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DataType {
            $( $variant, )*
        }

        impl DataType {
            /// The protocol's name for the type (`FP32`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( DataType::$variant => $name, )*
                }
            }

            pub fn parse(name: &str) -> Option<DataType> {
                match name {
                    $( $name => Some(DataType::$variant), )*
                    _ => None,
                }
            }

            /// Bytes per element in the binary tensor encoding.
            pub fn size(self) -> usize {
                match self {
                    $( DataType::$variant => std::mem::size_of::<$rust>(), )*
                }
            }

            pub fn from_onnx(ty: TensorElementType) -> Option<DataType> {
                match ty {
                    $( TensorElementType::$onnx => Some(DataType::$variant), )*
                    _ => None,
                }
            }
        }

        /// A tensor's elements, flat in row-major order.
        #[derive(Debug, Clone, PartialEq)]
        pub enum TensorData {
            $( $variant(Vec<$rust>), )*
        }

        impl TensorData {
            pub fn datatype(&self) -> DataType {
                match self {
                    $( TensorData::$variant(_) => DataType::$variant, )*
                }
            }

            pub fn len(&self) -> usize {
                match self {
                    $( TensorData::$variant(v) => v.len(), )*
                }
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Elements from the binary tensor encoding (little-endian, packed).
            pub fn from_le_bytes(datatype: DataType, bytes: &[u8]) -> Result<TensorData> {
                let size = datatype.size();
                if bytes.len() % size != 0 {
                    return Err(Error::invalid(format!(
                        "{} bytes of binary data cannot hold whole {} elements of {size} bytes",
                        bytes.len(),
                        datatype.as_str()
                    )));
                }
                Ok(match datatype {
                    $( DataType::$variant => TensorData::$variant(
                        bytes.chunks_exact(size).map(|c| element_types!(@from_le $variant, $rust, c)).collect()
                    ), )*
                })
            }

            /// Appends the elements in the binary tensor encoding.
            pub fn write_le_bytes(&self, out: &mut Vec<u8>) {
                match self {
                    $( TensorData::$variant(v) => {
                        out.reserve(v.len() * std::mem::size_of::<$rust>());
                        for x in v {
                            out.extend_from_slice(&element_types!(@to_le $variant, x));
                        }
                    } )*
                }
            }

            /// Elements `start..end` of a tensor whose rows are `row_len` elements long.
            pub fn rows(&self, start: usize, end: usize, row_len: usize) -> TensorData {
                match self {
                    $( TensorData::$variant(v) => TensorData::$variant(v[start * row_len..end * row_len].to_vec()), )*
                }
            }

            /// The parts one after the other; all must have this part's type.
            pub fn concat(parts: &[&TensorData]) -> Result<TensorData> {
                let first = parts.first().ok_or_else(|| Error::invalid("nothing to concatenate"))?;
                match first {
                    $( TensorData::$variant(_) => {
                        let mut out: Vec<$rust> = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
                        for p in parts {
                            match p {
                                TensorData::$variant(v) => out.extend_from_slice(v),
                                other => return Err(Error::invalid(format!(
                                    "cannot join {} and {} tensors", DataType::$variant.as_str(), other.datatype().as_str()
                                ))),
                            }
                        }
                        Ok(TensorData::$variant(out))
                    } )*
                }
            }

            /// An ONNX Runtime tensor of these elements in `shape`.
            pub fn into_ort(self, shape: &[usize]) -> Result<ort::value::DynValue> {
                let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                Ok(match self {
                    $( TensorData::$variant(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(), )*
                })
            }

            /// The elements and shape of an ONNX Runtime output.
            pub fn from_ort(value: &ort::value::DynValue) -> Result<(Vec<usize>, TensorData)> {
                let ty = match value.dtype() {
                    ort::value::ValueType::Tensor { ty, .. } => *ty,
                    other => return Err(Error::Model(format!("the model gave a {other:?}, not a tensor"))),
                };
                let datatype = DataType::from_onnx(ty)
                    .ok_or_else(|| Error::Model(format!("the model gave a tensor of {ty:?}, which Kiln does not serve")))?;
                match datatype {
                    $( DataType::$variant => {
                        let (shape, data) = value.try_extract_tensor::<$rust>()?;
                        Ok((shape.iter().map(|&d| d.max(0) as usize).collect(), TensorData::$variant(data.to_vec())))
                    } )*
                }
            }
        }
    };
    (@from_le Bool, $rust:ty, $c:expr) => { $c[0] != 0 };
    (@from_le $variant:ident, $rust:ty, $c:expr) => { <$rust>::from_le_bytes($c.try_into().expect("chunks_exact gives whole elements")) };
    (@to_le Bool, $x:expr) => { [u8::from(*$x)] };
    (@to_le $variant:ident, $x:expr) => { $x.to_le_bytes() };
}

element_types! {
    Bool, bool, "BOOL", Bool;
    Uint8, u8, "UINT8", Uint8;
    Uint16, u16, "UINT16", Uint16;
    Uint32, u32, "UINT32", Uint32;
    Uint64, u64, "UINT64", Uint64;
    Int8, i8, "INT8", Int8;
    Int16, i16, "INT16", Int16;
    Int32, i32, "INT32", Int32;
    Int64, i64, "INT64", Int64;
    Fp32, f32, "FP32", Float32;
    Fp64, f64, "FP64", Float64;
}

impl DataType {
    /// MLflow's name for the type in a tensor signature (`float32`).
    pub fn mlflow_name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Uint8 => "uint8",
            DataType::Uint16 => "uint16",
            DataType::Uint32 => "uint32",
            DataType::Uint64 => "uint64",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Int32 => "int32",
            DataType::Int64 => "int64",
            DataType::Fp32 => "float32",
            DataType::Fp64 => "float64",
        }
    }
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    /// A tensor whose data must hold exactly as many elements as the shape says.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: TensorData) -> Result<Tensor> {
        let name = name.into();
        let expected = element_count(&shape)
            .ok_or_else(|| Error::invalid(format!("input '{name}': the shape {shape:?} holds more elements than any request can")))?;
        if expected != data.len() {
            return Err(Error::invalid(format!(
                "input '{name}': the shape {shape:?} holds {expected} elements but {} were given",
                data.len()
            )));
        }
        Ok(Tensor { name, shape, data })
    }

    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }

    /// The first dimension: how many rows (examples) the tensor holds.
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
}

/// The number of elements of a shape, or None when it overflows.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Elements from JSON: a flat or nested array of numbers (or booleans), read strictly as the
/// datatype (an integer type takes only integers in its range).
pub fn data_from_json(datatype: DataType, name: &str, value: &Value) -> Result<TensorData> {
    let mut flat = Vec::new();
    flatten(value, &mut flat, 0).map_err(|why| Error::invalid(format!("input '{name}': {why}")))?;
    let bad = |v: &Value| Error::invalid(format!("input '{name}': {v} is not a {} value", datatype.as_str()));
    macro_rules! ints {
        ($variant:ident, $rust:ty) => {
            TensorData::$variant(
                flat.iter()
                    .map(|v| v.as_i64().and_then(|n| <$rust>::try_from(n).ok()).ok_or_else(|| bad(v)))
                    .collect::<Result<_>>()?,
            )
        };
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(flat.iter().map(|v| v.as_bool().ok_or_else(|| bad(v))).collect::<Result<_>>()?),
        DataType::Uint8 => ints!(Uint8, u8),
        DataType::Uint16 => ints!(Uint16, u16),
        DataType::Uint32 => ints!(Uint32, u32),
        DataType::Uint64 => TensorData::Uint64(flat.iter().map(|v| v.as_u64().ok_or_else(|| bad(v))).collect::<Result<_>>()?),
        DataType::Int8 => ints!(Int8, i8),
        DataType::Int16 => ints!(Int16, i16),
        DataType::Int32 => ints!(Int32, i32),
        DataType::Int64 => ints!(Int64, i64),
        DataType::Fp32 => TensorData::Fp32(flat.iter().map(|v| v.as_f64().map(|x| x as f32).ok_or_else(|| bad(v))).collect::<Result<_>>()?),
        DataType::Fp64 => TensorData::Fp64(flat.iter().map(|v| v.as_f64().ok_or_else(|| bad(v))).collect::<Result<_>>()?),
    })
}

/// Deepest nesting of arrays accepted in JSON tensor data.
const MAX_JSON_DEPTH: usize = 32;

fn flatten<'v>(value: &'v Value, out: &mut Vec<&'v Value>, depth: usize) -> std::result::Result<(), String> {
    match value {
        Value::Array(items) if depth < MAX_JSON_DEPTH => {
            for item in items {
                flatten(item, out, depth + 1)?;
            }
            Ok(())
        }
        Value::Array(_) => Err(format!("the data is nested deeper than {MAX_JSON_DEPTH} levels")),
        Value::Object(_) | Value::String(_) | Value::Null => Err(format!("{value} is not a number")),
        scalar => {
            out.push(scalar);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binary_round_trip_keeps_every_bit() {
        let data = TensorData::Fp32(vec![1.5, -0.0, f32::NAN, f32::MAX]);
        let mut bytes = Vec::new();
        data.write_le_bytes(&mut bytes);
        assert_eq!(bytes.len(), 16);
        let back = TensorData::from_le_bytes(DataType::Fp32, &bytes).unwrap();
        let (TensorData::Fp32(a), TensorData::Fp32(b)) = (&data, &back) else { panic!() };
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert!(TensorData::from_le_bytes(DataType::Fp32, &bytes[..15]).is_err());
    }

    #[test]
    fn json_data_is_read_strictly() {
        assert_eq!(data_from_json(DataType::Int64, "x", &json!([[1, 2], [3, 4]])).unwrap(), TensorData::Int64(vec![1, 2, 3, 4]));
        assert!(data_from_json(DataType::Int64, "x", &json!([1.5])).is_err());
        assert!(data_from_json(DataType::Uint8, "x", &json!([256])).is_err());
        assert!(data_from_json(DataType::Fp32, "x", &json!(["1"])).is_err());
        assert_eq!(data_from_json(DataType::Fp32, "x", &json!([1, 2.5])).unwrap(), TensorData::Fp32(vec![1.0, 2.5]));
        let mut deep = json!(1.0);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        assert!(data_from_json(DataType::Fp32, "x", &deep).is_err());
    }

    #[test]
    fn shapes_must_match_their_data_and_never_overflow() {
        assert!(Tensor::new("x", vec![2, 3], TensorData::Fp32(vec![0.0; 6])).is_ok());
        assert!(Tensor::new("x", vec![2, 3], TensorData::Fp32(vec![0.0; 5])).is_err());
        assert!(Tensor::new("x", vec![usize::MAX, 2], TensorData::Fp32(vec![])).is_err());
    }

    #[test]
    fn rows_and_concat_split_along_the_first_dimension() {
        let a = TensorData::Int64(vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(a.rows(1, 3, 2), TensorData::Int64(vec![3, 4, 5, 6]));
        let joined = TensorData::concat(&[&a.rows(0, 1, 2), &a.rows(1, 3, 2)]).unwrap();
        assert_eq!(joined, a);
        assert!(TensorData::concat(&[&a, &TensorData::Fp32(vec![1.0])]).is_err());
    }
}
