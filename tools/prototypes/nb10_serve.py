"""Prototype service for chapter 10: FastAPI app serving /recommend from the exported SavedModel (no course import)."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from fastapi import FastAPI, HTTPException, Query

MODEL_DIR = os.environ["MODEL_DIR"]
model = tf.saved_model.load(MODEL_DIR)
serve = model.serve
MAX_K = int(os.environ.get("MAX_K", "10"))
app = FastAPI(title="top-K recommendations")


@app.get("/recommend")
def recommend(user_id: int, k: int = Query(10, gt=0, le=MAX_K)):
    out = serve(tf.constant([user_id], tf.int64))
    if not bool(out["known"].numpy()[0]):
        raise HTTPException(status_code=404, detail=f"unknown user_id {user_id}: no training interactions")
    return {"user_id": user_id, "item_ids": out["item_ids"].numpy()[0, :k].tolist(),
            "scores": [round(float(s), 6) for s in out["scores"].numpy()[0, :k]]}


@app.get("/health")
def health():
    return {"status": "ok"}
