"""Fault injection: hostile or careless use gets one line and exit code 2, never a traceback,
never a lost or overwritten file, and never a stray process.

Cases: --out a user's folder, a file, or under a file; two runs on one folder; kill -9 of a
run with a process pool; a read-only and a full disk; corrupt checkpoints and law.json files;
formulas that break Python's parser or that it would misread (look-alike letters); duplicate
columns; groups too small for a law; a parameter named like the module alias of law.py; HTML
in report.md; an LLM that sends huge answers or fails every call.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import synthetic_task
from lawsearch.cli import main
from lawsearch.errors import CheckpointError, DataError, FormulaError, LawsearchWarning, TaskError
from lawsearch.evaluate import evaluate_law
from lawsearch.formula import Law
from lawsearch.search.checkpoint import load_checkpoint
from lawsearch.search.engine import Discovery, discover
from lawsearch.search.scoring import evaluate_batch
from lawsearch.search.settings import SearchSettings
from lawsearch.task import load_task
from test_llm import fake_llm, laws_json  # noqa: F401 - the fake OpenAI server fixture
from test_search import SMALL_TASK

TINY_TASK = SMALL_TASK.replace("name: small\n", 'name: tiny\ndescription: "A tiny synthetic task; '
                                                 '<b>raw HTML</b> & friends in its description"\n')
FAST = dict(proposals_per_generation=6, initial_library=8, islands=1, population_size=4, search_starts=6,
            search_local=1, refine_top=1, bootstrap=0, workers=1)
TINY_CONFIG = yaml.safe_dump({"proposers": ["library", "mutate"], **FAST})  # the CLI's --workers wins over it


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the CLI's entry point in this process (no start-up cost); an exception other than the
    exit it ends with would fail the test as a traceback would."""

    def run(*args: str) -> subprocess.CompletedProcess:
        monkeypatch.setattr(sys, "argv", ["lawsearch", *args])
        monkeypatch.setenv("COLUMNS", "250")
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main()
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, exit_info.value.code or 0, out.out, out.err)

    return run


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, no traceback, and the message names what went wrong."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A folder with the tiny task, a fast run config, and one finished 2-generation run in ``run``."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY_TASK)
    (folder / "fast.yaml").write_text(TINY_CONFIG)
    (folder / "run").mkdir()  # an empty folder is a fine --out
    discover(load_task(folder / "tiny.yaml"), SearchSettings(generations=2, proposers=("library", "mutate"), **FAST),
             out=folder / "run")
    return folder


def discover_args(folder: Path, *args: str) -> list[str]:
    return ["discover", str(folder / "tiny.yaml"), "--config", str(folder / "fast.yaml"), "--workers", "1",
            "--seed", "0", "--quiet", *args]


def copy_run(tiny: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny / "run", run)
    return run


# ------------------------------------------------------------------ run folders


def test_out_folder_with_the_users_files_is_refused_and_left_alone(tiny, tmp_path, cli):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "law.py").write_text("# my own law\n")
    done = cli(*discover_args(tiny, "--out", str(mine), "--generations", "1"))
    assert_one_line_error(done, "is not empty", "'law.py'", "not a lawsearch run")
    assert sorted(p.name for p in mine.iterdir()) == ["law.py"]
    assert (mine / "law.py").read_text() == "# my own law\n"


@pytest.mark.parametrize("where, fragment", [("afile", "it is a file"), ("afile/run", "lies under")])
def test_out_that_is_a_file_or_under_one_is_refused(tiny, tmp_path, where, fragment, cli):
    (tmp_path / "afile").write_text("data\n")
    done = cli(*discover_args(tiny, "--out", str(tmp_path / where), "--generations", "1"))
    assert_one_line_error(done, "cannot create the folder", fragment)
    assert (tmp_path / "afile").read_text() == "data\n"


def _wait_for(condition, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _interruptible() -> None:
    """In the child: Ctrl-C (SIGINT) interrupts, even where the suite runs as a background job
    (whose shell ignores SIGINT, and an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _lock_holder(run: Path) -> int | None:
    try:
        return int((run / "run.lock").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def test_second_resume_of_a_live_run_is_refused_naming_the_holder(tiny, tmp_path, cli):
    run = copy_run(tiny, tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "lawsearch.cli",
                              *discover_args(tiny, "--out", str(run), "--resume", "--generations", "400",
                                             "--time-limit", "300")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_interruptible)
    try:
        _wait_for(lambda: _lock_holder(run) == first.pid, what="the first run to lock its folder")
        second = cli(*discover_args(tiny, "--out", str(run), "--resume", "--generations", "3"))
        assert_one_line_error(second, "in use by another lawsearch run", f"pid {first.pid}")
    finally:
        first.send_signal(signal.SIGINT)  # the first run writes its best law and ends
        first.wait(timeout=300)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["index"] for r in history] == list(range(len(history)))  # one writer: no duplicated index


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (an exited process its new parent has not reaped)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find a run's worker processes")
def test_pool_workers_exit_when_the_run_is_killed(tiny, tmp_path):
    run = tmp_path / "run"
    args = discover_args(tiny, "--out", str(run), "--generations", "400", "--time-limit", "300")
    args[args.index("--workers") + 1] = "2"
    proc = subprocess.Popen([sys.executable, "-m", "lawsearch.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(_children(proc.pid)) >= 2, what="the run's pool to start its workers")
        workers = _children(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "worker processes outlived their killed run"


# ------------------------------------------------------------------ disks that refuse writes


def _namespace_reason() -> str | None:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "needs unshare and mount (util-linux) to make a private read-only or full file system"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot mount in a private namespace here (unshare -rm: {probe.stderr.strip()[:200]})"
    return None


NAMESPACE_REASON = _namespace_reason() if sys.platform.startswith("linux") else "needs Linux mount namespaces"


def in_namespace(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace (chmod means nothing to root, a mount does);
    the mounts it makes vanish with it."""
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "250"})


def _cli_line(tiny: Path, *args: str) -> str:
    return " ".join([sys.executable, "-m", "lawsearch.cli", *(f"'{a}'" for a in discover_args(tiny, *args))])


@pytest.mark.skipif(NAMESPACE_REASON is not None, reason=str(NAMESPACE_REASON))
def test_read_only_disk_is_one_line_naming_the_file(tiny, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    done = in_namespace(f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
                        f"exec {_cli_line(tiny, '--out', str(folder / 'run'), '--generations', '1')}")
    assert_one_line_error(done, "cannot write", str(folder / "run"), "Read-only file system")


@pytest.mark.skipif(NAMESPACE_REASON is not None, reason=str(NAMESPACE_REASON))
def test_full_disk_is_one_line_and_the_last_checkpoint_stays(tiny, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    run = tiny / "run"
    done = in_namespace(
        f"mount -t tmpfs -o size=1m tmpfs {disk} && cp -r {run} {disk}/run && "
        f"(dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null; true) && "
        f"{_cli_line(tiny, '--out', str(disk / 'run'), '--resume', '--generations', '6')}; rc=$?; "
        f"cmp {disk}/run/checkpoint.json {run}/checkpoint.json && echo checkpoint-intact >&2; exit $rc")
    assert_one_line_error(done, "cannot write", str(disk / "run"), "No space left on device")
    assert "checkpoint-intact" in done.stderr


# ------------------------------------------------------------------ corrupt inputs


def _corrupt(data: dict, how: str):
    if how == "list":
        return [data]
    changes = {"history_bytes_text": ("history_bytes", "12"), "history_bytes_negative": ("history_bytes", -5),
               "generation_text": ("generation", "1")}
    if how in changes:
        key, value = changes[how]
        return {**data, key: value}
    assert how == "unknown_island_key"
    return {**data, "islands": [[*data["islands"][0], "_p0 + no_such_law"]]}


@pytest.mark.parametrize("how, fragment", [
    ("binary", "unreadable checkpoint"),
    ("list", "a checkpoint is a JSON object, this is a JSON list"),
    ("history_bytes_text", "'history_bytes' must be a whole number >= 0, got '12'"),
    ("history_bytes_negative", "'history_bytes' must be a whole number >= 0, got -5"),
    ("generation_text", "'generation' must be a whole number >= 0, got '1'"),
    ("unknown_island_key", "island 0 names '_p0 + no_such_law', which is not a law of its archive"),
])
def test_corrupt_checkpoint_is_refused_naming_the_field(tiny, tmp_path, how, fragment):
    run = copy_run(tiny, tmp_path)
    path = run / "checkpoint.json"
    if how == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    else:
        path.write_text(json.dumps(_corrupt(json.loads(path.read_text()), how)))
    before = (run / "history.jsonl").read_bytes()
    with pytest.raises(CheckpointError, match="checkpoint") as error:
        load_checkpoint(run)
    assert fragment in str(error.value)
    assert (run / "history.jsonl").read_bytes() == before


def test_corrupt_checkpoint_from_the_command_line(tiny, tmp_path, cli):
    run = copy_run(tiny, tmp_path)
    (run / "checkpoint.json").write_text(json.dumps({**json.loads((run / "checkpoint.json").read_text()),
                                                     "generation": "1"}))
    done = cli(*discover_args(tiny, "--out", str(run), "--resume", "--generations", "3"))
    assert_one_line_error(done, "corrupt checkpoint", "'generation'")


@pytest.mark.parametrize("how, fragment", [
    ("binary", "not UTF-8 text"),
    ("inputs_text", "'inputs' must be a list of names, got 'params'"),
    ("no_task", "no 'task'"),
])
@pytest.mark.parametrize("command", ["export", "compare"])
def test_malformed_law_json_is_one_line(tiny, tmp_path, command, how, fragment, cli):
    data = json.loads((tiny / "run" / "law.json").read_text())
    path = tmp_path / "law.json"
    if how == "binary":
        path.write_bytes(bytes(range(128, 256)))
    elif how == "inputs_text":
        path.write_text(json.dumps({**data, "law": {**data["law"], "inputs": "params"}}))
    else:
        path.write_text(json.dumps({k: v for k, v in data.items() if k != "task"}))
    assert_one_line_error(cli(command, str(path)), str(path), fragment)


def test_thousands_of_unary_minuses_are_a_formula_error(tiny, cli):
    text = "-" * 3000 + "params"
    with pytest.raises(FormulaError, match="nested deeper than"):
        Law.parse(text, ["params"])
    assert_one_line_error(cli("export", "--law", text, "--inputs", "params"), "nested deeper than")
    assert_one_line_error(cli("evaluate", str(tiny / "tiny.yaml"), "--law", text), "nested deeper than")


# ------------------------------------------------------------------ silent misreadings


@pytest.mark.parametrize("text, name, folded", [
    ("E + A/ｐａｒａｍｓ**alpha", "ｐａｒａｍｓ", "params"),
    ("E + A/params**alpha + 𝐄", "𝐄", "E"),
])
def test_look_alike_names_are_rejected(text, name, folded):
    with pytest.raises(FormulaError, match=f"name '{name}' is written with look-alike characters "
                                           f"\\(it reads as '{folded}'\\)"):
        Law.parse(text, ["params"])


def test_look_alike_column_names_in_a_task_are_rejected(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text(TINY_TASK.replace("inputs: [params, tokens]", "inputs: [ｐａｒａｍｓ, tokens]"))
    with pytest.raises(TaskError, match="'inputs': column 'ｐａｒａｍｓ' is written with look-alike characters"):
        load_task(path)


def test_duplicate_column_names_are_rejected(tmp_path):
    (tmp_path / "data.csv").write_text("x,loss,loss\n1,2.0,3.0\n2,1.5,2.5\n3,1.2,2.2\n4,1.1,2.1\n")
    (tmp_path / "task.yaml").write_text("name: dup\ndata: {path: data.csv}\ninputs: [x]\ntarget: loss\n")
    with pytest.raises(DataError, match=r"^\S+data.csv: column 3 repeats the column name 'loss'; column names must"):
        load_task(tmp_path / "task.yaml")


def test_group_with_fewer_train_rows_than_parameters_warns_and_the_search_rejects(tmp_path):
    task = synthetic_task(rows=40, groups={"big": {}, "tiny": {}})
    keep = (task.frame["group"] == "big") | (task.frame.index.isin(task.frame.index[task.frame["group"] == "tiny"][:4]))
    from lawsearch.task import task_from_frame

    small = task_from_frame(task.frame[keep], name="small", inputs=["params", "tokens"], target="y", group="group",
                            split={"extrapolate": {"by": ["params", "tokens"], "test_fraction": 0.2}})
    group, rows = small.smallest_group()
    assert group == "tiny" and rows == 3
    formula = "E + A/params**alpha + B/tokens**beta"
    with pytest.warns(LawsearchWarning, match="group 'tiny' has 3 train rows, fewer than the 5 parameters"):
        evaluate_law(small, formula)
    payload = Discovery(small, SearchSettings(proposers=("library",), **FAST), tmp_path / "run").payload
    rejected, accepted = evaluate_batch([formula, "E + A/params**alpha"], payload)
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == "5 parameters > the 3 train rows of group 'tiny'"
    assert accepted["status"] == "ok"


def test_same_law_with_other_parameter_names_is_a_duplicate():
    inputs = ["params", "tokens", "lr"]
    assert Law.parse("E + beta/params**Q + O/tokens**zeta", inputs).canonical == \
        Law.parse("E + A/params**alpha + B/tokens**beta", inputs).canonical
    from lawsearch.proposers.library import Columns, library_forms

    pool = ["E", "A", "B", "C", "alpha", "beta", "gamma", "zeta", "Q", "O", "k", "a0", "z9", "m", "x1"]
    forms = library_forms(Columns(tuple(inputs), tuple(inputs), ()), 7)
    for k, (_, law) in enumerate(forms):
        names = pool[k % 5:][: law.n_parameters][::-1]  # other names, in another order
        renamed = Law.from_sympy(law.expr.xreplace({law.symbol(p): law.symbol(n)
                                                    for p, n in zip(law.parameters, names)}), inputs)
        assert renamed.canonical == law.canonical, (law.text, renamed.text)
    assert Law.parse("E + A/params**alpha + A/tokens**beta", inputs).canonical != \
        Law.parse("E + A/params**alpha + B/tokens**beta", inputs).canonical


# ------------------------------------------------------------------ outputs


def test_a_parameter_named_np_still_gives_a_working_law_py(tmp_path, cli):
    out = tmp_path / "law.py"
    done = cli("export", "--law", "np + A*exp(-x/alpha)", "--inputs", "x", "--format", "python",
                     "--out", str(out))
    assert done.returncode == 0, done.stderr
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)  # our own generated file, in a test
    assert namespace["law"](1.0, 1.0, 2.0, 3.0) == pytest.approx(1.0 + 2.0 * 2.718281828459045 ** (-1 / 3))


def test_report_md_escapes_raw_html_of_names_and_descriptions(tiny):
    pytest.importorskip("matplotlib")
    from lawsearch.report.html import write_report

    _, md_path = write_report(tiny / "run", tiny / "tiny.yaml")
    text = md_path.read_text()
    assert "&lt;b&gt;raw HTML&lt;/b&gt; &amp; friends" in text
    assert "<b>raw HTML</b>" not in text


# ------------------------------------------------------------------ the LLM


def _llm_settings(fake, tmp_path: Path, **llm) -> SearchSettings:
    return SearchSettings(proposers=("library", "llm"), generations=2, seed=0, **FAST,
                          llm={"model": "fake", "base_url": fake.base_url, "cache_dir": str(tmp_path / "cache"),
                               "retries": 0, "concurrent_calls": 1, **llm})


def test_when_every_llm_call_fails_law_json_still_reports_the_llm(fake_llm, tmp_path):  # noqa: F811
    def refuse(body):
        return {"status": 400, "message": "no response_format"} if "response_format" in body else {"status": 500}

    fake_llm.responder = refuse
    result = discover(synthetic_task(), _llm_settings(fake_llm, tmp_path), out=tmp_path / "run")
    llm = result.law_json["proposers"]["llm"]
    assert llm["engine"]["failed_calls"] >= 1 and llm["engine"]["api_calls"] == 0
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert all(isinstance(r["status"], str) for r in history)
    fallbacks = [r for r in history if r.get("event") == "llm_json_fallback"]
    assert fallbacks and all(r["status"] == "event" and r["http_status"] == "400" for r in fallbacks)


def test_llm_answers_and_the_answer_cache_are_capped(fake_llm, tmp_path):  # noqa: F811
    from lawsearch.proposers.llm import LLMProposer
    from test_llm import make_context

    proposer = LLMProposer({"model": "fake", "base_url": fake_llm.base_url, "cache_dir": str(tmp_path / "cache"),
                            "retries": 0, "max_answer_chars": 5000, "cache_max_mb": 0.03})
    fake_llm.push(laws_json("A/N**alpha + E") + " " * 10_000)
    assert proposer.propose(make_context(seed=0), 5) == []
    assert "more than llm.max_answer_chars (5000)" in proposer.stats["error_messages"][0]["error"]
    assert not list((tmp_path / "cache").glob("*/*.json"))  # a refused answer is never cached
    for seed in range(1, 12):
        fake_llm.push(laws_json(f"A/N**alpha + E + {seed}*D") + " " * 1000)
        proposer.propose(make_context(seed=seed), 5)
        assert sum(p.stat().st_size for p in (tmp_path / "cache").glob("*/*.json")) <= 30_000
    assert len(list((tmp_path / "cache").glob("*/*.json"))) >= 2  # the newest answers stay
    proposer.close()
