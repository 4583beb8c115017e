"""The models the serving suite (test_serving.py) serves, and the answers they must give.

Every model is ONNX inside MLflow's model layout, written by ``mlflow.onnx.save_model``: a folder
with ``MLmodel`` (flavors ``onnx`` and ``python_function``, a tensor signature), ``model.onnx`` and
MLflow's environment files. Nothing is downloaded: the data sets are the ones scikit-learn ships,
and the one network not trained here (a small CNN) gets fixed random weights from a seeded
generator.

    name         what                                          input              outputs
    breast_lr    StandardScaler + LogisticRegression           input FP32 [-1,30]  label INT64 [-1],
                                                                                   probabilities FP32 [-1,2]
    breast_rf    RandomForestClassifier                        input FP32 [-1,30]  label, probabilities [-1,2]
    breast_gb    GradientBoostingClassifier (binary)           input FP32 [-1,30]  label, probabilities [-1,2]
    iris_gb      GradientBoostingClassifier (3 classes)        input FP32 [-1,4]   label, probabilities [-1,3]
    diabetes_rf  RandomForestRegressor                         input FP32 [-1,10]  variable FP32 [-1,1]
    digits_mlp   MLPClassifier (10 classes)                    input FP32 [-1,64]  label, probabilities [-1,10]
    cnn          Conv+Relu+MaxPool+Conv+Relu+GAP+Gemm          input FP32 [-1,1,8,8] logits FP32 [-1,10]
                 (onnx.helper, seeded random weights)

The scikit-learn models are converted by skl2onnx with ZipMap off, so every output is a plain
tensor. Each model comes with ROWS fixed input rows (drawn with SEED from its data set) and the
outputs onnxruntime computes on them, the reference a server must reproduce; ``build_all`` also
checks those against scikit-learn (same labels, regressions within float32 rounding) and the
CNN against a plain numpy forward pass, so a wrong conversion fails here rather than in a test.

Run it to get the models in a folder, e.g. to try ``kiln serve`` by hand:

    python tests/e2e/serving_models.py /tmp/kiln-models
"""

import json
import os
import sys
import warnings

import numpy as np

SEED = 20261126
ROWS = 100
# ONNX opsets of the conversions, fixed so that a newer skl2onnx does not change the models.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
CNN_OPSET = 18
CNN_IR_VERSION = 9


class BuiltModel:
    """One model folder and what it must answer.

    path          the MLflow model folder (MLmodel + model.onnx)
    input_name    the ONNX input's name ("input")
    row_shape     the shape of one row, without the batch dimension: (30,) or (1, 8, 8)
    inputs        float32 array [ROWS, *row_shape], the fixed inputs
    outputs       {output name: array [ROWS, ...]} computed by onnxruntime on `inputs`
    output_names  the ONNX outputs in graph order
    labels        scikit-learn's predict() on `inputs` (classifiers), else None
    kind          "classifier", "regressor" or "cnn"
    """

    def __init__(self, name, path, input_name, row_shape, inputs, outputs, output_names, labels, kind):
        self.name = name
        self.path = path
        self.input_name = input_name
        self.row_shape = tuple(row_shape)
        self.inputs = inputs
        self.outputs = outputs
        self.output_names = output_names
        self.labels = labels
        self.kind = kind

    @property
    def n_features(self):
        return int(np.prod(self.row_shape))

    def reference(self, x):
        """onnxruntime's outputs for any input (NaNs and all), as {name: array}."""
        return run_onnx(os.path.join(self.path, "model.onnx"), self.input_name, x)

    def __repr__(self):
        return f"BuiltModel({self.name!r}, {self.path!r})"


# ---------------------------------------------------------------------------
# Data


def _rows(X, seed_offset):
    rng = np.random.default_rng(SEED + seed_offset)
    idx = rng.choice(len(X), size=ROWS, replace=len(X) < ROWS)
    return np.ascontiguousarray(X[idx], dtype=np.float32)


def _dataset(loader):
    X, y = loader(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y)


# ---------------------------------------------------------------------------
# The models: each builder answers (onnx ModelProto, fitted estimator or None, inputs, kind)


def _convert(estimator, n_features):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    return to_onnx(estimator, initial_types=[("input", FloatTensorType([None, n_features]))],
                   options=options, target_opset=TARGET_OPSET)


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP's ConvergenceWarning and the like
        return estimator.fit(X, y)


def _breast_lr():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _dataset(load_breast_cancer)
    est = _fit(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), X, y)
    return _convert(est, X.shape[1]), est, _rows(X, 1), "classifier"


def _breast_rf():
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = _dataset(load_breast_cancer)
    est = _fit(RandomForestClassifier(n_estimators=30, max_depth=8, random_state=SEED % 2**31), X, y)
    return _convert(est, X.shape[1]), est, _rows(X, 2), "classifier"


def _breast_gb():
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _dataset(load_breast_cancer)
    est = _fit(GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=SEED % 2**31), X, y)
    return _convert(est, X.shape[1]), est, _rows(X, 3), "classifier"


def _iris_gb():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _dataset(load_iris)
    est = _fit(GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=SEED % 2**31), X, y)
    return _convert(est, X.shape[1]), est, _rows(X, 4), "classifier"


def _diabetes_rf():
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor

    X, y = _dataset(load_diabetes)
    est = _fit(RandomForestRegressor(n_estimators=30, max_depth=8, random_state=SEED % 2**31), X, y)
    return _convert(est, X.shape[1]), est, _rows(X, 5), "regressor"


def _digits_mlp():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = _dataset(load_digits)
    X = X / 16.0
    est = _fit(MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=SEED % 2**31), X, y)
    return _convert(est, X.shape[1]), est, _rows(X, 6), "classifier"


def cnn_weights():
    """The CNN's fixed weights, from a seeded generator: {name: float32 array}."""
    rng = np.random.default_rng(SEED + 100)

    def w(*shape, scale):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "conv1_w": w(4, 1, 3, 3, scale=0.5), "conv1_b": w(4, scale=0.1),
        "conv2_w": w(8, 4, 3, 3, scale=0.3), "conv2_b": w(8, scale=0.1),
        "fc_w": w(10, 8, scale=0.5), "fc_b": w(10, scale=0.1),
    }


def _cnn():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.datasets import load_digits

    weights = cnn_weights()
    nodes = [
        helper.make_node("Conv", ["input", "conv1_w", "conv1_b"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),  # [N,4,4,4]
        helper.make_node("Conv", ["p1", "conv2_w", "conv2_b"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),  # [N,8,1,1]
        helper.make_node("Flatten", ["g"], ["f"], axis=1),  # [N,8]
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1),  # [N,10]
    ]
    graph = helper.make_graph(
        nodes, "kiln_e2e_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", CNN_OPSET)],
                              producer_name="kiln-e2e")
    model.ir_version = CNN_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    X, _ = _dataset(load_digits)
    images = (X / 16.0).reshape(-1, 1, 8, 8)
    return model, None, _rows(images, 7), "cnn"


def cnn_numpy(x):
    """The CNN's forward pass in float64 numpy, independent of ONNX (to check the graph)."""
    p = {k: v.astype(np.float64) for k, v in cnn_weights().items()}

    def conv(x, w, b):
        n, c, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((n, w.shape[0], h, wd))
        for i in range(3):
            for j in range(3):
                out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
        return out + b[None, :, None, None]

    x = np.maximum(conv(x.astype(np.float64), p["conv1_w"], p["conv1_b"]), 0)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    x = np.maximum(conv(x, p["conv2_w"], p["conv2_b"]), 0)
    x = x.mean(axis=(2, 3))
    return x @ p["fc_w"].T + p["fc_b"]


BUILDERS = {
    "breast_lr": _breast_lr,
    "breast_rf": _breast_rf,
    "breast_gb": _breast_gb,
    "iris_gb": _iris_gb,
    "diabetes_rf": _diabetes_rf,
    "digits_mlp": _digits_mlp,
    "cnn": _cnn,
}
NAMES = tuple(BUILDERS)


# ---------------------------------------------------------------------------
# ONNX, MLflow layout, references


def onnx_model(name):
    """(ModelProto, fitted estimator or None, fixed inputs, kind) of one model; trains it."""
    return BUILDERS[name]()


def _session(model_path_or_bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model_path_or_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


_SESSIONS = {}


def run_onnx(model_path, input_name, x):
    """{output name: array} of onnxruntime on one input."""
    sess = _SESSIONS.get(model_path)
    if sess is None:
        sess = _SESSIONS[model_path] = _session(model_path)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {input_name: x})))


def _dim(d):
    return d if isinstance(d, int) and d >= 0 else -1


def signature_of(model):
    """MLflow's tensor signature of an ONNX ModelProto: every input and output with its dtype and
    shape (-1 for a free dimension)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec
    from onnx import helper

    def specs(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type))
            shape = tuple(_dim(d.dim_value) if d.HasField("dim_value") else -1 for d in t.shape.dim)
            out.append(TensorSpec(dtype, shape, v.name))
        return Schema(out)

    return ModelSignature(inputs=specs(model.graph.input), outputs=specs(model.graph.output))


def pip_requirements():
    """Pinned requirements written into the model's environment files (given, so that
    save_model does not start a subprocess to infer them)."""
    import onnx
    import onnxruntime

    return [f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"]


def save_mlflow_model(model, path, external_data=False):
    """Writes `model` as an MLflow ONNX model folder at `path` (which must not exist).

    With external_data=False everything is in model.onnx; True is MLflow's own default, which puts
    initializers over 1 KiB in a separate file beside it."""
    import mlflow.onnx

    mlflow.onnx.save_model(model, path, signature=signature_of(model), pip_requirements=pip_requirements(),
                           save_as_external_data=external_data)
    return path


def _check_against_source(name, estimator, inputs, outputs, kind):
    """The conversion is right: onnxruntime agrees with scikit-learn (or numpy for the CNN)."""
    if kind == "cnn":
        np.testing.assert_allclose(outputs["logits"], cnn_numpy(inputs), rtol=1e-4, atol=1e-4,
                                   err_msg=f"{name}: ONNX graph disagrees with the numpy forward pass")
        return None
    x64 = inputs.astype(np.float64)
    if kind == "regressor":
        expected = estimator.predict(x64)
        np.testing.assert_allclose(outputs["variable"].reshape(-1), expected, rtol=1e-4, atol=1e-3,
                                   err_msg=f"{name}: ONNX regression disagrees with scikit-learn")
        return None
    labels = estimator.predict(x64)
    mismatched = np.flatnonzero(outputs["label"] != labels)
    assert mismatched.size == 0, f"{name}: ONNX labels differ from scikit-learn's on rows {mismatched.tolist()}"
    np.testing.assert_allclose(outputs["probabilities"], estimator.predict_proba(x64), rtol=1e-3, atol=1e-4,
                               err_msg=f"{name}: ONNX probabilities disagree with scikit-learn")
    return labels


def build(name, folder):
    """Trains model `name`, writes it to <folder>/<name> and its reference to <folder>/<name>.npz."""
    model, estimator, inputs, kind = onnx_model(name)
    path = save_mlflow_model(model, os.path.join(folder, name))
    input_name = model.graph.input[0].name
    outputs = run_onnx(os.path.join(path, "model.onnx"), input_name, inputs)
    labels = _check_against_source(name, estimator, inputs, outputs, kind)
    np.savez(os.path.join(folder, f"{name}.npz"), inputs=inputs,
             **{f"output_{k}": v for k, v in outputs.items()})
    return BuiltModel(name, path, input_name, inputs.shape[1:], inputs, outputs,
                      [o.name for o in model.graph.output], labels, kind)


def build_all(folder, names=NAMES):
    """Builds every model into `folder`; answers {name: BuiltModel}. Writes <folder>/models.json,
    a summary (paths, shapes, outputs) for people trying the server by hand."""
    os.makedirs(folder, exist_ok=True)
    built = {name: build(name, folder) for name in names}
    summary = {
        m.name: {"path": m.path, "input": m.input_name, "row_shape": list(m.row_shape), "kind": m.kind,
                 "outputs": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in m.outputs.items()}}
        for m in built.values()
    }
    with open(os.path.join(folder, "models.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT_FOLDER (must not hold the models already)")
    for m in build_all(sys.argv[1]).values():
        outs = ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in m.outputs.items())
        print(f"{m.name:12} {m.path}  input {m.input_name} float32{[-1, *m.row_shape]} -> {outs}")
