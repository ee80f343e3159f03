"""The run report: files, self-contained HTML, markdown links, figures, and a real headless browser."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lawsearch.errors import LawsearchError
from lawsearch.evaluate import evaluate_law
from lawsearch.io import write_json_atomic
from lawsearch.report import plots
from lawsearch.report.html import write_report
from lawsearch.search.engine import discover
from lawsearch.search.settings import SearchSettings
from lawsearch.task import load_task, task_from_frame
from lawsearch.uncertainty import bootstrap_intervals

PNG = b"\x89PNG\r\n\x1a\n"
TASK_YAML = """\
name: tiny
description: Synthetic Chinchilla data in two groups.
data:
  synthetic:
    law: "E + A/params**alpha + B/tokens**beta"
    parameters: {E: 1.69, A: 406.4, B: 410.7, alpha: 0.34, beta: 0.28}
    inputs: {params: [1.0e+7, 1.0e+10], tokens: [1.0e+9, 1.0e+12]}
    rows: 30
    noise: 0.01
    groups: {first: {}, second: {E: 1.8}}
inputs: [params, tokens]
target: loss
group: group
human_laws:
  - {name: Hoffmann et al. 2022, formula: "E + A/params**alpha + B/tokens**beta"}
  - {name: power law, formula: "A/params**alpha"}
"""
TINY = SearchSettings(proposers=("library", "mutate"), generations=2, proposals_per_generation=8,
                      initial_library=12, islands=1, population_size=4, search_starts=8, search_local=1,
                      bootstrap=0)  # the fixture computes the intervals itself (8 resamples)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A finished run with a ``ci`` and a ``task_path`` in law.json, and its report written."""
    root = tmp_path_factory.mktemp("report")
    yaml_path = root / "tiny.yaml"
    yaml_path.write_text(TASK_YAML)
    task = load_task(yaml_path)
    run_dir = root / "run"
    result = discover(task, TINY, out=run_dir)
    law_json = dict(result.law_json)
    law_json["ci"] = bootstrap_intervals(task, law_json["law"]["formula"], law_json["law"]["fitted"], n_boot=8)
    law_json["task_path"] = str(yaml_path.resolve())
    write_json_atomic(run_dir / "law.json", law_json)
    html_path, md_path = write_report(run_dir)  # the task is found through law.json's task_path
    return {"dir": run_dir, "html": html_path, "md": md_path, "task": task, "law_json": law_json}


def _images(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", html)


def test_report_files_are_written(run):
    assert run["html"] == run["dir"] / "report.html" and run["html"].is_file()
    assert run["md"] == run["dir"] / "report.md" and run["md"].is_file()
    names = {p.name for p in (run["dir"] / "plots").glob("*.png")}
    assert names == {"law.png", "observed_vs_predicted.png", "group_curves.png", "residuals_vs_scale.png",
                     "pareto_front.png", "search_progress.png"}
    for path in (run["dir"] / "plots").glob("*.png"):
        assert path.read_bytes().startswith(PNG)


def test_html_is_self_contained(run):
    html = run["html"].read_text(encoding="utf-8")
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html, re.I)
    assert not re.search(r"<(?:script|link|iframe|object|embed)\b", html, re.I)
    assert "@import" not in html and "url(" not in html
    sources = _images(html)
    assert len(sources) == 6  # the law and five figures
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG)
    assert not re.search(r"\bhref\s*=", html)


def test_html_shows_the_law_tables_and_intervals(run):
    html = run["html"].read_text(encoding="utf-8")
    law = run["law_json"]["law"]
    assert f"<code>{escape(law['formula'])}</code>" in html
    assert "\\mathrm{loss} = " in html  # the LaTeX, also as text
    assert "Hoffmann et al. 2022" in html and "power law" in html
    assert "95% CI" in html
    assert "percentile bootstrap over train rows resampled within each group, 8 replicates (" in html
    ci = run["law_json"]["ci"]["parameters"]["first"]
    name = law["parameters"][0]
    lo, hi = ci[name]
    assert f"[{lo:.4g}, {hi:.4g}]" in html
    assert "Extrapolation at the largest test scale" in html


def test_markdown_links_exist_and_tables_are_there(run):
    md = run["md"].read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 6
    for link in links:
        assert not link.startswith(("http:", "https:", "/"))
        assert (run["dir"] / link).is_file()
    assert "$$" in md and run["law_json"]["law"]["formula"] in md
    assert "| discovered |" in md and "| Hoffmann et al. 2022 |" in md


def test_report_without_ci_or_history_still_renders(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run["dir"], copy)
    law_json = json.loads((copy / "law.json").read_text())
    del law_json["ci"]
    (copy / "law.json").write_text(json.dumps(law_json))
    (copy / "history.jsonl").unlink()
    (copy / "checkpoint.json").unlink()
    html_path, _ = write_report(copy, run["task"])
    html = html_path.read_text(encoding="utf-8")
    assert "no confidence intervals" in html
    assert len(_images(html)) == 4
    assert "no history.jsonl" in html


def test_report_says_when_the_bootstrap_stopped_at_its_time_limit(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run["dir"], copy)
    law_json = json.loads((copy / "law.json").read_text())
    law_json["ci"]["n_boot"] = 5  # as if the time limit had stopped it after 5 of the 8 replicates
    (copy / "law.json").write_text(json.dumps(law_json))
    html_path, _ = write_report(copy, run["task"])
    assert "5 of 8 replicates (time limit)" in html_path.read_text(encoding="utf-8")


def test_task_must_be_found_and_match(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run["dir"], copy)
    law_json = json.loads((copy / "law.json").read_text())
    law_json.pop("task_path")
    (copy / "law.json").write_text(json.dumps(law_json))
    with pytest.raises(LawsearchError, match="cannot find the task 'tiny'.*pass the task YAML"):
        write_report(copy)
    other = load_task(Path(__file__).resolve().parents[1] / "tasks" / "demo.yaml")
    with pytest.raises(LawsearchError, match="the run is of task 'tiny', but the task given is 'demo'"):
        write_report(copy, other)


def test_latex_is_typeset_without_tex_and_bad_latex_falls_back():
    png = plots.render_latex(r"\mathrm{loss} = A \mathrm{params}^{- \alpha} + E")
    assert png is not None and png.startswith(PNG)
    assert plots.render_latex(r"\frac{") is None
    assert plots.spaced_latex(r"A \mathrm{params}") == r"A \, \mathrm{params}"


def test_figures_handle_several_targets_and_no_scale_axis():
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(np.log(1e2), np.log(1e5), 24))
    frame = pd.DataFrame({"x": x, "g": np.repeat(["p", "q"], 12),
                          "u": 1.0 + 30 * x**-0.5, "v": 2.0 + 10 * x**-0.3})
    task = task_from_frame(frame, name="two", inputs="x", target=["u", "v"], group="g",
                           split={"extrapolate": {"by": [], "test_fraction": 0.25}})
    evaluation = evaluate_law(task, "E + A/x**alpha")
    _, validation = task.validation_split()
    _, split = plots.split_labels(task, validation)
    X = np.vstack([task.train.X, task.test.X])
    Y = np.vstack([task.train.Y, task.test.Y])
    groups = np.concatenate([task.train.groups, task.test.groups])
    pred = evaluation.fit.predict(X, groups, task.targets)
    figures = [
        plots.observed_vs_predicted(Y, pred, split, task.targets),
        plots.group_curves(task, evaluation.fit, evaluation.fit, human_name="same law"),
        plots.residuals_vs_scale(np.arange(len(X), dtype=float), Y, pred, split, task.targets),
        plots.pareto_front([]),
        plots.search_progress([]),
    ]
    assert len(figures[1].axes) >= 4  # 2 groups × 2 targets
    for fig in figures:
        assert plots.figure_png(fig).startswith(PNG)


# ---------------------------------------------------------------------- a real browser
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PROBE = ("<script>window.addEventListener('load',()=>{const p=document.createElement('pre');p.id='probe';"
         "p.textContent=JSON.stringify([...document.images].map(i=>[i.complete,i.naturalWidth,i.naturalHeight]));"
         "document.body.appendChild(p);});</script>")


@pytest.fixture
def browser() -> str:
    """A Chromium binary, or skip (CI need not have one)."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no headless Chromium found (looked for {', '.join(BROWSERS)} on PATH)")


def _chrome(binary: str, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--hide-scrollbars", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"{binary} failed ({exc.returncode}): {exc.stderr[-2000:]}")
    except subprocess.TimeoutExpired:
        pytest.fail(f"{binary} did not finish within 120 s")


@pytest.mark.browser
def test_report_renders_in_a_headless_browser(browser, run, tmp_path):
    binary = browser
    html = run["html"].read_text(encoding="utf-8")
    # A copy with a probe script (the report itself has none) that lists every image as decoded.
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chrome(binary, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the page did not load: {dom[:500]}"
    images = json.loads(found.group(1))
    assert len(images) == len(_images(html)) == 6
    for complete, width, height in images:
        assert complete and width > 50 and height > 20
    # A screenshot of the report itself is not blank.
    shot = tmp_path / "shot.png"
    _chrome(binary, "--window-size=1200,2000", f"--screenshot={shot}", run["html"].as_uri())
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.std(pixels[..., :3])) > 0.02  # text and figures, not a blank page
