"""recsys_helpers.results: recording metrics into results.json, and the leaderboard built from them."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from recsys_helpers import results as res
from recsys_helpers.results import Results, leaderboard, leaderboard_markdown, read_results, write_leaderboard


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    monkeypatch.setenv(res.RUN_DIR_ENV, str(folder))
    return folder


def stored(run_dir) -> list[dict]:
    return json.loads((run_dir / "results.json").read_text())


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------------------------- record

def test_record_writes_results_json_in_the_run_dir(run_dir):
    results = Results("01_preprocessing_and_evaluation")
    row = results.record("BiasBaseline", "rating", {"rmse": 0.8601, "mae": 0.6632}, train_seconds=0.12345)
    assert files_in(run_dir) == ["results.json"]  # nothing else: no temp file left behind
    assert stored(run_dir) == [{"notebook": "01_preprocessing_and_evaluation", "model": "BiasBaseline",
                                "protocol": "rating", "metrics": {"rmse": 0.8601, "mae": 0.6632},
                                "train_seconds": 0.123}]
    assert read_results(run_dir) == stored(run_dir)
    assert isinstance(row, pd.DataFrame) and len(row) == 1 and row.loc[0, "rmse"] == 0.8601
    assert results.get("BiasBaseline", "rating") == {"rmse": 0.8601, "mae": 0.6632}


def test_recording_the_same_model_again_replaces_it(run_dir):
    results = Results("03_matrix_factorisation")
    results.record("MF", "rating", {"rmse": 0.95})
    results.record("MF", "ranking", {"ndcg@10": 0.2})
    results.record("MF", "rating", {"rmse": 0.90})
    records = stored(run_dir)
    assert [(r["model"], r["protocol"], r["metrics"]) for r in records] == [
        ("MF", "ranking", {"ndcg@10": 0.2}), ("MF", "rating", {"rmse": 0.90})]
    assert len(results.table()) == 2 and results.get("MF", "rating") == {"rmse": 0.90}
    assert results.table("rating")["model"].tolist() == ["MF"]


def test_notebooks_share_one_results_file(run_dir):
    Results("01_a").record("Popularity", "ranking", {"ndcg@10": 0.19})
    Results("02_b").record("ItemKNN", "ranking", {"ndcg@10": 0.26})
    Results("02_b").record("ItemKNN", "ranking", {"ndcg@10": 0.27})  # a rerun of notebook 02 replaces its record
    assert [(r["notebook"], r["metrics"]["ndcg@10"]) for r in stored(run_dir)] == [("01_a", 0.19), ("02_b", 0.27)]


def test_record_is_atomic(run_dir, monkeypatch):
    results = Results("01_a")
    results.record("GlobalMean", "rating", {"rmse": 1.04})
    before = (run_dir / "results.json").read_text()

    def crash_half_way(records, f, **kwargs):  # the process dies while the new file is being written
        f.write(json.dumps(records)[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(res.json, "dump", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        results.record("BiasBaseline", "rating", {"rmse": 0.86})
    monkeypatch.undo()
    assert (run_dir / "results.json").read_text() == before  # never half-written
    assert files_in(run_dir) == ["results.json"]  # and no stray temp file


def test_without_a_run_dir_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(res.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    results = Results("01_a")
    results.record("GlobalMean", "rating", {"rmse": 1.04})
    assert results.run_dir is None and list(tmp_path.iterdir()) == []
    assert results.table()["rmse"].tolist() == [1.04]


def test_explicit_run_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(res.RUN_DIR_ENV, raising=False)
    Results("01_a", run_dir=tmp_path / "elsewhere").record("GlobalMean", "rating", {"rmse": 1.04})
    assert read_results(tmp_path / "elsewhere")[0]["metrics"] == {"rmse": 1.04}
    assert read_results(tmp_path / "nothing-here") == []


@pytest.mark.parametrize("protocol, metrics, message", [
    ("explicit", {"rmse": 1.0}, "protocol must be one of"),
    ("Rating", {"rmse": 1.0}, "protocol must be one of"),
    ("rating", {}, "metrics is empty"),
    ("rating", {"rmse": float("nan")}, "'rmse' of 'M' is nan"),
    ("ranking", {"ndcg@10": 0.2, "recall@10": float("inf")}, "'recall@10' of 'M' is inf"),
    ("rating", {"rmse": "not a number"}, "could not convert"),
])
def test_record_refuses_bad_input_and_writes_nothing(run_dir, protocol, metrics, message):
    results = Results("01_a")
    with pytest.raises(ValueError, match=message):
        results.record("M", protocol, metrics)
    assert not run_dir.exists() and results.records == []


def test_get_unknown_model():
    with pytest.raises(KeyError, match="nothing recorded"):
        Results("01_a", run_dir=None).get("MF", "rating")


# --------------------------------------------------------------------------------------------- leaderboard

RECORDS = [
    {"notebook": "01_pre", "model": "GlobalMean", "protocol": "rating", "metrics": {"rmse": 1.04, "mae": 0.83},
     "train_seconds": 0.0},
    {"notebook": "01_pre", "model": "Popularity", "protocol": "ranking", "metrics": {"ndcg@10": 0.19},
     "train_seconds": 0.1},
    {"notebook": "03_mf", "model": "MF", "protocol": "rating", "metrics": {"rmse": 0.87, "mae": 0.67},
     "train_seconds": 12.0},
    {"notebook": "01_pre", "model": "BiasBaseline", "protocol": "rating", "metrics": {"rmse": 0.88, "mae": 0.68},
     "train_seconds": 0.2},
    {"notebook": "03_mf", "model": "BPR", "protocol": "ranking", "metrics": {"ndcg@10": 0.30, "recall@10": 0.2},
     "train_seconds": 30.0},
    {"notebook": "06_rnn", "model": "GRU4Rec", "protocol": "sequential", "metrics": {"ndcg@10": 0.1},
     "train_seconds": 60.0},
]


def test_leaderboard_groups_by_protocol_and_sorts_by_the_primary_metric():
    tables = leaderboard(RECORDS)
    assert list(tables) == ["rating", "ranking", "sequential"]  # in PROTOCOLS order
    assert tables["rating"]["model"].tolist() == ["MF", "BiasBaseline", "GlobalMean"]  # rmse: lower first
    assert tables["ranking"]["model"].tolist() == ["BPR", "Popularity"]  # ndcg@10: higher first
    assert "protocol" not in tables["rating"] and "ndcg@10" not in tables["rating"]  # only its own metrics
    assert pd.isna(tables["ranking"].loc[1, "recall@10"])  # Popularity recorded no recall@10
    assert leaderboard([]) == {}


def test_leaderboard_markdown():
    text = leaderboard_markdown(leaderboard(RECORDS))
    assert "## rating protocol (sorted by rmse, lower is better)" in text
    assert "## ranking protocol (sorted by ndcg@10, higher is better)" in text
    rating = text.split("## rating")[1].split("## ranking")[0]
    assert rating.index("| 03_mf | MF |") < rating.index("| 01_pre | BiasBaseline |") < rating.index("GlobalMean")
    assert "0.8700" in rating
    assert "No results were recorded." in leaderboard_markdown({})


def test_write_leaderboard(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RECORDS))
    tables = write_leaderboard(tmp_path)
    assert list(tables) == ["rating", "ranking", "sequential"]
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.startswith("# Course leaderboard") and "BPR" in md
    assert (tmp_path / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_leaderboard_of_an_empty_run(tmp_path):
    assert write_leaderboard(tmp_path) == {}
    assert "No results were recorded." in (tmp_path / "leaderboard.md").read_text()
    assert (tmp_path / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
