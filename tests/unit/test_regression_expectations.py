"""The expectations file is input like any other: validated with one-line errors; per-CPU-vendor values of the exact
metrics are compared on that vendor only, and recorded without touching bands or other vendors' values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trex_bench.cli import main
from trex_bench.regression import expectations as ex
from trex_bench.regression.checks import Check, Measured, RegressionError

GOOD = {
    "schema": 1,
    "metrics": {
        "c.hash": {"expected": "abc", "tolerance": "exact"},
        "c.loss": {"expected": 1.0, "tolerance": "rel"},
        "c.score": {"expected": 0.5, "tolerance": "band", "band": [0.4, 0.6]},
    },
}


def _write(path: Path, doc: object) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _entry(**kw) -> dict:
    return {"schema": 1, "metrics": {"c.m": kw}}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "not a readable JSON"),
        ([1, 2], "expected a JSON object, got list"),
        ({"schema": 2, "metrics": {}}, "schema 2"),
        ({"schema": 1, "metrics": []}, "'metrics' must be an object"),
        ('{"schema": 1, "metrics": {"c.m": {"expected": NaN, "tolerance": "rel"}}}', "NaN is not a number"),
        (_entry(expected=1.0, tolerance="bogus"), "tolerance must be one of exact, rel, band"),
        (_entry(expected="x", tolerance="rel"), "'rel' tolerance needs a number"),
        (_entry(expected=[1], tolerance="exact"), "expected must be a string or a number"),
        (_entry(expected=True, tolerance="exact"), "expected must be a string or a number"),
        (_entry(expected=1.0, tolerance="band", band=[2, 1]), "band must be"),
        (_entry(expected=1.0, tolerance="band"), "band must be"),
        (_entry(expected=1.0, tolerance="exact", by_cpu={"AuthenticAMD": {"expected": None}}), "by_cpu"),
        ({"schema": 1, "metrics": {"c.m": "abc"}}, "an entry must be an object"),
    ],
)
def test_a_bad_expectations_file_is_one_line_naming_the_entry(tmp_path, doc, message):
    path = _write(tmp_path / "regression.json", doc)
    with pytest.raises(RegressionError, match=message) as err:
        ex.load_expectations(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_missing_file_is_an_error_for_check_and_empty_for_update(tmp_path, capsys):
    with pytest.raises(RegressionError, match="no expectations file"):
        ex.load_expectations(tmp_path / "nowhere.json")
    assert ex.load_expectations(tmp_path / "nowhere.json", missing_ok=True)["metrics"] == {}
    assert main(["regression", "check", "--only", "tables", "--expectations", str(tmp_path / "nowhere.json")]) == 2
    assert "no expectations file" in capsys.readouterr().err


def test_a_good_file_loads():
    assert ex.load_expectations(_write_tmp(GOOD))["metrics"]["c.score"]["band"] == [0.4, 0.6]


def _write_tmp(doc: dict) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "regression.json"
    return _write(path, doc)


def test_a_vendors_own_value_is_the_expectation_on_that_vendor_only():
    entry = {"expected": "intel-hash", "tolerance": "exact", "by_cpu": {"AuthenticAMD": {"expected": "amd-hash"}}}
    doc = {"schema": 1, "metrics": {"c.hash": entry}}
    amd = ex.compare_all(doc, {"c": {"hash": Measured("amd-hash")}}, vendor="AuthenticAMD")
    intel = ex.compare_all(doc, {"c": {"hash": Measured("amd-hash")}}, vendor="GenuineIntel")
    assert amd[0].ok and not intel[0].ok and intel[0].expected == "intel-hash"


def test_record_for_cpu_keeps_bands_and_other_vendors(monkeypatch, tmp_path):
    values = {"hash": Measured("amd-hash"), "loss": Measured(1.0, "rel"), "score": Measured(0.9, "band")}
    check = Check("c", "a fake check", lambda root, seed: values)
    monkeypatch.setattr(ex, "select_checks", lambda names: (check,))
    monkeypatch.setattr(ex, "cpu_vendor", lambda: "AuthenticAMD")
    old = json.loads(json.dumps(GOOD))
    old["metrics"]["c.hash"]["by_cpu"] = {"GenuineIntel": {"expected": "intel-2"}}
    doc, changed = ex.record_for_cpu(tmp_path, old, "AMD rounds differently", "trex-bench regression update")
    assert changed == ["c.hash"]  # the rel loss matches the common value, the band is not per CPU
    m = doc["metrics"]
    assert m["c.hash"]["expected"] == "abc" and m["c.hash"]["by_cpu"]["AuthenticAMD"]["expected"] == "amd-hash"
    assert m["c.hash"]["by_cpu"]["GenuineIntel"] == {"expected": "intel-2"}
    assert "by_cpu" not in m["c.loss"] and m["c.score"] == GOOD["metrics"]["c.score"]
    values["hash"] = Measured("abc")  # back to the common value: the vendor's own entry goes
    doc, changed = ex.record_for_cpu(tmp_path, doc, "fixed", "cmd")
    assert changed == ["c.hash"] and "AuthenticAMD" not in doc["metrics"]["c.hash"]["by_cpu"]
    with pytest.raises(RegressionError, match="reason"):
        ex.record_for_cpu(tmp_path, doc, " ", "cmd")


def test_record_for_cpu_refuses_a_gap_larger_than_rounding(monkeypatch, tmp_path):
    """Another vendor's value is its rounding only when close: a rel metric 1 % off is a change, not recorded."""
    values = {"hash": Measured("abc"), "loss": Measured(1.0, "rel"), "score": Measured(0.9, "band")}
    monkeypatch.setattr(ex, "select_checks", lambda names: (Check("c", "a fake check", lambda root, seed: values),))
    monkeypatch.setattr(ex, "cpu_vendor", lambda: "AuthenticAMD")
    expected = GOOD["metrics"]["c.loss"]["expected"]
    values["loss"] = Measured(expected * (1 + 1e-4), "rel")  # rounding: recorded as AMD's own
    doc, changed = ex.record_for_cpu(tmp_path, GOOD, "AMD rounds differently", "cmd")
    assert changed == ["c.loss"]
    values["loss"] = Measured(expected * 1.01, "rel")
    with pytest.raises(RegressionError, match=r"c\.loss: .* further from .* than a CPU vendor's rounding"):
        ex.record_for_cpu(tmp_path, GOOD, "AMD rounds differently", "cmd")
