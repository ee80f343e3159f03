"""Task specs, data loading, splits, synthetic tables and the curated task files."""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lawsearch.bench import TASK_TO_SLDBENCH, sldbench_reference
from lawsearch.errors import DataError, FormulaError, TaskError
from lawsearch.formula import Law
from lawsearch.synthetic import generate
from lawsearch.task import (
    AUTO_VALIDATION_BOUNDS,
    TASKS_DIR,
    Task,
    DataNotFound,
    TaskData,
    curated_tasks,
    holdout_largest,
    load_spec,
    load_task,
    scale_score,
    task_from_frame,
)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LAWSEARCH_DATA") or REPO.parent / "shared" / "data")
needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "INDEX.md").is_file(),
    reason=f"curated data not found at {SHARED_DATA} (set LAWSEARCH_DATA to the shared data folder)",
)

BASIC_CSV = "a,b,y,split\n1,10,2.0,train\n2,20,3.0,train\n3,30,4.0,train\n4,40,5.0,test\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def spec_yaml(data: str = "{path: d.csv}", extra: str = "", inputs: str = "[a, b]", split: str = "{column: split}") -> str:
    return f"name: t\ndata: {data}\ninputs: {inputs}\ntarget: y\nsplit: {split}\n{extra}"


@pytest.fixture
def no_data_env(monkeypatch):
    monkeypatch.delenv("LAWSEARCH_DATA", raising=False)


# ---------------------------------------------------------------------- demo task


def test_demo_task_sizes_groups_and_split():
    task = load_task(TASKS_DIR / "demo.yaml")
    assert task.name == "demo"
    assert task.inputs == ("params", "tokens") and task.targets == ("loss",)
    assert task.group_column == "group"
    assert task.frame.shape == (900, 4)
    assert (len(task.train), len(task.test)) == (720, 180)
    assert task.train.group_names() == ["hoffmann", "high_E", "low_E"]
    for group in task.train.group_names():
        assert (task.train.groups == group).sum() == 240
        assert (task.test.groups == group).sum() == 60
    assert task.max_parameters == 6
    assert task.scale_columns == ("params", "tokens")
    assert [h.name for h in task.human_laws] == ["Hoffmann et al. 2022"]
    assert task.human_laws[0].reference == "arXiv:2203.15556"


def test_demo_test_rows_are_the_largest_compute_per_group():
    task = load_task(TASKS_DIR / "demo.yaml")
    for group in task.train.group_names():
        train = task.train.subset(task.train.groups == group)
        test = task.test.subset(task.test.groups == group)
        assert np.prod(test.X, axis=1).min() > np.prod(train.X, axis=1).max()


def test_demo_is_reproducible_and_follows_the_law():
    first, second = load_task(TASKS_DIR / "demo.yaml"), load_task(TASKS_DIR / "demo.yaml")
    pd.testing.assert_frame_equal(first.frame, second.frame)
    law = Law.parse("E + A/params**alpha + B/tokens**beta", ["params", "tokens"])
    low_e = first.frame[first.frame.group == "low_E"]
    theta = [{"E": 1.3, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}[p] for p in law.parameters]
    ratio = low_e.loss.to_numpy() / law.evaluate(low_e[["params", "tokens"]].to_numpy(), theta)
    assert 0.003 < np.std(ratio) < 0.03  # 1% multiplicative noise
    assert low_e.params.between(1e5, 1e11).all() and low_e.tokens.between(1e7, 1e13).all()


# ---------------------------------------------------------------------- spec errors


def test_missing_task_file(tmp_path):
    with pytest.raises(TaskError, match=r"task file '.*nope\.yaml' not found"):
        load_task(tmp_path / "nope.yaml")


def test_bad_yaml_names_line(tmp_path):
    path = write(tmp_path, "t.yaml", "name: t\ninputs: [a\ntarget: y\n")
    with pytest.raises(TaskError, match=re.escape(f"{path}: invalid YAML at line 3, column 7: expected ',' or ']'")):
        load_task(path)


def test_duplicate_yaml_key(tmp_path):
    path = write(tmp_path, "t.yaml", "name: t\ninputs: [a]\ninputs: [b]\n")
    with pytest.raises(TaskError, match=r"invalid YAML at line 3, column 1: duplicate key 'inputs'"):
        load_task(path)


@pytest.mark.parametrize("text", ["", "- 1\n"])
def test_yaml_must_be_a_mapping(tmp_path, text):
    path = write(tmp_path, "t.yaml", text)
    with pytest.raises(TaskError, match=r"t\.yaml: (the file is empty; )?expected a mapping with name, data, inputs"):
        load_task(path)


def test_unknown_field_names_field_and_file(tmp_path):
    path = write(tmp_path, "t.yaml", spec_yaml(extra="colour: red\n"))
    message = f"{path}: unknown field 'colour' (allowed: name, description, data, inputs, target, group, split, limits, monotone, pairs, human_laws)"
    with pytest.raises(TaskError, match=re.escape(message)):
        load_task(path)


def test_unknown_nested_field(tmp_path):
    path = write(tmp_path, "t.yaml", spec_yaml(split="{colum: split}"))
    with pytest.raises(TaskError, match=re.escape("unknown field 'split.colum' (allowed: column, by, largest, extrapolate)")):
        load_task(path)
    path = write(tmp_path, "u.yaml", spec_yaml(extra="human_laws: [{name: h, formula: a, ref: x}]\n"))
    with pytest.raises(TaskError, match=re.escape("unknown field 'human_laws.0.ref' (allowed: name, formula, reference, notes, bounds)")):
        load_task(path)


def test_missing_required_fields(tmp_path):
    path = write(tmp_path, "t.yaml", "name: t\ndata: {path: d.csv}\ntarget: y\n")
    with pytest.raises(TaskError, match=re.escape(f"{path}: missing required field 'inputs'")):
        load_task(path)
    path = write(tmp_path, "u.yaml", "name: t\ninputs: [a]\ntarget: y\n")
    with pytest.raises(TaskError, match=re.escape(f"{path}: missing required field 'data'")):
        load_task(path)


def test_invalid_values(tmp_path):
    path = write(tmp_path, "t.yaml", spec_yaml(split="{column: split, extrapolate: {}}", extra="limits: {max_parameters: 0}\n"))
    with pytest.raises(TaskError) as info:
        load_task(path)
    assert str(info.value) == (
        f"{path}: field 'split': give exactly one of 'column' or 'extrapolate'; "
        "field 'limits.max_parameters': Input should be greater than or equal to 1"
    )
    path = write(tmp_path, "u.yaml", spec_yaml(data="{}"))
    with pytest.raises(TaskError, match=re.escape("field 'data': give 'path', 'hub' or 'synthetic'")):
        load_task(path)
    path = write(tmp_path, "v.yaml", spec_yaml(split="{extrapolate: {test_fraction: 1.5}}"))
    with pytest.raises(TaskError, match=re.escape("field 'split.extrapolate.test_fraction': Input should be less than 1")):
        load_task(path)


def test_inconsistent_names(tmp_path):
    write(tmp_path, "d.csv", BASIC_CSV)
    cases = {
        "inputs: [a, y]": "'y' is both an input and a target",
        "inputs: [a, a]": "'inputs' lists 'a' twice",
    }
    for inputs, message in cases.items():
        path = write(tmp_path, "t.yaml", spec_yaml(inputs=inputs.split(": ")[1]))
        with pytest.raises(TaskError, match=re.escape(f"{path}: {message}")):
            load_task(path)
    path = write(tmp_path, "t.yaml", spec_yaml(split="{column: split, by: [b, y]}"))
    with pytest.raises(TaskError, match=re.escape("'split.by' column 'y' is not an input (inputs: a, b)")):
        load_task(path)
    path = write(tmp_path, "t.yaml", spec_yaml(split="{extrapolate: {by: [c]}}"))
    with pytest.raises(TaskError, match=re.escape("'split.extrapolate.by' column 'c' is not an input")):
        load_task(path)
    path = write(tmp_path, "t.yaml", spec_yaml(extra="group: a\n"))
    with pytest.raises(TaskError, match=re.escape("'group' column 'a' is also an input or target")):
        load_task(path)


def test_bad_human_law_fails_at_load_with_its_name(tmp_path):
    write(tmp_path, "d.csv", BASIC_CSV)
    laws = "human_laws:\n  - {name: Good, formula: 'c + k*a'}\n  - {name: Broken, formula: 'c + foo(a)'}\n"
    path = write(tmp_path, "t.yaml", spec_yaml(extra=laws))
    with pytest.raises(TaskError, match=re.escape(f"{path}: human law 'Broken': unknown function 'foo'")):
        load_task(path)


def test_human_law_bounds_are_checked_at_load(tmp_path):
    write(tmp_path, "d.csv", BASIC_CSV)
    law = "human_laws:\n  - {name: L, formula: 'c + k*a', bounds: {%s}}\n"
    path = write(tmp_path, "t.yaml", spec_yaml(extra=law % "m: [0, 1]"))
    with pytest.raises(TaskError, match=re.escape(f"{path}: human law 'L': 'bounds' names 'm', which is not a "
                                                  "parameter of its formula (parameters: c, k)")):
        load_task(path)
    path = write(tmp_path, "t.yaml", spec_yaml(extra=law % "k: [2, 1]"))
    with pytest.raises(TaskError, match=re.escape("bounds of 'k' must have low < high, got [2, 1]")):
        load_task(path)
    path = write(tmp_path, "t.yaml", spec_yaml(extra=law % "k: [0, .inf]"))
    task = load_task(path)
    assert task.fit_options(task.parse_law("k*a + c")).bounds == {"k": (0.0, math.inf)}  # same law, other text
    assert task.fit_options(task.parse_law("c + k*b")) is None


def test_bad_human_law_is_reported_before_missing_data(tmp_path, no_data_env):
    laws = "human_laws:\n  - {name: Broken, formula: 'a +* b'}\n"
    path = write(tmp_path, "t.yaml", spec_yaml(extra=laws))
    with pytest.raises(TaskError, match="human law 'Broken': cannot parse formula"):
        load_task(path)


def test_human_law_domain_checked_at_load(tmp_path):
    write(tmp_path, "d.csv", "a,b,y,split\n1,10,2,train\n0,20,3,train\n3,30,4,test\n")
    path = write(tmp_path, "t.yaml", spec_yaml(extra="human_laws:\n  - {name: L, formula: 'k*log(a) + b'}\n"))
    message = f"{path}: human law 'L': law 'b + k*log(a)' needs a > 0 (it is inside a log or a fractional power), but row 2 has a = 0"
    with pytest.raises(DataError, match=re.escape(message)):
        load_task(path)


# ---------------------------------------------------------------------- table errors


def table_error(tmp_path, csv: str, **kwargs) -> str:
    write(tmp_path, "d.csv", csv)
    path = write(tmp_path, "t.yaml", spec_yaml(**kwargs))
    with pytest.raises(DataError) as info:
        load_task(path)
    return str(info.value)


def test_missing_column_lists_available(tmp_path):
    message = table_error(tmp_path, "a,y,split\n1,2,train\n2,3,test\n")
    assert message == f"{tmp_path / 'd.csv'}: column 'b' (from 'inputs') is not in the table; available: a, y, split"
    message = table_error(tmp_path, "a,b,y\n1,2,3\n2,3,4\n")
    assert message.endswith("column 'split' (from 'split.column') is not in the table; available: a, b, y")


def test_non_numeric_column_names_row_and_value(tmp_path):
    message = table_error(tmp_path, "a,b,y,split\n1,10,2,train\n2,x20,3,train\n3,30,4,test\n")
    assert message == f"{tmp_path / 'd.csv'}: column 'b' is not numeric: row 2 has 'x20'"


def test_missing_and_infinite_values(tmp_path):
    message = table_error(tmp_path, "a,b,y,split\n1,10,2,train\n2,20,,train\n3,30,4,test\n")
    assert message.endswith("column 'y' has a missing value at row 2; inputs and targets must be finite")
    message = table_error(tmp_path, "a,b,y,split\n1,10,2,train\n2,20,3,train\ninf,30,4,test\n")
    assert message.endswith("column 'a' has the value inf at row 3; inputs and targets must be finite")


def test_split_values_must_be_train_or_test(tmp_path):
    message = table_error(tmp_path, "a,b,y,split\n1,10,2,train\n2,20,3,val\n3,30,4,test\n")
    assert message.endswith("split column 'split' has 'val' at row 2; expected 'train' or 'test'")


def test_group_without_test_rows(tmp_path):
    csv = "g,a,b,y,split\nx,1,10,2,train\nx,2,20,3,test\nz,3,30,4,train\nz,4,40,5,train\n"
    message = table_error(tmp_path, csv, extra="group: g\n")
    assert message == f"{tmp_path / 'd.csv'}: group 'z' has no test rows"
    csv = "g,a,b,y,split\nx,1,10,2,train\nx,2,20,3,test\nz,3,30,4,test\n"
    assert table_error(tmp_path, csv, extra="group: g\n").endswith("group 'z' has no training rows")


def test_one_row_group_cannot_be_extrapolated(tmp_path):
    csv = "g,a,b,y\nx,1,10,2\nx,2,20,3\nz,3,30,4\n"
    message = table_error(tmp_path, csv, extra="group: g\n", split="{extrapolate: {}}")
    assert message.endswith("group 'z' has no test rows (a group needs at least 2 rows to be split)")


def test_missing_group_label(tmp_path):
    csv = "g,a,b,y,split\nx,1,10,2,train\n,2,20,3,test\n"
    assert table_error(tmp_path, csv, extra="group: g\n").endswith("column 'g' has a missing value at row 2")


def test_unsupported_format(tmp_path):
    write(tmp_path, "d.txt", BASIC_CSV)
    path = write(tmp_path, "t.yaml", spec_yaml(data="{path: d.txt}"))
    with pytest.raises(DataError, match=re.escape("unsupported data format '.txt' (use .csv, .parquet, .jsonl)")):
        load_task(path)


# ---------------------------------------------------------------------- data sources


def test_data_path_resolves_next_to_yaml_first(tmp_path, monkeypatch):
    write(tmp_path / "spec", "d.csv", BASIC_CSV)
    write(tmp_path / "store", "d.csv", BASIC_CSV.replace("2.0", "9.0"))
    path = write(tmp_path / "spec", "t.yaml", spec_yaml())
    monkeypatch.setenv("LAWSEARCH_DATA", str(tmp_path / "store"))
    task = load_task(path)
    assert task.train.Y[0, 0] == 2.0
    assert task.source == str(tmp_path / "spec" / "d.csv")
    assert task.path == path


def test_data_path_falls_back_to_env(tmp_path, monkeypatch):
    write(tmp_path / "store" / "sub", "d.csv", BASIC_CSV)
    path = write(tmp_path / "spec", "t.yaml", spec_yaml(data="{path: sub/d.csv}"))
    monkeypatch.setenv("LAWSEARCH_DATA", str(tmp_path / "store"))
    task = load_task(path)
    assert (len(task.train), len(task.test)) == (3, 1)
    assert task.source == str(tmp_path / "store" / "sub" / "d.csv")


def test_missing_data_file_says_where_it_looked(tmp_path, no_data_env):
    path = write(tmp_path, "t.yaml", spec_yaml(data="{path: sub/d.csv}"))
    with pytest.raises(DataNotFound) as info:
        load_task(path)
    assert str(info.value) == (
        f"{path}: data file 'sub/d.csv' not found (looked in {tmp_path / 'sub' / 'd.csv'}; "
        "LAWSEARCH_DATA is not set); set LAWSEARCH_DATA to the folder that holds it, "
        "e.g. export LAWSEARCH_DATA=/path/to/data"
    )
    assert isinstance(info.value, DataError)


def test_missing_data_file_with_env_set(tmp_path, monkeypatch):
    monkeypatch.setenv("LAWSEARCH_DATA", str(tmp_path / "store"))
    path = write(tmp_path, "t.yaml", spec_yaml())
    places = f"{tmp_path / 'd.csv'}, {tmp_path / 'store' / 'd.csv'}"
    with pytest.raises(DataNotFound, match=re.escape(f"not found (looked in {places}); set LAWSEARCH_DATA")):
        load_task(path)


def test_hub_fallback_without_datasets(tmp_path, monkeypatch, no_data_env):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    path = write(tmp_path, "t.yaml", spec_yaml(data="{path: d.csv, hub: {repo: org/sets, config: c}}"))
    with pytest.raises(DataNotFound) as info:
        load_task(path)
    message = str(info.value)
    assert "data file 'd.csv' not found" in message
    assert message.endswith("; hub fallback failed: the 'datasets' package is not installed (pip install 'lawsearch[hub]')")
    with pytest.raises(DataNotFound, match=r"hub copy org/sets not tried$"):
        load_task(path, use_hub=False)


def test_jsonl_table(tmp_path):
    frame = pd.read_csv(pd.io.common.StringIO(BASIC_CSV))
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    task = load_task(write(tmp_path, "t.yaml", spec_yaml(data="{path: d.jsonl}")))
    np.testing.assert_array_equal(task.train.X, [[1, 10], [2, 20], [3, 30]])
    np.testing.assert_array_equal(task.test.rows, [4])
    write(tmp_path, "e.jsonl", '{"a": 1, "b": 2, "y": 3, "split": "train"}\n{"a": "n/a", "b": 2, "y": 3, "split": "test"}\n')
    with pytest.raises(DataError, match=re.escape("e.jsonl: column 'a' is not numeric: row 2 has 'n/a'")):
        load_task(write(tmp_path, "u.yaml", spec_yaml(data="{path: e.jsonl}")))
    write(tmp_path, "f.jsonl", '{"a": 1, "b": 2, "y": 3, "split": "train"}\n\n{"a": 1,\n')
    with pytest.raises(DataError, match=re.escape("f.jsonl: line 3 is not valid JSON: Expecting property name")):
        load_task(write(tmp_path, "v.yaml", spec_yaml(data="{path: f.jsonl}")))


def test_parquet_table(tmp_path):
    pytest.importorskip("pyarrow")
    pd.read_csv(pd.io.common.StringIO(BASIC_CSV)).to_parquet(tmp_path / "d.parquet")
    task = load_task(write(tmp_path, "t.yaml", spec_yaml(data="{path: d.parquet}")))
    assert (len(task.train), len(task.test)) == (3, 1)


def test_synthetic_spec_errors(tmp_path):
    data = "{synthetic: {law: 'c*a', parameters: {k: 1}, inputs: {a: [1, 2], b: [1, 2]}}}"
    path = write(tmp_path, "t.yaml", spec_yaml(data=data, split="{extrapolate: {}}"))
    with pytest.raises(TaskError, match=re.escape(f"{path}: data.synthetic: synthetic parameters: 'k' not parameter(s)")):
        load_task(path)
    data = "{synthetic: {law: 'c*a', parameters: {c: 1}, inputs: {a: [1, 2]}}, path: d.csv}"
    path = write(tmp_path, "u.yaml", spec_yaml(data=data))
    with pytest.raises(TaskError, match=re.escape("field 'data': give either 'synthetic' or 'path'/'hub', not both")):
        load_task(path)


# ---------------------------------------------------------------------- holdout_largest


def held(scores, groups=None, fraction=0.2, **kwargs) -> list[int]:
    n = len(scores) if scores is not None else len(groups)
    groups = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    return np.flatnonzero(holdout_largest(scores, groups, fraction, **kwargs)).tolist()


def test_holdout_takes_largest_scores():
    assert held([5.0, 1, 4, 2, 3]) == [0]
    assert held([5.0, 1, 4, 2, 3], fraction=0.4) == [0, 2]


def test_holdout_fraction_rounding():
    assert len(held(np.arange(10.0))) == 2  # 0.2 * 10 = 2
    assert len(held(np.arange(11.0))) == 3  # ceil(2.2)
    assert len(held(np.arange(30.0), fraction=0.1)) == 3  # 0.1 * 30 is 3.0000000000000004 in floats
    assert len(held(np.arange(3.0), fraction=0.01)) == 1  # at least one
    assert held([1.0, 2.0], fraction=0.99) == [1]  # never the whole group


def test_holdout_ties_go_together():
    assert held([1.0, 3, 2, 3, 3]) == [1, 3, 4]


def test_holdout_ties_broken_by_row_order_when_nothing_would_remain():
    assert held([2.0, 2, 2, 2]) == [0]
    assert held([1.0, 1, 1, 1, 2], fraction=0.5) == [0, 1, 4]


def test_scale_score_any_axis_takes_the_top_rank_of_any_column():
    columns = np.array([[1.0, 100.0], [10.0, 5.0], [3.0, 3.0], [2.0, 60.0]])
    # ranks in column 0: 1/4, 4/4, 3/4, 2/4; in column 1: 4/4, 2/4, 1/4, 3/4
    np.testing.assert_allclose(scale_score(columns, largest="any"), [1.0, 1.0, 0.75, 0.75])
    assert held(scale_score(columns, largest="any"), fraction=0.25) == [0, 1]  # tied at the top: both
    assert held(scale_score(columns), fraction=0.25) == [3]  # the product: 2 * 60 is the largest
    with pytest.raises(ValueError, match="'product' or 'any'"):
        scale_score(columns, largest="max")


def test_split_largest_any_holds_out_the_top_of_each_axis():
    frame = pd.DataFrame({"n": [1.0, 2, 3, 4, 5, 6, 7, 100], "d": [1.0, 2, 3, 4, 5, 6, 100, 7],
                          "y": np.arange(8.0) + 1})
    task = task_from_frame(frame, name="t", inputs=["n", "d"], target="y",
                           split={"extrapolate": {"by": ["n", "d"], "largest": "any", "test_fraction": 0.25}})
    assert sorted(task.test.X[:, 0].tolist()) == [7.0, 100.0]  # the largest n and the largest d
    fit, val = task.validation_split(0.2)
    assert val.X[:, 0].tolist() == [5.0, 6.0]  # ceil(0.2 * 6) train rows, the top ones on both axes


def test_split_rule_and_monotone_errors():
    frame = pd.DataFrame({"n": [1.0, 2, 3, 4], "y": [4.0, 3, 2, 1]})
    with pytest.raises(TaskError, match="put 'by' and 'largest' inside it"):
        task_from_frame(frame, name="t", inputs=["n"], target="y",
                        split={"extrapolate": {"by": ["n"]}, "largest": "any"})
    with pytest.raises(TaskError, match="largest"):
        task_from_frame(frame, name="t", inputs=["n"], target="y", split={"extrapolate": {"largest": "top"}})
    with pytest.raises(TaskError, match="'monotone' names 'm', which is not an input"):
        task_from_frame(frame, name="t", inputs=["n"], target="y", monotone={"m": "decreasing"})
    with pytest.raises(TaskError, match="monotone"):
        task_from_frame(frame, name="t", inputs=["n"], target="y", monotone={"n": "down"})
    assert task_from_frame(frame, name="t", inputs=["n"], target="y", monotone={"n": "decreasing"}).monotone == {
        "n": "decreasing"}


def test_holdout_per_group_and_one_row_groups():
    groups = ["a", "b", "a", "c", "b", "a", "a", "a"]
    scores = [1.0, 7, 2, 9, 8, 3, 4, 5]
    assert held(scores, groups) == [4, 7]  # a: 5 rows -> 1; b: 2 rows -> 1; c: 1 row -> none


def test_scale_score_uses_logs_of_positive_columns_only():
    columns = np.array([[1.0, -1.0], [10.0, 0.0], [100.0, 5.0]])
    np.testing.assert_allclose(scale_score(columns), [-1.0, np.log(10), np.log(100) + 5])
    np.testing.assert_allclose(scale_score(columns, log=[False, False]), [0.0, 10.0, 105.0])
    # the product of positive columns decides: 100 > 50 > 9
    assert held(np.array([[1.0, 100.0], [10.0, 5.0], [3.0, 3.0]]), fraction=0.3) == [0]
    # a column with negative values enters as is: -1 + log(1) < 0 + log(10) < 5 + log(100)
    assert held(columns, fraction=0.3) == [2]


def test_holdout_without_scale_is_seeded_random():
    groups = np.repeat(["a", "b"], 10)
    first = held(None, groups, seed=3)
    assert first == held(None, groups, seed=3)
    assert len(first) == 4 and sum(i < 10 for i in first) == 2
    assert held(np.zeros((20, 0)), groups, seed=3) == first
    assert any(held(None, groups, seed=s) != first for s in range(4, 10))


def test_holdout_rejects_bad_arguments():
    with pytest.raises(ValueError, match="holdout fraction must be in"):
        holdout_largest([1.0, 2.0], [0, 0], 1.0)
    with pytest.raises(ValueError, match="scores have shape"):
        holdout_largest([1.0, 2.0], [0, 0, 0], 0.5)


# ---------------------------------------------------------------------- validation split and domains


def frame_task(**kwargs):
    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame({
        "g": np.repeat(["p", "q"], n // 2),
        "x": rng.uniform(1, 100, n),
        "z": rng.uniform(-1, 1, n),
        "split": np.where(np.arange(n) % 5 == 0, "test", "train"),
    })
    frame["y"] = frame.x * 2 + frame.z
    return task_from_frame(frame, name="f", inputs=["x", "z"], target="y", group="g", **kwargs)


@pytest.mark.parametrize("split", [{"column": "split"}, {"column": "split", "by": ["x"]}, {"column": "split", "by": []}])
def test_validation_split_never_contains_test_rows(split):
    task = frame_task(split=split)
    search, validation = task.validation_split(0.25, seed=1)
    assert set(validation.rows).isdisjoint(task.test.rows)
    assert sorted([*search.rows, *validation.rows]) == sorted(task.train.rows)
    assert len(validation) == 8  # 16 train rows per group, 4 held out each


def test_validation_rows_are_the_largest_train_rows():
    task = frame_task(split={"column": "split", "by": ["x"]})
    assert task.scale_columns == ("x",)
    search, validation = task.validation_split(0.25)
    for group in ("p", "q"):
        assert validation.column("x")[validation.groups == group].min() > search.column("x")[search.groups == group].max()


def test_validation_split_of_demo():
    task = load_task(TASKS_DIR / "demo.yaml")
    search, validation = task.validation_split()
    assert (len(search), len(validation)) == (576, 144)  # 240 train rows per group: 48 held out
    assert set(validation.rows).isdisjoint(task.test.rows)


def _sft_like(test_every: int, groups: int = 2, rows: int = 13) -> Task:
    """Groups of ``rows`` rows on a doubling axis, every ``test_every``-th largest row a test row."""
    x = np.tile(200.0 * 2.0 ** np.arange(rows), groups)
    rank = np.tile(np.arange(rows)[::-1], groups)  # 0 for the largest row of each group
    frame = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(groups)], rows), "x": x, "y": 1 + 100 / x,
                          "split": np.where(rank % test_every == 0, "test", "train")})
    return task_from_frame(frame, name="sftlike", inputs=["x"], target="y", group="g",
                           split={"column": "split", "by": ["x"]})


def test_auto_validation_fraction_mirrors_the_test_split():
    task = _sft_like(test_every=13)  # 12 train rows and 1 test row per group, as in sft
    assert task.test_share == pytest.approx(1 / 13)
    assert task.validation_fraction() == task.validation_fraction("auto") == pytest.approx(1 / 13)
    search, validation = task.validation_split(task.validation_fraction())
    assert validation.column("x").tolist() == [200.0 * 2**11] * 2  # one row per group: the largest train row
    assert task.validation_fraction(0.5) == 0.5  # a number is used as given
    assert _sft_like(test_every=2).validation_fraction() == AUTO_VALIDATION_BOUNDS[1]  # 7 of 13: clipped
    assert _sft_like(test_every=100, rows=40).validation_fraction() == AUTO_VALIDATION_BOUNDS[0]  # 1 of 40


def test_task_from_frame_defaults():
    frame = pd.DataFrame({"x": np.arange(1.0, 11.0), "y": np.arange(10.0)})
    task = task_from_frame(frame, name="plain", inputs="x", target="y")
    assert task.train.group_names() == ["all"] and task.group_column is None
    assert task.scale_columns == ("x",)
    np.testing.assert_array_equal(task.test.rows, [9, 10])
    assert task.path is None and task.spec.data is None
    with pytest.raises(TaskError, match=re.escape("task 'plain': unknown field 'split.colum'")):
        task_from_frame(frame, name="plain", inputs="x", target="y", split={"colum": "s"})


def test_task_data_helpers():
    data = TaskData(("x",), ("y",), np.arange(4.0)[:, None], np.ones((4, 1)), np.array(["b", "a", "b", "c"]),
                    np.arange(1, 5))
    assert len(data) == 4 and data.group_names() == ["b", "a", "c"]
    sub = data.subset(data.groups == "b")
    np.testing.assert_array_equal(sub.rows, [1, 3])
    np.testing.assert_array_equal(sub.column("x"), [0.0, 2.0])


def test_check_law_domain_messages():
    frame = pd.DataFrame({"x": [1.0, 2.0, 0.0, 4.0, -1.0], "w": [1.0, 2, 3, 4, 5], "y": [1.0, 2, 3, 4, 5]})
    task = task_from_frame(frame, name="dom", inputs=["x", "w"], target="y", split={"extrapolate": {"by": ["w"]}})
    with pytest.raises(DataError) as info:
        task.check_law_domain("A*log(x)")
    assert str(info.value) == (
        "task 'dom': law 'A*log(x)' needs x > 0 (it is inside a log or a fractional power), but row 3 has x = 0"
    )
    with pytest.raises(DataError, match=re.escape("law 'B*x**alpha' needs x > 0")):
        task.check_law_domain(Law.parse("B*x**alpha", ["x", "w"]))
    task.check_law_domain("a + b*x**2 + c*log(w)")  # integer powers of x are fine


def test_law_parse_uses_task_names():
    task = frame_task(split={"column": "split"})
    law = task.parse_law("y = a*x + b*z")
    assert law.parameters == ("a", "b") and law.variables == ("x", "z")
    with pytest.raises(FormulaError):
        task.parse_law("import os")


# ---------------------------------------------------------------------- synthetic tables


def test_generate_is_deterministic_and_exact_without_noise():
    kwargs = dict(law="A*x**alpha", parameters={"A": 2.0, "alpha": 0.5}, inputs={"x": (1.0, 100.0)}, rows=5)
    frame = generate(**kwargs, seed=7)
    pd.testing.assert_frame_equal(frame, generate(**kwargs, seed=7))
    assert list(frame.columns) == ["x", "y"]
    np.testing.assert_allclose(frame.y, 2.0 * np.sqrt(frame.x))
    assert frame.x.between(1, 100).all()
    assert not generate(**kwargs, seed=8).equals(frame)


def test_generate_groups_override_parameters():
    frame = generate("c + 0*x", {"c": 1.0}, {"x": (1.0, 2.0)}, rows=3, groups={"one": {}, "two": {"c": 2.0}},
                     target="loss")
    assert list(frame.columns) == ["group", "x", "loss"]
    assert frame.groupby("group").loss.mean().to_dict() == {"one": 1.0, "two": 2.0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parameters": {}}, "needs values for parameter(s): A"),
        ({"parameters": {"A": 1.0, "B": 2.0}}, "synthetic parameters: 'B' not parameter(s) of the law (its parameters: A)"),
        ({"inputs": {"x": (0.0, 1.0)}}, "synthetic input 'x': range [0.0, 1.0] must satisfy 0 < low <= high"),
        ({"groups": {"g": {"x": 1.0}}}, "synthetic group 'g': 'x' not parameter(s) of the law"),
        ({"law": "A*log(x - 5)"}, "synthetic law 'A*log(x - 5)' gives non-finite values"),
        ({"rows": 0}, "synthetic data needs rows >= 1, got 0"),
    ],
)
def test_generate_errors(kwargs, message):
    args = {"law": "A*x", "parameters": {"A": 1.0}, "inputs": {"x": (1.0, 2.0)}, **kwargs}
    with pytest.raises(TaskError, match=re.escape(message)):
        generate(**args)


# ---------------------------------------------------------------------- curated tasks


def index_counts() -> dict[str, tuple[int, int]]:
    """(train, test) per data folder, from the shared data INDEX.md."""
    text = (SHARED_DATA / "INDEX.md").read_text()
    return {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"^\| (\w+) \| \d+ \((\d+)/(\d+)\)", text, re.M)}


CURATED = ["chinchilla", "data_constrained", "domain_mixture", "easy_question", "lr_bsz", "moe", "parallel", "sft",
           "sparsity", "vocab"]


def test_curated_files_are_all_there():
    assert sorted(p.stem for p in TASKS_DIR.glob("*.yaml")) == sorted([*CURATED, "demo"])
    for name in CURATED:
        spec = load_spec(TASKS_DIR / f"{name}.yaml")
        assert spec.name == name and spec.human_laws and spec.limits.max_parameters
        assert spec.data.path.endswith("_scaling_law/data.csv")


def test_curated_sldbench_tasks_keep_sldbench_parameter_limits():
    """Same protocol as SLDBench: a law may have no more fitted parameters than its task prompt allows."""
    reference = sldbench_reference()
    stated = {task: row["max_parameters"] for task, row in reference.items()}
    assert set(stated) == set(TASK_TO_SLDBENCH.values())
    for name, sldbench_name in TASK_TO_SLDBENCH.items():
        limit = load_spec(TASKS_DIR / f"{name}.yaml").limits.max_parameters
        assert limit == int(reference[sldbench_name]["lawsearch_max_parameters"]), name
        if stated[sldbench_name]:
            assert limit == int(stated[sldbench_name]), name
    assert stated["sft"] == "4" and stated["lr_bsz"] == ""
    # SLDBench sets none for lr_bsz, and its agents' best laws there have 15-30 parameters
    assert load_spec(TASKS_DIR / "lr_bsz.yaml").limits.max_parameters >= 20


@needs_data
@pytest.mark.parametrize("name", CURATED)
def test_curated_task_loads_with_index_counts(name, monkeypatch):
    monkeypatch.setenv("LAWSEARCH_DATA", str(SHARED_DATA))
    task = load_task(TASKS_DIR / f"{name}.yaml", use_hub=False)
    folder = task.spec.data.path.split("/")[0]
    assert (len(task.train), len(task.test)) == index_counts()[folder]
    for law in task.human_laws:
        assert task.parse_law(law.formula).n_parameters <= task.max_parameters
    search, validation = task.validation_split()
    assert len(validation) > 0 and set(validation.rows).isdisjoint(task.test.rows)


@needs_data
def test_curated_tasks_listing(monkeypatch):
    monkeypatch.setenv("LAWSEARCH_DATA", str(SHARED_DATA))
    listing = {c.name: c for c in curated_tasks()}
    assert sorted(listing) == sorted([*CURATED, "demo"])
    assert all(c.available for c in listing.values())
    assert (listing["sft"].train_rows, listing["sft"].test_rows, len(listing["sft"].groups)) == (504, 42, 42)


def test_curated_tasks_without_data(tmp_path, no_data_env):
    listing = {c.name: c for c in curated_tasks()}
    assert listing["demo"].available and (listing["demo"].train_rows, listing["demo"].test_rows) == (720, 180)
    assert listing["chinchilla"].reason == "data not found: set LAWSEARCH_DATA"
    assert listing["vocab"].reason == "data not found: set LAWSEARCH_DATA, or go online for the hub copy"
    assert not listing["vocab"].available and listing["vocab"].train_rows is None
    write(tmp_path, "broken.yaml", "name: [\n")
    (bad,) = curated_tasks(tmp_path)
    assert (bad.name, bad.available) == ("broken", False) and "invalid YAML" in bad.reason
