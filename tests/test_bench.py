"""The bench's tables, SLDBench means, proposer counts, bar chart and report (from hand-made results)."""

from __future__ import annotations

import json
import re

import pytest

from lawsearch.bench import (
    BenchRow,
    bench_json,
    bench_markdown,
    bench_summary,
    clip_r2,
    proposer_totals,
    sldbench_reference,
    write_bench_files,
)
from lawsearch.errors import LawsearchError
from lawsearch.report.bench import is_bench_folder, write_bench_report


def law(r2: float, source: str = "library") -> dict:
    return {"formula": "E + A/x**a", "source": source,
            "metrics": {"test": {"r2": r2, "nmse": 1 - r2, "nmae": 0.1}}}


def row(task: str, r2s: list[float], human_r2: float, proposers: list[dict] | None = None) -> BenchRow:
    reference = sldbench_reference()
    return BenchRow(task, "10/2", 1, "human", {"r2": human_r2, "nmse": 1 - human_r2, "nmae": 0.1},
                    [law(v, "mutate" if v > 0.9 else "library") for v in r2s], [1.0] * len(r2s), [5] * len(r2s),
                    reference.get(task), proposers or [])


@pytest.fixture
def rows() -> list[BenchRow]:
    stats = {"library": {"proposed": 10, "ok": 8, "improving": 2}, "mutate": {"proposed": 5, "ok": 4, "improving": 1}}
    return [row("moe", [0.8, 0.95], 0.64, [stats, stats]), row("easy_question", [-3.0, 0.2], -640.0),
            row("sparsity", [0.5, 0.7], 0.63)]


def test_clip_r2_is_the_leaderboard_rule():
    assert [clip_r2(v) for v in (-640.0, -0.5, 0.9, 1.0, None, float("nan"))] == [-1.0, -0.5, 0.9, 1.0, -1.0, -1.0]


def test_summary_is_the_clipped_mean_over_the_sldbench_tasks_run(rows):
    summary = bench_summary(rows)
    assert summary["tasks"] == ["moe", "easy_question"] and summary["of"] == 8  # sparsity is not SLDBench's
    assert summary["per_seed"] == pytest.approx([(0.8 - 1.0) / 2, (0.95 + 0.2) / 2])
    assert summary["discovered"] == pytest.approx(((0.8 + 0.95) / 2 + (-1.0 + 0.2) / 2) / 2)
    assert summary["human"] == pytest.approx((0.64 - 1.0) / 2)
    assert summary["published"]["human"] == pytest.approx((0.703 - 1.0) / 2)
    assert summary["published"]["sldagent_mean"] == pytest.approx((0.773 - 0.305) / 2)
    everything = summary["published_all"]
    assert [everything[k] for k in ("human", "sldagent_mean", "sldagent_best")] == \
        pytest.approx([0.517, 0.748, 0.859], abs=0.001)


def test_proposer_totals_count_over_tasks_and_seeds(rows):
    assert proposer_totals(rows) == {
        "library": {"proposed": 20, "accepted": 16, "improving": 4, "winners": 5},  # r2 <= 0.9: 5 of 6 runs
        "mutate": {"proposed": 10, "accepted": 8, "improving": 2, "winners": 1},
    }


def test_markdown_shows_min_max_the_means_and_the_proposers(rows):
    text = bench_markdown(rows)
    assert "| moe | 10/2 | 1 | human | 0.6400 | 0.3600 | 0.8750 ± 0.0750 | 0.8000 / 0.9500 |" in text
    assert "| lawsearch, seed 1 | 0.5750 | |" in text
    assert "| SLDAgent (GPT-5), mean of 5 runs | 0.2340 | 0.7480 |" in text
    assert "| library | 20 | 16 | 4 | 5 |" in text
    assert "![discovered vs human vs best published R² per task](bench.png)" in text


def test_bench_files_chart_and_report(rows, tmp_path):
    write_bench_files(tmp_path, rows)
    assert is_bench_folder(tmp_path)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [r["task"] for r in data["rows"]] == ["moe", "easy_question", "sparsity"]
    assert data["rows"][1]["r2_seeds"] == [-3.0, 0.2] and data["rows"][2]["sldbench_task"] is None
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html_path, md_path = write_bench_report(tmp_path)
    assert md_path.read_text() == (tmp_path / "bench.md").read_text()
    page = html_path.read_text()
    assert '<img src="data:image/png;base64,' in page and "| moe | 10/2 |" in page


def test_report_of_a_broken_bench_folder_names_the_missing_file(rows, tmp_path):
    write_bench_files(tmp_path, rows)
    (tmp_path / "bench.md").unlink()
    with pytest.raises(LawsearchError, match=re.escape(f"{tmp_path}: not a bench folder (bench.md is missing)")):
        write_bench_report(tmp_path)


def test_chart_of_seeds_that_agree_draws_no_negative_whisker(tmp_path):
    """The mean of three equal values 0.671 is one bit below 0.671: the whisker to the minimum is 0."""
    write_bench_files(tmp_path, [row("lr_bsz", [0.671] * 3, -0.41)])
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
