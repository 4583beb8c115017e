//! MLflow's model directory: the `MLmodel` YAML file beside the model's files names its flavors
//! (how to load it: `python_function`, `sklearn`, `onnx`, ...) and its signature (the inputs it
//! takes and the outputs it gives). Kiln records both for each version; serving loads the ONNX
//! flavor's file and checks requests against the signature.

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Registry;

/// Largest MLmodel file read; real ones are a few kilobytes.
const MAX_MLMODEL_BYTES: u64 = 1024 * 1024;

/// One input or output of a signature: a named column or a tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tensor's dtype (`float32`, `int64`, ...) or the column's type (`double`, `string`, ...).
    pub dtype: String,
    /// A tensor's shape; -1 is any size. None for a column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<i64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFormat {
    pub flavors: Vec<String>,
    /// The ONNX model file inside the version's folder, when it has the `onnx` flavor.
    pub onnx_model: Option<String>,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

impl ModelFormat {
    /// Reads an MLmodel file's text; None when it is not a YAML mapping with `flavors`.
    pub fn parse(text: &str) -> Option<ModelFormat> {
        let doc: Value = serde_norway::from_str(text).ok()?;
        let flavors_map = doc.get("flavors")?.as_object()?;
        let flavors: Vec<String> = flavors_map.keys().cloned().collect();
        let onnx_model = flavors_map.get("onnx").map(|f| f.get("data").and_then(Value::as_str).unwrap_or("model.onnx").to_string());
        let specs = |which: &str| -> Vec<TensorSpec> {
            doc.get("signature")
                .and_then(|s| s.get(which))
                .and_then(Value::as_str)
                .and_then(|json| serde_json::from_str::<Vec<Value>>(json).ok())
                .map(|items| items.iter().filter_map(spec).collect())
                .unwrap_or_default()
        };
        Some(ModelFormat { flavors, onnx_model, inputs: specs("inputs"), outputs: specs("outputs") })
    }

    pub(crate) fn flavors_json(&self) -> String {
        serde_json::to_string(&Flavors { flavors: self.flavors.clone(), onnx_model: self.onnx_model.clone() }).unwrap_or_default()
    }

    pub(crate) fn signature_json(&self) -> Option<String> {
        if self.inputs.is_empty() && self.outputs.is_empty() {
            return None;
        }
        serde_json::to_string(&Signature { inputs: self.inputs.clone(), outputs: self.outputs.clone() }).ok()
    }

    /// The format from the columns flavors_json and signature_json wrote.
    pub(crate) fn from_stored(flavors: &str, signature: Option<&str>) -> ModelFormat {
        let Flavors { flavors, onnx_model } = serde_json::from_str(flavors).unwrap_or_default();
        let Signature { inputs, outputs } = signature.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        ModelFormat { flavors, onnx_model, inputs, outputs }
    }
}

/// How a version's flavors are kept in its row.
#[derive(Default, Serialize, Deserialize)]
struct Flavors {
    flavors: Vec<String>,
    onnx_model: Option<String>,
}

/// How a version's signature is kept in its row.
#[derive(Default, Serialize, Deserialize)]
struct Signature {
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

/// One signature entry: `{"type": "tensor", "tensor-spec": {"dtype", "shape"}, "name"?}` or a
/// column `{"type": "double", "name": "x"}`.
fn spec(item: &Value) -> Option<TensorSpec> {
    let name = item.get("name").and_then(Value::as_str).map(String::from);
    let kind = item.get("type")?.as_str()?;
    if kind == "tensor" {
        let t = item.get("tensor-spec")?;
        let shape = t.get("shape").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_i64).collect());
        Some(TensorSpec { name, dtype: t.get("dtype")?.as_str()?.to_string(), shape })
    } else {
        Some(TensorSpec { name, dtype: kind.to_string(), shape: None })
    }
}

impl Registry {
    /// Reads the MLmodel file in a version's folder, if it is in this server's artifact store
    /// and readable. A model without one still registers; it just carries no format.
    pub(crate) async fn read_format(&self, storage_location: &str) -> Option<ModelFormat> {
        let folder = kiln_artifacts::ArtifactPath::from_proxy_uri(storage_location)?.ok()?;
        let file = kiln_artifacts::ArtifactPath::parse("MLmodel").ok()?;
        let (size, stream) = self.artifacts.get(&folder.join(&file)).await.ok()?;
        if size > MAX_MLMODEL_BYTES {
            tracing::warn!(location = storage_location, size, "MLmodel file too large to read; no format recorded");
            return None;
        }
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await.ok()?;
        let text = String::from_utf8(chunks.concat()).ok()?;
        let format = ModelFormat::parse(&text);
        if format.is_none() {
            tracing::warn!(location = storage_location, "MLmodel file is not a model description; no format recorded");
        }
        format
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKLEARN: &str = r#"artifact_path: mlflow-artifacts:/1/models/m-1/artifacts
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.skops
  sklearn:
    serialization_format: skops
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: null
"#;

    const ONNX: &str = r#"flavors:
  onnx:
    data: model.onnx
    onnx_version: 1.17.0
  python_function:
    loader_module: mlflow.onnx
signature:
  inputs: '[{"type": "double", "name": "sepal_length", "required": true}, {"type": "tensor", "name": "X", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
"#;

    #[test]
    fn reads_flavors_and_signature() {
        let f = ModelFormat::parse(SKLEARN).unwrap();
        assert_eq!(f.flavors, vec!["python_function", "sklearn"]);
        assert_eq!(f.onnx_model, None);
        assert_eq!(f.inputs, vec![TensorSpec { name: None, dtype: "float64".into(), shape: Some(vec![-1, 4]) }]);
        assert_eq!(f.outputs[0].dtype, "int64");

        let f = ModelFormat::parse(ONNX).unwrap();
        assert_eq!(f.onnx_model.as_deref(), Some("model.onnx"));
        assert_eq!(f.inputs[0], TensorSpec { name: Some("sepal_length".into()), dtype: "double".into(), shape: None });
        assert_eq!(f.inputs[1].shape, Some(vec![-1, 4]));
        assert!(f.outputs.is_empty());
    }

    #[test]
    fn round_trips_through_the_store_columns() {
        let f = ModelFormat::parse(ONNX).unwrap();
        assert_eq!(ModelFormat::from_stored(&f.flavors_json(), f.signature_json().as_deref()), f);
    }

    #[test]
    fn not_a_model() {
        for text in ["", "just text", "flavors: 3", "[1, 2]", "a: {b: ["] {
            assert!(ModelFormat::parse(text).is_none(), "{text}");
        }
    }
}
