"""The FastAPI peer of bench/serving: an ONNX model served the way a user would write it.

One onnxruntime InferenceSession, created when the module is imported, answers the Open
Inference Protocol's (KServe V2) REST inference call for one model. Run it with uvicorn:

    MODEL_PATH=/path/to/model.onnx MODEL_NAME=rf uvicorn fastapi_server:app --port 8000

Nothing here is tuned: pydantic parses the request, numpy builds the tensor, FastAPI turns the
returned dict into JSON, and uvicorn runs it with its defaults (one worker, access log on).
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

MODEL_PATH = os.environ.get("MODEL_PATH", "model.onnx")
MODEL_NAME = os.environ.get("MODEL_NAME", "rf")

session = ort.InferenceSession(MODEL_PATH, providers=["CPUExecutionProvider"])
input_names = [i.name for i in session.get_inputs()]
output_names = [o.name for o in session.get_outputs()]

# numpy dtype -> V2 datatype of the outputs.
DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64",
             np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64"}

app = FastAPI(title="rf model server")


class InferInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[InferInput]


@app.get("/v2/health/live")
async def live():
    return {"live": True}


@app.get("/v2/health/ready")
async def ready():
    return {"ready": True}


# A plain `def`: session.run blocks, so FastAPI runs this in its thread pool, as its
# documentation advises for blocking calls (it measured faster here than `async def`).
@app.post("/v2/models/{model_name}/infer")
def infer(model_name: str, request: InferRequest):
    if model_name != MODEL_NAME:
        raise HTTPException(status_code=404, detail=f"model {model_name} not found")
    feeds = {}
    for inp in request.inputs:
        if inp.name not in input_names:
            raise HTTPException(status_code=400, detail=f"unexpected input {inp.name}")
        if inp.datatype not in ("FP32", "FP64"):
            raise HTTPException(status_code=400, detail=f"unsupported datatype {inp.datatype}")
        # The model takes float32.
        feeds[inp.name] = np.asarray(inp.data, dtype=np.float32).reshape(inp.shape)
    results = session.run(output_names, feeds)
    outputs = []
    for name, value in zip(output_names, results):
        outputs.append({
            "name": name,
            "shape": list(value.shape),
            "datatype": DATATYPES.get(value.dtype, "BYTES"),
            "data": value.ravel().tolist(),
        })
    return {"model_name": MODEL_NAME, "id": request.id, "outputs": outputs}
