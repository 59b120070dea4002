"""recsys_helpers.results: recording metrics into results.json, and the leaderboard built from them."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from recsys_helpers import results as res
from recsys_helpers.results import (PRIMARY_METRIC, records_frame, Results, leaderboard, leaderboard_markdown, read_results,
                                    write_leaderboard)


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
                                "train_seconds": 0.123, "profile": "laptop"}]
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
    ("ranking", {"novelty": float("inf")}, "'novelty' of 'M' is inf; a model that produced it has a bug"),
    ("rating", {"rmse": -float("inf")}, "'rmse' of 'M' is -inf; a model that produced it has a bug"),
    ("rating", {"rmse": "not a number"}, "'rmse' of 'M' is 'not a number'; record a number"),
    ("rating", {"rmse": None}, "'rmse' of 'M' is None; record a number"),
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


# --------------------------------------------------------------------------------------------- checks and files

@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -0.5, "soon", True])
def test_record_refuses_seconds_that_are_not_a_duration(run_dir, seconds):
    with pytest.raises(ValueError, match="train_seconds of 'M' is .*pass a time in seconds"):
        Results("01_a").record("M", "rating", {"rmse": 1.0}, train_seconds=seconds)
    assert not run_dir.exists()


def test_results_json_is_strict_json(tmp_path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        res.write_json(tmp_path / "x.json", [{"train_seconds": float("nan")}])
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("metrics, message", [
    ({"ndcg@10": 7.0}, r"'ndcg@10' of 'M' is 7.0, but ndcg is a ratio in \[0, 1\]"),
    ({"NDCG@10": 1.5}, "is a ratio in"),
    ({"recall@10": -0.1}, "is a ratio in"),
    ({"precision@5": 1.01}, "is a ratio in"),
    ({"hit_rate@10": 2}, "is a ratio in"),
    ({"map@10": 3}, "is a ratio in"),
    ({"mrr": 1.2}, "is a ratio in"),
    ({"coverage@10": 10.0}, "is a ratio in"),
    ({"rmse": -0.1}, r"an error \(rmse\) is never negative"),
    ({"mae": -1}, "never negative"),
    ({"ndcg@10": True}, "record a number"),
    ({7: 0.5}, "metric names of 'M' must be a non-empty string"),
    ("ndcg", "metrics is empty or not a dict"),
])
def test_record_refuses_metrics_out_of_their_range(run_dir, metrics, message):
    with pytest.raises(ValueError, match=message):
        Results("01_a").record("M", "ranking", metrics)
    assert not run_dir.exists()


def test_metrics_at_their_bounds_and_unbounded_ones_are_fine(run_dir):
    Results("01_a").record("M", "ranking", {"ndcg@10": 1.0, "recall@10": 0.0, "novelty": 9.5})
    Results("01_a").record("M", "rating", {"rmse": 0.0, "mae": 2.5}, train_seconds=0)
    Results("01_a").record("S", "ranking", pd.Series({"ndcg@10": 0.25}))  # a Series of metrics is a dict too
    assert [r["metrics"] for r in stored(run_dir)][-1] == {"ndcg@10": 0.25}


@pytest.mark.parametrize("model", [None, "", "  ", 3])
def test_record_refuses_a_missing_model_name(run_dir, model):
    with pytest.raises(ValueError, match="model must be a non-empty string"):
        Results("01_a").record(model, "rating", {"rmse": 1.0})
    assert not run_dir.exists()


def test_results_needs_a_notebook_name():
    with pytest.raises(ValueError, match="notebook must be a non-empty string"):
        Results("")


@pytest.mark.parametrize("content", ["[{\"notebook\": ", "{}", "[1, 2]", "\xff\xfe"])
def test_a_broken_results_json_names_the_file_and_the_fix(run_dir, content):
    run_dir.mkdir()
    (run_dir / "results.json").write_bytes(content.encode("latin-1"))
    for action in [lambda: read_results(run_dir), lambda: Results("01_a").record("M", "rating", {"rmse": 1.0}),
                   lambda: write_leaderboard(run_dir)]:
        with pytest.raises(res.BrokenRunFile, match=r"results\.json is not .*delete it, or rerun") as err:
            action()
        assert str(run_dir / "results.json") in str(err.value) and isinstance(err.value, ValueError)


def test_a_broken_timings_json_names_the_file(tmp_path):
    (tmp_path / "timings.json").write_text("{oops")
    with pytest.raises(res.BrokenRunFile, match=r"timings\.json is not valid JSON .*delete it"):
        write_leaderboard(tmp_path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_results_json_gets_the_usual_file_mode(run_dir, umask, mode):
    old = os.umask(umask)
    try:
        Results("01_a").record("M", "rating", {"rmse": 1.0})
    finally:
        os.umask(old)
    assert (run_dir / "results.json").stat().st_mode & 0o777 == mode


def test_forget_drops_one_notebooks_records(run_dir):
    Results("01_a").record("M", "rating", {"rmse": 1.0})
    Results("02_b").record("N", "rating", {"rmse": 0.9})
    res.forget(run_dir, "01_a")
    assert [r["notebook"] for r in stored(run_dir)] == ["02_b"]
    res.forget(run_dir / "nothing", "01_a")  # no results.json: nothing to do


def test_the_leaderboard_marks_notebooks_that_did_not_finish(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RECORDS))
    (tmp_path / "timings.json").write_text(json.dumps({
        "01_pre": {"status": "ok", "seconds": 10.0, "parameters": "smoke + DATASET='ml-100k'"},
        "03_mf": {"status": "interrupted", "seconds": 4.2, "parameters": "SGD_EPOCHS=50"},
        "06_rnn": {"status": "failed", "seconds": 1.0, "parameters": "defaults"},
        "07_old": {"seconds": 3.0, "smoke": True, "ok": False},  # the format of older run folders
    }))
    tables = write_leaderboard(tmp_path)
    assert tables["rating"]["notebook"].tolist() == ["03_mf (interrupted)", "01_pre", "01_pre"]
    md = (tmp_path / "leaderboard.md").read_text()
    assert "did not finish: 03_mf (interrupted), 06_rnn (failed), 07_old (failed)" in md
    assert "| 06_rnn (failed) | GRU4Rec |" in md and "| 01_pre | Popularity |" in md
    assert "| 01_pre | 10 | smoke + DATASET='ml-100k' | ok |" in md
    assert "| 03_mf | 4 | SGD_EPOCHS=50 | INTERRUPTED |" in md and "| 07_old | 3 | smoke | FAILED |" in md
    assert res.unfinished(tmp_path) == {"03_mf": "interrupted", "06_rnn": "failed", "07_old": "failed"}


def test_a_finished_run_has_no_incomplete_note(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RECORDS[:1]))
    (tmp_path / "timings.json").write_text(json.dumps({"01_pre": {"status": "ok", "seconds": 1}}))
    write_leaderboard(tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "Incomplete" not in md and "| 01_pre | GlobalMean |" in md


def test_the_leaderboard_chart_marks_unfinished_rows_too(tmp_path, monkeypatch):
    import recsys_helpers.plots as plots

    seen = {}
    real = plots.plot_leaderboard
    monkeypatch.setattr(plots, "plot_leaderboard", lambda tables, metric: seen.update(tables) or real(tables, metric))
    (tmp_path / "results.json").write_text(json.dumps(RECORDS))
    (tmp_path / "timings.json").write_text(json.dumps({"03_mf": {"status": "interrupted", "seconds": 1}}))
    write_leaderboard(tmp_path)
    assert seen["rating"]["model"].tolist() == ["MF (interrupted)", "BiasBaseline", "GlobalMean"]


def test_systems_records_are_listed_apart_and_never_ranked():
    systems = [{"notebook": "10_serving", "model": "service", "protocol": "systems",
                "metrics": {"p99 ms": 12.0}, "train_seconds": None},
               {"notebook": "10_serving", "model": "index", "protocol": "systems",
                "metrics": {"recall@10 (vs exact)": 0.97}, "train_seconds": None}]
    tables = leaderboard(RECORDS + systems)
    assert list(tables)[-1] == "systems" and tables["systems"]["model"].tolist() == ["service", "index"]
    assert "p99 ms" not in tables["ranking"]  # the ranking table keeps only the ranking metrics
    text = leaderboard_markdown(tables)
    assert "## systems (measurements of the systems around the models, not ranked)" in text
    assert "sorted by None" not in text
    from recsys_helpers.plots import plot_leaderboard

    fig = plot_leaderboard(tables, PRIMARY_METRIC)
    assert len(fig.axes) == 3  # rating, ranking, sequential: systems has no panel


# --------------------------------------------------------------------------------------------- probes of 2026-12-07

def test_a_run_dir_that_is_a_file_is_refused_up_front(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    monkeypatch.delenv(res.RUN_DIR_ENV, raising=False)
    for run_dir in (tmp_path / "afile", tmp_path / "afile" / "run"):
        with pytest.raises(ValueError, match=r"run_dir .*afile is a file, not a folder; name a folder"):
            Results("01_a", run_dir=run_dir)
    monkeypatch.setenv(res.RUN_DIR_ENV, str(tmp_path / "afile"))
    with pytest.raises(ValueError, match=r"\$RECSYS_RUN_DIR .*is a file, not a folder"):
        Results("01_a")
    Results("01_a", run_dir=tmp_path / "new" / "run").record("M", "rating", {"rmse": 1.0})  # created as needed
    assert read_results(tmp_path / "new" / "run")[0]["model"] == "M"


@pytest.mark.parametrize("name, kind", [
    ("ndcg@10", "ndcg"), ("NDCG@10", "ndcg"), ("ndcg_at_10", "ndcg"), ("ndcg10", "ndcg"), ("ndcg-10", "ndcg"),
    ("ndcg@10 (test)", "ndcg"), ("ndcg@10, next movie rare", "ndcg"), ("HR@10", "hit_rate"),
    ("hit_rate@5", "hit_rate"), ("HitRate@5", "hit_rate"), ("hit rate", "hit_rate"), ("hit_ratio@10", "hit_rate"),
    ("precision_at_k", "precision"), ("Recall@20", "recall"), ("MAP@10", "map"), ("mrr", "mrr"),
    ("catalogue coverage@10", "coverage"), ("RMSE", "rmse"), ("p99 ms (concurrency 1)", "p"),
    ("difference from EASE, ndcg@10", "difference_from_ease,_ndcg"), ("novelty", "novelty"),
])
def test_metric_kind_reads_the_usual_spellings(name, kind):
    assert res.metric_kind(name) == kind


@pytest.mark.parametrize("metrics", [{"hr@10": 3.0}, {"HitRate@5": 1.5}, {"hit rate": 2}, {"ndcg_at_10": 3.0},
                                     {"NDCG10": 1.2}, {"recall-at-10": -0.1}, {"auc": 1.1}, {"catalogue_coverage": 2}])
def test_ratio_metrics_are_range_checked_whatever_their_spelling(run_dir, metrics):
    with pytest.raises(ValueError, match=r"is a ratio in \[0, 1\]"):
        Results("01_a").record("M", "ranking", metrics)
    assert not run_dir.exists()


def test_differences_and_unbounded_metrics_are_not_taken_for_ratios(run_dir):
    Results("01_a").record("M", "ranking", {"ndcg@10": 0.3, "difference from EASE, ndcg@10": -0.05,
                                            "gain over genre, ndcg@10 (95% low)": -0.2, "share of EASE ndcg@10": 1.4})
    Results("01_a").record("S", "systems", {"p99 ms (concurrency 1)": 250.0, "requests/s": 900})
    with pytest.raises(ValueError, match=r"an error \(mse\) is never negative"):
        Results("01_a").record("M", "rating", {"MSE": -1.0})


@pytest.mark.parametrize("value", ["5", "0.2", b"1", [1.0]])
def test_text_is_not_a_number_for_a_metric_or_a_duration(run_dir, value):
    with pytest.raises(ValueError, match="train_seconds of 'M' is .*pass a time in seconds"):
        Results("01_a").record("M", "rating", {"rmse": 1.0}, train_seconds=value)
    with pytest.raises(ValueError, match="record a number"):
        Results("01_a").record("M", "rating", {"rmse": value})
    assert not run_dir.exists()


def test_numpy_numbers_are_numbers(run_dir):
    import numpy as np
    Results("01_a").record("M", "ranking", {"ndcg@10": np.float32(0.25), "n": np.int64(3)},
                           train_seconds=np.float64(1.23456))
    assert stored(run_dir)[0]["metrics"] == {"ndcg@10": 0.25, "n": 3.0} and stored(run_dir)[0]["train_seconds"] == 1.235


def test_a_pipe_or_a_line_break_in_a_name_does_not_break_the_markdown_table(tmp_path):
    records = [{"notebook": "01_a", "model": "a|b", "protocol": "ranking", "metrics": {"ndcg@10": 0.2},
                "train_seconds": None},
               {"notebook": "01_a", "model": "two\nlines", "protocol": "ranking", "metrics": {"ndcg@10": 0.1},
                "train_seconds": None}]
    (tmp_path / "results.json").write_text(json.dumps(records))
    (tmp_path / "timings.json").write_text(json.dumps({"01_a": {"status": "ok", "seconds": 2,
                                                                "parameters": "NAME='x|y'"}}))
    write_leaderboard(tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| 01_a | a\\|b | 0.2000 |" in md and "| 01_a | two lines | 0.1000 |" in md
    assert "| 01_a | 2 | NAME='x\\|y' | ok |" in md
    rows = [line for line in md.splitlines() if line.startswith("| 01_a") and "0." in line]
    cells = [len(line.replace("\\|", "").split("|")) for line in rows]  # an escaped '|' is no cell border
    assert cells == [5, 5]  # '', notebook, model, ndcg@10, ''; no train_seconds column (all None)


@pytest.mark.parametrize("change, message", [
    (dict(metrics=[["ndcg@10", 0.2]]),
     r"record 2 \(notebook '03_mf', model 'BPR'\) has metrics \[\['ndcg@10', 0\.2\]\]"),
    (dict(metrics={"ndcg@10": "0.2"}), r"record 2 .*has metric 'ndcg@10' = '0\.2', not a finite number"),
    (dict(metrics={"ndcg@10": True}), "has metric 'ndcg@10' = True"),
    (dict(metrics={"ndcg@10": [[0.1], [0.2, 0.3]]}), "has metric 'ndcg@10' = \\[\\[0.1\\], \\[0.2, 0.3\\]\\], not a"),
    (dict(metrics={}), "has metrics {}"),
    (dict(model=7), "has model 7, not a non-empty string"),
    (dict(protocol=None), "has protocol None"),
    (dict(train_seconds="5"), "has train_seconds '5', not a number or null"),
])
def test_a_hand_edited_record_is_named_with_the_fix(tmp_path, change, message):
    records = [dict(RECORDS[1]), {**RECORDS[4], **change}]
    (tmp_path / "results.json").write_text(json.dumps(records))
    for action in (lambda: read_results(tmp_path), lambda: write_leaderboard(tmp_path)):
        with pytest.raises(res.BrokenRunFile, match=message) as err:
            action()
        assert str(tmp_path / "results.json") in str(err.value) and "correct that record by hand" in str(err.value)


def test_a_nan_metric_in_a_hand_edited_file_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps([RECORDS[0]]).replace("1.04", "NaN"))
    with pytest.raises(res.BrokenRunFile, match="has metric 'rmse' = nan, not a finite number"):
        read_results(tmp_path)


def test_records_of_an_unknown_protocol_keep_their_rows_under_their_own_heading(tmp_path):
    old = [{"notebook": "02_old", "model": "kNN", "protocol": "top-k", "metrics": {"ndcg@10": 0.3},
            "train_seconds": 1.0},
           {"notebook": "02_old", "model": "Pop", "protocol": "top-k", "metrics": {"ndcg@10": 0.2},
            "train_seconds": None}]
    (tmp_path / "results.json").write_text(json.dumps(RECORDS + old))
    tables = write_leaderboard(tmp_path)
    assert list(tables) == ["rating", "ranking", "sequential", "top-k"]  # after the course's protocols
    assert tables["top-k"]["model"].tolist() == ["kNN", "Pop"] and sum(map(len, tables.values())) == len(RECORDS) + 2
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## top-k (not a protocol of this course: rating, ranking, sequential, cold-start, sampled, systems; " \
           "listed as recorded, not ranked)" in md
    assert "| 02_old | kNN | 0.3000 | 1.0000 |" in md and "| 02_old | Pop | 0.2000 |" in md
    assert res.primary_metric("top-k") == (None, False) and res.primary_metric("rating") == ("rmse", True)


# --------------------------------------------------------------------------------------------- two profiles (issue 26)

def test_a_record_carries_its_epochs_and_budget_and_the_budget_table_labels_a_capped_model(tmp_path):
    from recsys_helpers.training import EpochLog

    res = Results("03_matrix_factorisation", run_dir=tmp_path)
    res.record("early", "ranking", {"ndcg@10": 0.3}, 2.0, epochs=EpochLog(7, 4, 40), budget="2 candidates")
    res.record("capped", "ranking", {"ndcg@10": 0.2}, 1.0, epochs={"ran": 10, "best": 10, "cap": 10})
    res.record("closed form", "ranking", {"ndcg@10": 0.35}, 0.5)
    stored = {r["model"]: r for r in read_results(tmp_path)}
    assert stored["early"]["epochs"] == {"ran": 7, "best": 4, "cap": 40} and stored["early"]["budget"] == "2 candidates"
    assert "epochs" not in stored["closed form"]
    table = res.budget_table().set_index("model")
    assert table.loc["early", "stopped by"] == "early stopping"
    assert table.loc["capped", "stopped by"] == "its cap: cut short by the budget"
    assert table.loc["closed form", "stopped by"] == "" and pd.isna(table.loc["closed form", "epochs run"])
    frame = records_frame(read_results(tmp_path)).set_index("model")
    assert frame.loc["early", "epochs"] == "7/40" and frame.loc["capped", "epochs"] == "10/10 (cap)"


@pytest.mark.parametrize("epochs", [{"ran": 3, "best": 4, "cap": 10}, {"ran": 11, "best": 4, "cap": 10},
                                    {"ran": 2.5, "best": 1, "cap": 3}, {"ran": 3, "best": 0, "cap": 3}, {"ran": 3}])
def test_impossible_epoch_counts_are_refused(epochs):
    with pytest.raises(ValueError, match="epochs of 'm'"):
        Results("nb").record("m", "ranking", {"ndcg@10": 0.1}, epochs=epochs)


def test_compare_stores_the_verdict_and_the_runner_forgets_it_with_the_notebook(tmp_path):
    from recsys_helpers.evaluation import paired_bootstrap
    from recsys_helpers.results import forget, read_comparisons

    res = Results("nb", run_dir=tmp_path)
    boot = paired_bootstrap(np.linspace(0.2, 0.4, 50), np.linspace(0.1, 0.3, 50), names=("EASE", "WMF"), seed=0)
    verdict = res.compare(boot, "ranking", "ndcg@10")
    assert verdict == boot["verdict"] and verdict.startswith("EASE beats WMF: difference EASE − WMF = +0.1000")
    (entry,) = read_comparisons(tmp_path)
    assert (entry["a"], entry["b"], entry["diff"]) == ("EASE", "WMF", pytest.approx(0.1))
    res.compare(boot, "ranking", "ndcg@10")  # the same pair again replaces, never duplicates
    assert len(read_comparisons(tmp_path)) == 1
    with pytest.raises(TypeError, match="paired_bootstrap"):
        res.compare({"diff": 1.0}, "ranking", "ndcg@10")
    forget(tmp_path, "nb")
    assert read_comparisons(tmp_path) == []


def test_reference_table_puts_this_run_and_the_committed_other_profile_side_by_side(tmp_path, monkeypatch):
    import recsys_helpers.results as results_module
    from recsys_helpers.results import write_json

    reference = tmp_path / "reference"
    write_json(reference / "results.json", [
        {"notebook": "nb", "model": "GRU", "protocol": "sequential", "metrics": {"ndcg@10": 0.08},
         "epochs": {"ran": 31, "best": 25, "cap": 200}},
        {"notebook": "other", "model": "GRU", "protocol": "sequential", "metrics": {"ndcg@10": 0.5}},
        {"notebook": "nb", "model": "GRU", "protocol": "ranking", "metrics": {"ndcg@10": 0.9}}])
    monkeypatch.setattr(results_module, "REFERENCE_DIR", reference)
    res = Results("nb")
    res.record("GRU", "sequential", {"ndcg@10": 0.06}, epochs={"ran": 10, "best": 10, "cap": 10})
    res.record("Markov", "sequential", {"ndcg@10": 0.07})
    table = res.reference_table("sequential", "ndcg@10").set_index("model")
    assert table.loc["GRU", "laptop: ndcg@10"] == 0.06 and table.loc["GRU", "reference: ndcg@10"] == 0.08
    assert table.loc["GRU", "laptop: epochs"] == "10/10 (cap)" and table.loc["GRU", "reference: epochs"] == "31/200"
    assert pd.isna(table.loc["Markov", "reference: ndcg@10"])  # not in the reference run: left empty, not invented
    assert res.records[0]["profile"] == "laptop"
    ref = Results("nb", profile="reference")  # the reference run's own column is its records; laptop's is committed
    ref.record("GRU", "sequential", {"ndcg@10": 0.081})
    assert ref.records[0]["profile"] == "reference"
    assert ref.reference_table("sequential", "ndcg@10").set_index("model").loc["GRU", "reference: ndcg@10"] == 0.081


def test_reference_table_says_once_that_the_reference_run_is_pending(tmp_path, monkeypatch, capsys):
    import recsys_helpers.results as results_module
    from recsys_helpers.results import BrokenRunFile, pending_reference, write_json

    reference = tmp_path / "reference"
    write_json(reference / "pending.json", {"nb": "not run yet: too long for this session"})
    monkeypatch.setattr(results_module, "REFERENCE_DIR", reference)
    assert pending_reference() == {"nb": "not run yet: too long for this session"}
    res = Results("nb")
    res.record("GRU", "sequential", {"ndcg@10": 0.06})
    table = res.reference_table("sequential", "ndcg@10")
    assert pd.isna(table.loc[0, "reference: ndcg@10"])
    res.reference_table("sequential", "ndcg@10")
    said = capsys.readouterr().out
    assert said.count("No reference run of nb is committed yet (not run yet: too long for this session)") == 1
    other = Results("other")  # not pending either: still told, with the generic reason
    other.reference_table("sequential", "ndcg@10")
    assert "no run of this notebook is in notebooks/reference/" in capsys.readouterr().out
    write_json(reference / "pending.json", {"nb": ""})
    with pytest.raises(BrokenRunFile, match="non-empty reason"):
        pending_reference()
    write_json(reference / "pending.json", [])
    with pytest.raises(BrokenRunFile):
        pending_reference()
