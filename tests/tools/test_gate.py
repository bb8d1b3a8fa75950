"""The compatibility gate's own logic (parsing, known-failures list)."""

import importlib.util
import os

import pytest

from conftest import REPO as ROOT


def load_gate():
    spec = importlib.util.spec_from_file_location("gate", os.path.join(ROOT, "compat", "gate.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gate = load_gate()

SAMPLE = """\
......s...F..E
======================================================================
ERROR: test_bad (tornado.test.web_test.SomeTest.test_bad)
----------------------------------------------------------------------
Traceback (most recent call last):
======================================================================
FAIL: test_worse (tornado.test.iostream_test.TestIOStream.test_worse)
----------------------------------------------------------------------
AssertionError
----------------------------------------------------------------------
Ran 1517 tests in 38.123s

FAILED (failures=1, errors=1, skipped=111)
"""

OLD_STYLE = "FAIL: test_x (tornado.test.gen_test.GenTest)\nRan 3 tests in 0.1s\nOK\n"


def test_parse_failures_and_counts():
    ran, skipped, failed = gate.parse_output(SAMPLE)
    assert ran == 1517
    assert skipped == 111
    assert failed == {
        "tornado.test.web_test.SomeTest.test_bad",
        "tornado.test.iostream_test.TestIOStream.test_worse",
    }


def test_parse_pre_311_ids():
    ran, skipped, failed = gate.parse_output(OLD_STYLE)
    assert (ran, skipped) == (3, 0)
    assert failed == {"tornado.test.gen_test.GenTest.test_x"}


def test_known_failures_file_is_valid_and_only_names_configs():
    known = gate.load_known()
    assert set(known) <= set(gate.CONFIGS)


def test_known_failures_rejects_malformed(tmp_path):
    bad = tmp_path / "known.txt"
    bad.write_text("full\n")
    with pytest.raises(SystemExit):
        gate.load_known(str(bad))
    bad.write_text("nosuchconfig tornado.test.x.Y.test_z  # why\n")
    with pytest.raises(SystemExit):
        gate.load_known(str(bad))
    good = tmp_path / "good.txt"
    good.write_text("# comment\nfull tornado.test.x.Y.test_z  # flaky under load\n")
    assert gate.load_known(str(good)) == {"full": {"tornado.test.x.Y.test_z": "flaky under load"}}


def fake_runs(monkeypatch, tmp_path, second_failed):
    """Replace run_config: the whole run fails one test; the rerun of its
    module fails `second_failed`.  Returns the calls made."""
    calls = []
    test = "tornado.test.simple_httpclient_test.SimpleHTTPSClientTestCase.test_request_timeout"
    log = tmp_path / "log"
    log.write_text("the whole run's log\n")

    def run_config(name, disable, log_dir, tests=(), tag=""):
        calls.append((name, tuple(tests)))
        if not tests:
            return 1, 1517, 111, {test}, str(log), 1.0
        failed = {test} if second_failed else set()
        return (1 if second_failed else 0), 139, 1, failed, str(log), 1.0

    monkeypatch.setattr(gate, "run_config", run_config)
    monkeypatch.setattr(gate, "CONFIGS", {"full": ""})
    monkeypatch.setattr(gate, "load_known", lambda: {})
    return calls


def test_a_failure_that_passes_in_its_module_rerun_is_flaky(monkeypatch, tmp_path, capsys):
    calls = fake_runs(monkeypatch, tmp_path, second_failed=False)
    assert gate.main(["--keep-logs", str(tmp_path)]) == 0
    assert calls == [("full", ()), ("full", ("tornado.test.simple_httpclient_test",))]
    out = capsys.readouterr().out
    assert "FLAKY (failed in the whole run, passed when its module ran again): tornado.test.simple_httpclient_test" in out
    assert "gate: 1406 passed, 0 failed, 111 skipped" in out


def test_a_failure_that_fails_again_fails_the_gate(monkeypatch, tmp_path, capsys):
    fake_runs(monkeypatch, tmp_path, second_failed=True)
    assert gate.main(["--keep-logs", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "NEW FAILURE: tornado.test.simple_httpclient_test" in out
    assert "FLAKY" not in out


def test_allowed_failure_does_not_fail_the_gate(monkeypatch, tmp_path, capsys):
    calls = fake_runs(monkeypatch, tmp_path, second_failed=True)
    real_load = load_gate().load_known
    monkeypatch.setattr(gate, "load_known", lambda path=None: {} if path is None else real_load(path))
    allow = tmp_path / "allow.txt"
    allow.write_text("full tornado.test.simple_httpclient_test.SimpleHTTPSClientTestCase"
                     ".test_request_timeout  # slow build\n")
    assert gate.main(["--keep-logs", str(tmp_path), "--allow", str(allow)]) == 0
    assert calls == [("full", ())]  # nothing to rerun
    out = capsys.readouterr().out
    assert "ALLOWED (failed; --allow: slow build): tornado.test.simple_httpclient_test" in out
    assert "NEW FAILURE" not in out
    # another failing test is still a failure
    allow.write_text("full tornado.test.web_test.X.test_y  # slow build\n")
    assert gate.main(["--keep-logs", str(tmp_path), "--allow", str(allow)]) == 1


def test_module_runs_only_those_modules(monkeypatch, tmp_path, capsys):
    calls = []

    def run_config(name, disable, log_dir, tests=(), tag=""):
        calls.append((name, tuple(tests)))
        return 0, 10, 0, set(), str(tmp_path / "log"), 1.0

    monkeypatch.setattr(gate, "run_config", run_config)
    monkeypatch.setattr(gate, "CONFIGS", {"full": ""})
    monkeypatch.setattr(gate, "load_known",
                        lambda: {"full": {"tornado.test.other_test.A.test_b": "why"}})
    assert gate.main(["--keep-logs", str(tmp_path), "--module", "tornado.test.web_test"]) == 0
    assert calls == [("full", ("tornado.test.web_test",))]
    out = capsys.readouterr().out
    assert "now passing" not in out  # other_test was not run
    assert "gate: 10 passed, 0 failed, 0 skipped" in out
