"""Tests for the benchmark harness (benchmarks/harness.py, run.py, wsmask.py,
stream_echo.py).

Most tests need no server.  The server tests start the real hello app (no wrk
needed); the end-to-end test runs wrk for ~1 s per implementation and is
skipped when wrk is absent.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO as ROOT
from conftest import run_python

BENCH = os.path.join(ROOT, "benchmarks")


def _load(name, filename):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, filename))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


H = _load("tc_bench_harness", "harness.py")

have_wrk = shutil.which("wrk") is not None and shutil.which("taskset") is not None
needs_wrk = pytest.mark.skipif(not have_wrk, reason="wrk/taskset not installed")


def server_env():
    """Environment for servers: make the tornado_c this test process would
    import importable from the servers' neutral working directory."""
    env = dict(os.environ)
    try:
        import tornado_c
    except ImportError:
        return env
    top = os.path.dirname(os.path.dirname(os.path.abspath(tornado_c.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (top, env.get("PYTHONPATH")) if p)
    return env


def tornado_c_importable():
    try:
        import tornado_c  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------
# wrk output

WRK_TEXT = textwrap.dedent("""\
    Running 1s test @ http://127.0.0.1:18777/
      1 threads and 2 connections
      Thread Stats   Avg      Stdev     Max   +/- Stdev
        Latency     2.58ms    2.16ms  11.28ms   82.73%
        Req/Sec     0.86k   356.37     1.27k    70.00%
      Latency Distribution
         50%    1.44ms
         75%    3.47ms
         90%    5.68ms
         99%    8.24ms
      860 requests in 1.00s, 395.57KB read
    Requests/sec:    859.20
    Transfer/sec:    395.20KB
    """)

WRK_JSON_LINE = (
    'WRK_JSON {"requests":860,"duration_us":1000933,"bytes":405060,"errors":{"connect":0,'
    '"read":0,"write":0,"status":0,"timeout":0},"latency_us":{"min":286.000,"max":11283.000,'
    '"mean":2582.661,"stdev":2162.121,"p50":1442.000,"p75":3474.000,"p90":5677.000,'
    '"p99":8245.000,"p99.9":11260.000}}')


def test_parse_wrk_json_line_among_text():
    data = H.parse_wrk_json(WRK_TEXT + WRK_JSON_LINE + "\n")
    assert data["requests"] == 860
    assert data["duration_us"] == 1000933
    assert data["latency_us"]["p50"] == 1442.0
    assert data["latency_us"]["p99"] == 8245.0
    assert data["errors"]["status"] == 0


def test_parse_wrk_json_missing_is_none():
    assert H.parse_wrk_json(WRK_TEXT) is None


def test_parse_wrk_json_malformed_raises():
    with pytest.raises(ValueError):
        H.parse_wrk_json("WRK_JSON {not json\n")


def test_summarize_prefers_lua_json():
    s = H.summarize_wrk(WRK_TEXT + WRK_JSON_LINE + "\n")
    assert s["source"] == "lua"
    assert s["requests_per_sec"] == pytest.approx(860 / 1.000933)


def test_parse_wrk_text_fallback():
    s = H.summarize_wrk(WRK_TEXT)
    assert s["source"] == "text"
    assert s["requests"] == 860
    assert s["duration_us"] == pytest.approx(1e6)
    assert s["requests_per_sec"] == pytest.approx(860.0)
    assert s["requests_per_sec_printed"] == 859.20
    lat = s["latency_us"]
    assert lat["p50"] == pytest.approx(1440.0)
    assert lat["p75"] == pytest.approx(3470.0)
    assert lat["p99"] == pytest.approx(8240.0)
    assert lat["mean"] == pytest.approx(2580.0)
    assert lat["max"] == pytest.approx(11280.0)
    assert s["errors"] == {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}


def test_parse_wrk_text_errors_and_units():
    text = textwrap.dedent("""\
        Running 10s test @ http://127.0.0.1:8000/
          Latency Distribution
             50%  812.00us
             99%    1.20s
          52345 requests in 10.01s, 7.45MB read
          Socket errors: connect 3, read 2, write 1, timeout 7
          Non-2xx or 3xx responses: 12
        Requests/sec:   5229.27
        """)
    s = H.parse_wrk_text(text)
    assert s["requests"] == 52345
    assert s["duration_us"] == pytest.approx(10.01e6)
    assert s["latency_us"]["p50"] == pytest.approx(812.0)
    assert s["latency_us"]["p99"] == pytest.approx(1.2e6)
    assert s["errors"] == {"connect": 3, "read": 2, "write": 1, "status": 12, "timeout": 7}


def test_parse_wrk_text_garbage_raises():
    with pytest.raises(ValueError):
        H.parse_wrk_text("unable to connect to 127.0.0.1:1 Connection refused\n")
    with pytest.raises(ValueError):
        H.parse_wrk_time("12 parsecs")


def test_wrk_duration_is_whole_seconds():
    assert H.wrk_duration_arg(10) == "10s"
    assert H.wrk_duration_arg(2.0) == "2s"
    for bad in (0, 0.5, 2.5):
        with pytest.raises(H.BenchError):
            H.wrk_duration_arg(bad)


def test_reporter_lua_prints_the_fields_the_parser_reads():
    with open(H.REPORTER_LUA) as f:
        lua = f.read()
    assert "done = function(summary, latency, requests)" in lua
    assert "{50, 75, 90, 99, 99.9}" in lua
    for key in ('"requests"', '"duration_us"', '"p%s"', '"status"', "WRK_JSON "):
        assert key in lua


# --------------------------------------------------------------------------
# /proc parsing and CPU maths


def test_parse_proc_stat_plain():
    line = ("4242 (python3) S 1 4242 4242 0 -1 4194560 1234 0 0 0 "
            "150 37 0 0 20 0 1 0 12345 123456789 4321 18446744073709551615")
    st = H.parse_proc_stat(line)
    assert st["pid"] == 4242
    assert st["comm"] == "python3"
    assert st["state"] == "S"
    assert (st["utime"], st["stime"]) == (150, 37)


def test_parse_proc_stat_comm_with_spaces_and_parens():
    line = ("99 (weird) name (x)) R 1 99 99 0 -1 0 0 0 0 0 "
            "7 3 0 0 20 0 1 0 5 6 7")
    st = H.parse_proc_stat(line)
    assert st["comm"] == "weird) name (x)"
    assert st["state"] == "R"
    assert (st["utime"], st["stime"]) == (7, 3)


def test_parse_proc_stat_rejects_bad_input():
    with pytest.raises(ValueError):
        H.parse_proc_stat("nonsense")
    with pytest.raises(ValueError):
        H.parse_proc_stat("1 (x) S 1 2 3")


def test_read_cpu_ticks_of_self_and_missing_pid():
    assert H.read_cpu_ticks(os.getpid()) >= 0
    with pytest.raises(H.BenchError):
        H.read_cpu_ticks(2 ** 22 + 12345)  # above the kernel's pid_max


def test_parse_proc_status_ctxt():
    text = "Name:\tpython\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t4\n"
    assert H.parse_proc_status_ctxt(text) == (17, 4)
    assert H.parse_proc_status_ctxt("Name:\tx\n") == (None, None)


def test_parse_proc_stat_cpus_and_other_load():
    before = H.parse_proc_stat_cpus(
        "cpu  100 0 50 1000 10 0 5 0 0 0\n"
        "cpu0 60 0 30 500 5 0 3 2 0 0\n"
        "cpu1 40 0 20 500 5 0 2 0 0 0\n"
        "intr 12345\n")
    assert before == {0: (95, 600), 1: (62, 567)}
    # 100 ticks pass on cpu0: 90 busy (incl. 1 steal), 10 idle
    after = H.parse_proc_stat_cpus("cpu0 110 0 60 508 7 0 12 3 0 0\n")
    # our server used 80 of those ticks: 10 of 100 went to something else
    assert H.other_load_share(before, after, 0, 80) == pytest.approx(0.10)
    assert H.other_load_share(before, after, 0, 200) == 0.0  # never negative
    assert H.other_load_share(before, after, 1, 0) is None
    assert H.other_load_share(before, after, None, 0) is None
    assert 0 in H.read_cpu_busy()


def test_wait_for_quiet_gives_up_after_max_wait():
    waited, loads = H.wait_for_quiet([0], max_wait=0.0, sample=0.05, threshold=-1.0)
    assert 0.04 <= waited < 1.0  # one sample, then gives up (nothing is below -1)
    assert set(loads) == {0}
    waited, loads = H.wait_for_quiet([0], max_wait=5.0, sample=0.05, threshold=1.0)
    assert waited < 1.0  # everything is below 100 %: returns after one sample


def test_cpu_us_per_request():
    # 190 ticks at 100 Hz = 1.9 s of CPU for 10,000 requests = 190 us each
    assert H.cpu_us_per_request(190, 10000, clk_tck=100) == pytest.approx(190.0)
    assert H.cpu_us_per_request(250, 10000, clk_tck=250) == pytest.approx(100.0)
    assert H.cpu_us_per_request(10, 0) is None


def test_ratios():
    up = {"ok": True, "requests_per_sec": 5000.0, "cpu_us_per_request": 200.0,
          "latency_us": {"p50": 10000.0, "p99": 20000.0}}
    tc = {"ok": True, "requests_per_sec": 20000.0, "cpu_us_per_request": 50.0,
          "latency_us": {"p50": 2500.0, "p99": 4000.0}}
    r = H.ratios(up, tc)
    assert r["rps"] == pytest.approx(4.0)
    assert r["cpu_less"] == pytest.approx(4.0)
    assert r["p50_lower"] == pytest.approx(4.0)
    assert r["p99_lower"] == pytest.approx(5.0)
    # slower tornado_c: ratios below 1, not clamped
    r = H.ratios(tc, up)
    assert r["rps"] == pytest.approx(0.25)
    assert r["cpu_less"] == pytest.approx(0.25)


def test_ratios_with_a_failed_side():
    up = {"ok": True, "requests_per_sec": 5000.0, "cpu_us_per_request": 200.0,
          "latency_us": {"p50": 1.0, "p99": 2.0}}
    bad = {"ok": False, "error": "boom"}
    for a, b in ((up, bad), (bad, up), (None, up)):
        assert set(H.ratios(a, b).values()) == {None}


def test_aggregate_median_and_failure():
    def run(rps, cpu, ok=True):
        return {"ok": ok, "requests": int(rps * 10), "requests_per_sec": rps,
                "cpu_us_per_request": cpu, "latency_us": {"p50": cpu, "p99": 2 * cpu, "mean": cpu}}

    agg = H.aggregate([run(100, 30), run(300, 10), run(200, 20)])
    assert agg["ok"] and agg["runs"] == 3
    assert agg["requests_per_sec"] == 200
    assert agg["cpu_us_per_request"] == 20
    assert agg["latency_us"]["p99"] == 40
    assert agg["requests_per_sec_range"] == [100, 300]
    assert agg["cpu_us_per_request_range"] == [10, 30]
    md = H.render_markdown({"scenarios": [{"name": "s", "kind": "http", "results": {
        "upstream": agg, "tornado_c": agg}, "ratios": H.ratios(agg, agg)}]})
    assert "| s | upstream | 200 (100-300) | 0.02 | 0.04 | 20.0 (10.0-30.0) |  |" in md
    single = H.aggregate([run(100, 30)])
    assert single["requests_per_sec"] == 100
    assert single["statistic"] == "single run" and single["requests_per_sec_range"] is None
    failed = H.aggregate([run(100, 30), {"ok": False, "error": "died"}])
    assert not failed["ok"] and failed["error"] == "died"


def test_aggregate_sets_disturbed_runs_aside():
    def run(rps, cpu, load):
        return {"ok": True, "requests": 1, "requests_per_sec": rps, "cpu_us_per_request": cpu,
                "latency_us": {"p50": 1.0}, "server_cpu_other_load": load,
                "disturbed": load > H.OTHER_LOAD_WARN, "warnings": []}

    agg = H.aggregate([run(1000, 400, 0.40), run(3000, 200, 0.01), run(2900, 210, 0.02)])
    assert agg["runs"] == 3 and agg["runs_used"] == 2 and agg["runs_disturbed"] == 1
    assert agg["requests_per_sec"] == 2950
    assert agg["cpu_us_per_request"] == 205
    assert agg["other_load_max"] == 0.40
    doc = {"settings": {"server_cpu": 0}, "scenarios": [{"name": "s", "kind": "http",
           "results": {"upstream": agg, "tornado_c": agg}, "ratios": H.ratios(agg, agg)}]}
    assert "1 of 3 runs set aside: other load on the server CPU (up to 40%)" \
        in H.render_markdown(doc)
    # all disturbed: all used, flagged unreliable
    agg = H.aggregate([run(1000, 400, 0.40), run(2000, 300, 0.30)])
    assert agg["runs_used"] == 2 and agg["requests_per_sec"] == 1500
    doc["scenarios"][0]["results"]["upstream"] = agg
    assert "all 2 runs were disturbed by other load on the server CPU (up to 40%): unreliable" \
        in H.render_markdown(doc)


# --------------------------------------------------------------------------
# Registry


def test_registry_has_the_scenarios_and_their_files():
    for name in ("hello", "json", "wsmask"):
        assert name in H.REGISTRY
    assert H.REGISTRY["hello"].kind == "http"
    assert H.REGISTRY["wsmask"].kind == "script"
    for sc in H.REGISTRY.values():
        if not sc.optional if sc.kind == "script" else True:
            for f in sc.files():
                assert os.path.isfile(f), f


def test_select_default_skips_absent_optional_scripts():
    reg = dict(H.REGISTRY)
    reg["ghost"] = H.ScriptScenario("ghost", "no_such_script.py", "absent", optional=True)
    chosen, notes = H.select(None, registry=reg)
    names = [sc.name for sc in chosen]
    assert names[:7] == ["hello", "hello_aiohttp", "hello_starlette", "json", "gen_coroutine",
                         "https_hello", "wsmask"]
    assert "ghost" not in names
    assert any("ghost skipped" in n for n in notes)
    with pytest.raises(H.BenchError, match="missing file"):
        H.select("ghost", registry=reg)


def test_select_only_keeps_order_and_rejects_unknown():
    chosen, _ = H.select("wsmask, hello")
    assert [sc.name for sc in chosen] == ["wsmask", "hello"]
    with pytest.raises(H.BenchError, match="unknown scenario"):
        H.select("hello,nope")


def test_register_one_line_and_bad_name():
    reg_before = dict(H.REGISTRY)
    try:
        sc = H.register(H.HttpScenario("hello2", "apps/hello.py", "again"))
        assert H.REGISTRY["hello2"] is sc
        with pytest.raises(ValueError):
            H.register(H.HttpScenario("bad name", "apps/hello.py", "x"))
    finally:
        H.REGISTRY.clear()
        H.REGISTRY.update(reg_before)


def test_server_argv_runs_the_same_app_both_ways():
    sc = H.REGISTRY["hello"]
    up = H.server_argv("upstream", sc, 1234, python="/py")
    tc = H.server_argv("tornado_c", sc, 1234, python="/py")
    assert up == ["/py", sc.app_path(), "--logging=warning", "--port=1234"]
    assert tc == ["/py", "-m", "tornado_c"] + up[1:]
    with pytest.raises(ValueError):
        H.server_argv("other", sc, 1, python="/py")


def test_peer_scenarios_run_their_own_app_as_one_implementation():
    for name, impl in (("hello_aiohttp", "aiohttp"), ("hello_starlette", "starlette")):
        sc = H.REGISTRY[name]
        assert sc.kind == "http" and sc.implementations == (impl,) and impl in H.PEERS
        assert os.path.exists(sc.app_path())
        # no tornado.options flag: the peers' apps take only --port/--address
        assert H.server_argv(impl, sc, 1234, python="/py") == ["/py", sc.app_path(), "--port=1234"]
        assert sc.expect_body == H.REGISTRY["hello"].expect_body
    assert H.REGISTRY["hello"].implementations == H.IMPLEMENTATIONS


def test_combined_lua_appends_reporter(tmp_path):
    (tmp_path / "post.lua").write_text('wrk.method = "POST"\n')
    bench_dir = H.HERE
    sc = H.HttpScenario("post", os.path.relpath(str(tmp_path / "x.py"), bench_dir), "p",
                        wrk_script=os.path.relpath(str(tmp_path / "post.lua"), bench_dir))
    path = H.combined_lua(sc, str(tmp_path))
    text = open(path).read()
    assert text.startswith('wrk.method = "POST"')
    assert text.rstrip().endswith("end")
    assert "WRK_JSON" in text
    assert H.combined_lua(H.REGISTRY["hello"], str(tmp_path)) == H.REPORTER_LUA


# --------------------------------------------------------------------------
# Script scenarios


def test_parse_json_stdout():
    assert H.parse_json_stdout('{"a": 1}\n') == {"a": 1}
    assert H.parse_json_stdout('running...\n{"a": 2}\ndone\n') == {"a": 2}
    with pytest.raises(H.BenchError):
        H.parse_json_stdout("no json here")


def _fake_script_scenario(tmp_path, body, **kw):
    script = tmp_path / "fake_bench.py"
    script.write_text(textwrap.dedent(body))
    return H.ScriptScenario("fake", os.path.relpath(str(script), H.HERE), "fake", **kw)


def test_script_scenario_stdout_and_file(tmp_path):
    settings = H.Settings.quick_settings(server_cpu=None, client_cpu=None)
    sc = _fake_script_scenario(tmp_path, """\
        import json, sys
        args = sys.argv[1:]
        data = {"args": args, "comparisons": [{"label": "x", "unit": "ops/s",
                "values": {"a": 2.0, "b": 1.0}, "ratio": 2.0}]}
        if "--out" in args:
            open(args[args.index("--out") + 1], "w").write(json.dumps(data))
            print("table for humans")
        else:
            print("warming up")
            print(json.dumps(data))
        """)
    r = H.run_script_scenario(sc, settings, dict(os.environ), str(tmp_path), log=lambda m: None)
    assert r["ok"], r
    assert r["result"]["args"] == ["--json"]
    sc2 = H.ScriptScenario(sc.name, sc.script, "f", args=("--out", "{json}"),
                           quick_args=("--quick",))
    r2 = H.run_script_scenario(sc2, settings, dict(os.environ), str(tmp_path), log=lambda m: None)
    assert r2["ok"], r2
    assert r2["result"]["args"] == ["--out", os.path.join(str(tmp_path), "fake.json"), "--quick"]
    md = H.render_markdown({"scenarios": [r2]})
    assert "| case | a ops/s | b ops/s | ratio |" in md
    assert "| x | 2.00 | 1.00 | 2.00x |" in md


LOOP_MICRO_JSON = {
    "n": 100000, "loops": ["asyncio", "uvloop", "tornado_c"], "python": "3.11.7",
    "scenarios": {
        "call_soon": {"asyncio": {"batch": 1.0e6, "chain": 5.0e5},
                      "uvloop": {"batch": 2.0e6, "chain": 1.0e6},
                      "tornado_c": {"batch": 3.0e6, "chain": 1.5e6}},
        "hello_http": {"asyncio": {"requests_per_sec": 3000.0, "loop_module": "asyncio"},
                       "uvloop": {"requests_per_sec": 3600.0, "loop_module": "uvloop"},
                       "tornado_c": {"requests_per_sec": 3900.0, "loop_module": "tornado_c"}},
    },
}

LOOP_TCP_JSON = {
    "meta": {"python": "3.11.7"},
    "results": [
        {"api": "protocol", "size": 1024, "server_loop": loop, "msgs_per_s": rate,
         "server_cpu_us_per_msg": cpu}
        for loop, rate, cpu in (("asyncio", 20000.0, 40.0), ("uvloop", 40000.0, 20.0),
                                ("tornado_c", 50000.0, 16.0))
    ],
}


def test_summarize_loop_scripts():
    comps = {c["label"]: c for c in H.summarize_loop_micro(LOOP_MICRO_JSON)}
    assert set(comps) == {"call_soon/batch", "call_soon/chain", "hello_http"}
    assert comps["call_soon/batch"]["ratio"] == pytest.approx(1.5)
    assert comps["call_soon/batch"]["ratio_label"] == "tornado_c / uvloop"
    assert comps["hello_http"]["unit"] == "req/s"
    assert comps["hello_http"]["values"]["tornado_c"] == 3900.0
    # without uvloop the reference is asyncio
    no_uv = {"scenarios": {"call_soon": {"asyncio": {"batch": 1.0}, "tornado_c": {"batch": 2.0}}}}
    (c,) = H.summarize_loop_micro(no_uv)
    assert c["ratio"] == 2.0 and c["ratio_label"] == "tornado_c / asyncio"

    comps = H.summarize_loop_tcp(LOOP_TCP_JSON)
    assert [c["label"] for c in comps] == ["protocol 1024 B msg/s",
                                           "protocol 1024 B server CPU-µs/msg"]
    assert comps[0]["ratio"] == pytest.approx(1.25)
    assert comps[1]["ratio"] == pytest.approx(1.25)  # 20 / 16: less CPU is better
    assert comps[1]["ratio_label"] == "uvloop / tornado_c"
    md = H.render_markdown({"scenarios": [{"name": "loop_tcp", "kind": "script", "ok": True,
                                           "result": dict(LOOP_TCP_JSON, comparisons=comps)}]})
    assert "| case | unit | asyncio | uvloop | tornado_c | ratio |" in md
    assert "| protocol 1024 B msg/s | msg/s | 20,000 | 40,000 | 50,000 | 1.25x (tornado_c / uvloop) |" in md


def test_summarize_tls_and_udp_echo():
    tls = dict(LOOP_TCP_JSON, meta={"python": "3.11.7", "tls": True})
    assert [c["label"] for c in H.summarize_loop_tcp(tls)] == [
        "TLS protocol 1024 B msg/s", "TLS protocol 1024 B server CPU-µs/msg"]
    udp = {"meta": {}, "results": [
        {"size": 64, "server_loop": loop, "msgs_per_s": rate, "server_cpu_us_per_msg": cpu}
        for loop, rate, cpu in (("asyncio", 3000.0, 60.0), ("uvloop", 8000.0, 15.0),
                                ("tornado_c", 10000.0, 12.0))]}
    comps = H.summarize_loop_udp(udp)
    assert [c["label"] for c in comps] == ["udp 64 B msg/s", "udp 64 B server CPU-µs/msg"]
    assert comps[0]["ratio"] == pytest.approx(1.25)
    assert comps[1]["ratio"] == pytest.approx(1.25)
    assert H.REGISTRY["loop_tls"].args[:1] == ("--tls",)
    assert H.REGISTRY["loop_udp"].summarize is H.summarize_loop_udp


def test_loop_scripts_registered_with_their_interface():
    for name in ("loop_micro", "loop_tcp"):
        sc = H.REGISTRY[name]
        assert sc.args == ("--json", "{json}") and not sc.pin and sc.summarize
    assert H.REGISTRY["loop_micro"].quick_args == ("--quick",)


def test_script_result_without_comparisons_is_listed_briefly():
    res = {"values": list(range(100))}
    md = H.render_markdown({"scenarios": [{"name": "raw", "kind": "script", "ok": True,
                                           "result": res}]})
    assert "- values[0]: 0" in md
    assert "- ... %d more values in the JSON" % (100 - H.FLATTEN_LIMIT) in md


def test_script_scenario_failure_is_reported(tmp_path):
    settings = H.Settings.quick_settings(server_cpu=None, client_cpu=None)
    sc = _fake_script_scenario(tmp_path, """\
        import sys
        sys.stderr.write("kaboom\\n")
        sys.exit(3)
        """)
    r = H.run_script_scenario(sc, settings, dict(os.environ), str(tmp_path), log=lambda m: None)
    assert not r["ok"]
    assert "exit code 3" in r["error"] and "kaboom" in r["error"]
    assert "FAILED" in H.render_markdown({"scenarios": [r]})


@pytest.mark.skipif(not tornado_c_importable(), reason="tornado_c not built")
def test_wsmask_script_quick(tmp_path):
    out = tmp_path / "ws.json"
    subprocess.run([sys.executable, os.path.join(BENCH, "wsmask.py"), "--batch-seconds",
                    "0.002", "--repeats", "1", "--json", str(out)],
                   check=True, env=server_env(), cwd=str(tmp_path), capture_output=True)
    data = json.loads(out.read_text())
    assert [r["size"] for r in data["results"]] == [16, 1024, 65536, 1048576]
    for row in data["results"]:
        assert row["mb_per_s"]["tornado_c"] > 0 and row["mb_per_s"]["speedups"] > 0
        assert row["ratio_c_over_speedups"] == pytest.approx(
            row["mb_per_s"]["tornado_c"] / row["mb_per_s"]["speedups"])
        assert ("python" in row["mb_per_s"]) == (row["size"] <= 1024)
    assert len(data["comparisons"]) == 4


@pytest.mark.skipif(not tornado_c_importable(), reason="tornado_c not built")
def test_web_headers_script_quick(tmp_path):
    out = tmp_path / "wh.json"
    subprocess.run([sys.executable, os.path.join(BENCH, "web_headers.py"), "--batch-seconds",
                    "0.002", "--repeats", "1", "--json", str(out)],
                   check=True, env=server_env(), cwd=str(tmp_path), capture_output=True)
    data = json.loads(out.read_text())
    ops = [r["op"] for r in data["results"]]
    assert ops[0] == "ctor dict" and "parse 8" in ops
    for row in data["results"]:
        ns = row["ns_per_op"]
        assert ns["tornado_c"] > 0 and ns["upstream"] > 0
        assert row["speedup"] == pytest.approx(ns["upstream"] / ns["tornado_c"])
    assert len(data["comparisons"]) == len(ops)
    assert "web_headers" in H.REGISTRY and H.REGISTRY["web_headers"].kind == "script"


# --------------------------------------------------------------------------
# Output


def _doc(up_ok=True):
    up = ({"ok": True, "requests_per_sec": 5000.0, "cpu_us_per_request": 190.0,
           "latency_us": {"p50": 9000.0, "p99": 12000.0}, "warnings": []}
          if up_ok else {"ok": False, "error": "server exited before accepting connections"})
    tc = {"ok": True, "requests_per_sec": 5100.0, "cpu_us_per_request": 186.0,
          "latency_us": {"p50": 8800.0, "p99": 11000.0}, "warnings": ["socket errors: read 2"]}
    return {
        "schema": 1, "timestamp": "20260101T000000Z",
        "settings": H.Settings().as_dict(),
        "machine": {"cpu_model": "Test CPU", "nproc": 2, "tornado": "6.6.1"},
        "scenarios": [{"name": "hello", "kind": "http", "description": "d",
                       "results": {"upstream": up, "tornado_c": tc},
                       "ratios": H.ratios(up, tc)}],
    }


def test_render_markdown_table():
    md = H.render_markdown(_doc())
    assert "| hello | upstream | 5,000 | 9.00 | 12.00 | 190.0 |  |" in md
    assert "| hello | tornado_c | 5,100 | 8.80 | 11.00 | 186.0 | 1.02x req/s, 1.02x less CPU/req" in md
    assert "socket errors: read 2" in md


def _peer_doc():
    doc = _doc()
    peer = {"ok": True, "requests_per_sec": 4000.0, "cpu_us_per_request": 240.0,
            "latency_us": {"p50": 12000.0, "p99": 15000.0}, "warnings": []}
    doc["scenarios"].append({"name": "hello_aiohttp", "kind": "http", "description": "d",
                             "app_args": [], "results": {"aiohttp": peer},
                             "ratios": H.ratios(None, None)})
    return doc


def test_render_markdown_lists_peers_with_the_same_fields():
    md = H.render_markdown(_peer_doc())
    assert "| hello_aiohttp | aiohttp | 4,000 | 12.00 | 15.00 | 240.0 |  |" in md
    assert "| hello | tornado_c | 5,100 |" in md
    assert "For reference, aiohttp:" in md


def test_render_png_with_peers(tmp_path):
    pytest.importorskip("matplotlib")
    path = H.render_png(_peer_doc(), str(tmp_path / "x.png"))
    assert path and os.path.getsize(path) > 0


def test_error_summary_keeps_the_exception_line():
    err = ("hello-tornado_c exited before accepting connections (exit code 1); its stderr:\n"
           "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
           "ValueError: TORNADO_C_DISABLE: unknown component(s) bogus\n\n")
    out = H.error_summary(err)
    assert out.startswith("hello-tornado_c exited before accepting connections")
    assert out.endswith("ValueError: TORNADO_C_DISABLE: unknown component(s) bogus")
    assert H.error_summary("just one line") == "just one line"


def test_render_markdown_reports_failure():
    md = H.render_markdown(_doc(up_ok=False))
    assert "| hello | upstream | FAILED: server exited before accepting connections |" in md
    assert "n/a (a run failed)" in md


def test_write_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    doc = _doc()
    doc["scenarios"][0]["runs"] = {"upstream": [dict(doc["scenarios"][0]["results"]["upstream"],
                                                     wrk_stdout="raw")]}
    paths, md = H.write_outputs(doc, str(tmp_path))
    for key in ("json", "latest_json", "latest_md", "latest_png"):
        assert os.path.getsize(paths[key]) > 0, key
    assert os.path.basename(paths["json"]) == "20260101T000000Z.json"
    data = json.load(open(paths["latest_json"]))
    assert "wrk_stdout" not in data["scenarios"][0]["runs"]["upstream"][0]
    assert open(paths["latest_md"]).read() == md
    with open(paths["latest_png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# Servers (no wrk needed)


def test_server_pid_is_the_interpreter_and_stops(tmp_path):
    sc = H.REGISTRY["hello"]
    port = H.free_port()
    argv = H.server_argv("upstream", sc, port)
    srv = H.Server(argv, port, server_env(), str(tmp_path), cpu=None, label="t")
    with srv.start(timeout=20):
        cmdline = open("/proc/%d/cmdline" % srv.pid, "rb").read().split(b"\0")
        assert os.fsencode(sc.app_path()) in cmdline
        assert H.http_check(port, sc)["status"] == 200
        assert H.read_cpu_ticks(srv.pid) >= 0
    assert not srv.alive()
    assert srv.proc.returncode == -15


def test_https_hello_serves_tls_under_both_implementations(tmp_path):
    sc = H.REGISTRY["https_hello"]
    assert sc.tls and sc.url(8443) == "https://127.0.0.1:8443/"
    assert H.REGISTRY["hello"].url(80) == "http://127.0.0.1:80/"
    plain = H.HttpScenario("plain", sc.app, "the same app asked in plain HTTP",
                           expect_body=sc.expect_body)
    for impl in H.IMPLEMENTATIONS:
        port = H.free_port()
        srv = H.Server(H.server_argv(impl, sc, port), port, server_env(), str(tmp_path),
                       cpu=None, label="tls-" + impl)
        with srv.start(timeout=30):
            assert H.http_check(port, sc)["status"] == 200
            with pytest.raises(Exception):
                H.http_check(port, plain, timeout=5)


def test_failed_start_is_reported_not_raised(tmp_path):
    sc = H.HttpScenario("broken", "apps/hello.py", "x", app_args=("--no-such-option",))
    settings = H.Settings.quick_settings(server_cpu=None, client_cpu=None)
    r = H.run_http_once("upstream", sc, settings, server_env(), str(tmp_path),
                        log=lambda m: None)
    assert not r["ok"]
    assert "exited before accepting connections" in r["error"]
    assert "Unrecognized command line option" in r["error"]  # tornado.options' message
    assert r["exit_code"] == 1


def test_server_that_dies_reports_its_stderr(tmp_path):
    app = tmp_path / "crash.py"
    app.write_text("import sys\nsys.stderr.write('app broke: no database\\n')\nsys.exit(4)\n")
    port = H.free_port()
    srv = H.Server([sys.executable, str(app)], port, dict(os.environ), str(tmp_path), label="c")
    with pytest.raises(H.BenchError) as ei:
        srv.start(timeout=10)
    msg = str(ei.value)
    assert "exited before accepting connections" in msg
    assert "exit code 4" in msg and "app broke: no database" in msg


def test_server_that_never_listens_times_out(tmp_path):
    app = tmp_path / "idle.py"
    app.write_text("import sys, time\nsys.stderr.write('thinking\\n'); sys.stderr.flush()\n"
                   "time.sleep(60)\n")
    port = H.free_port()
    srv = H.Server([sys.executable, str(app)], port, dict(os.environ), str(tmp_path), label="i")
    with pytest.raises(H.BenchError) as ei:
        srv.start(timeout=1.0)
    assert "did not accept connections" in str(ei.value)
    assert "thinking" in str(ei.value)
    assert not srv.alive()


def test_http_check_rejects_wrong_body(tmp_path):
    sc = H.HttpScenario("wrong", "apps/hello.py", "x", expect_body=b"Goodbye")
    port = H.free_port()
    srv = H.Server(H.server_argv("upstream", sc, port), port, server_env(), str(tmp_path))
    with srv.start(timeout=20):
        with pytest.raises(H.BenchError, match="unexpected body"):
            H.http_check(port, sc)


# --------------------------------------------------------------------------
# One real run (~1 s per implementation)


@needs_wrk
@pytest.mark.skipif(not tornado_c_importable(), reason="tornado_c not built")
def test_real_hello_run_both_implementations():
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2
    settings = H.Settings(duration=1, warmup=1, connections=10, repeat=1,
                          server_cpu=cpus[0] if pin else None,
                          client_cpu=cpus[1] if pin else None)
    doc = H.run_all([H.REGISTRY["hello"]], settings, env=server_env(), log=lambda m: None)
    sc = doc["scenarios"][0]
    for impl in ("upstream", "tornado_c"):
        r = sc["results"][impl]
        assert r["ok"], r.get("error")
        assert r["requests"] > 0
        assert r["requests_per_sec"] > 0
        assert r["cpu_us_per_request"] > 0
        assert r["latency_us"]["p50"] <= r["latency_us"]["p99"]
        one = sc["runs"][impl][0]
        assert one["wrk_summary_source"] == "lua"
        assert one["exit_code"] == -15
        assert one["pid"] > 0 and one["server_cpu_ticks"] > 0
        assert one["wrk_cpu_s"] > 0
        if pin:
            assert 0 <= one["server_cpu_other_load"] <= 1
            assert 0 <= one["client_cpu_other_load"] <= 1
    assert sc["ratios"]["rps"] > 0 and sc["ratios"]["cpu_less"] > 0
    assert "websocket" in doc["machine"]["tornado_c_components"]
    assert doc["machine"]["tornado_c_versions"]["tornado_c"]


# --------------------------------------------------------------------------
# run.py command line


def _run_py(*args, **kw):
    return subprocess.run([sys.executable, os.path.join(BENCH, "run.py"), *args],
                          capture_output=True, text=True, timeout=300, **kw)


def test_run_py_list_and_bad_arguments():
    p = _run_py("--list")
    assert p.returncode == 0
    assert "hello" in p.stdout and "wsmask" in p.stdout
    p = _run_py("--only", "nope")
    assert p.returncode == 2 and "unknown scenario" in p.stderr
    p = _run_py("--duration", "0")
    assert p.returncode == 2
    p = _run_py("--server-cpu", "0", "--client-cpu", "0")
    assert p.returncode == 2


def test_run_py_render_saved_result(tmp_path):
    pytest.importorskip("matplotlib")
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(_doc()))
    out = tmp_path / "out"
    p = _run_py("--render", str(saved), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(str(out))) == ["20260101T000000Z.json", "latest.json",
                                            "latest.md", "latest.png"]
    assert "| hello | upstream | 5,000 |" in (out / "latest.md").read_text()


@pytest.mark.skipif(not tornado_c_importable(), reason="tornado_c not built")
def test_run_py_wsmask_writes_all_outputs(tmp_path):
    pin = [] if shutil.which("taskset") else ["--no-pin"]
    p = _run_py("--quick", "--only", "wsmask", "--out", str(tmp_path), *pin, env=server_env(),
                cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    files = sorted(os.listdir(str(tmp_path)))
    assert {"latest.json", "latest.md", "latest.png"} <= set(files)
    assert any(f.endswith("Z.json") for f in files)
    md = (tmp_path / "latest.md").read_text()
    assert "| mask 64 KiB |" in md
    assert md in p.stdout  # the table is printed too
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert doc["machine"]["tornado_c_active"] == sorted(
        k for k, v in doc["machine"]["tornado_c_components"].items() if v == "active")
    assert doc["settings"]["quick"] is True


def test_web_floor_drives_the_real_handler(tmp_path):
    """benchmarks/web_floor.py runs the hello handler to completion on both
    loops (it checks the first response itself and raises otherwise)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "web_floor", os.path.join(os.path.dirname(H.__file__), "web_floor.py"))
    wf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wf)
    out = wf.main(["--requests", "300", "--rounds", "1", "--json", str(tmp_path / "f.json")])
    assert set(out["cpu_us_per_request"]) == {"asyncio", "tornado_c"}
    assert out["floor_cpu_us_per_request"] > 0
    assert out["comparisons"][0]["values"]["tornado_c"] > 0
    assert H.REGISTRY["web_floor"].script == "web_floor.py"


def test_stream_echo_benchmark_via_tcp_runs():
    # the benchmark checks each setup really got the stream class it names
    bench = os.path.join(BENCH, "stream_echo.py")
    r = run_python(bench, "--via", "tcp", "--conns", "2", "--rounds", "20",
                   "--bulk-mb", "1", cwd="/tmp", env={"TORNADO_C_DISABLE": ""})
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {"upstream", "switch/loop-only", "switch"} <= rows


def test_stream_echo_benchmark_server_process_runs():
    # each server subprocess reports the stream class it uses; the benchmark
    # fails if it is not the one its setup names
    bench = os.path.join(BENCH, "stream_echo.py")
    r = run_python(bench, "--via", "tcp-proc", "--conns", "2", "--duration", "0.2",
                   "--warmup", "0.1", cwd="/tmp", env={"TORNADO_C_DISABLE": ""})
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {"upstream", "switch/loop-only", "switch"} <= rows


@pytest.mark.skipif(not tornado_c_importable(), reason="tornado_c not built")
def test_loop_subprocess_script_small_run(tmp_path):
    """benchmarks/loop_subprocess.py: registered, and a tiny run gives a
    comparison row per scenario and measure with every loop present."""
    sc = H.REGISTRY["loop_subprocess"]
    assert sc.args == ("--json", "{json}") and sc.quick_args == ("--quick",)
    out = tmp_path / "sp.json"
    subprocess.run([sys.executable, os.path.join(BENCH, "loop_subprocess.py"), "-n", "20",
                    "--rounds", "1", "--json", str(out)], check=True, timeout=300,
                   capture_output=True, cwd=str(tmp_path))
    doc = json.loads(out.read_text())
    labels = [c["label"] for c in doc["comparisons"]]
    assert labels == ["spawn_wait children/s", "spawn_wait parent CPU-µs/child",
                      "spawn_pipes children/s", "spawn_pipes parent CPU-µs/child"]
    for c in doc["comparisons"]:
        assert {"asyncio", "tornado_c"} <= set(c["values"])
        assert all(v > 0 for v in c["values"].values())


def test_web_scenarios_answer_their_check_under_both_implementations(tmp_path):
    """post_json (the check POSTs the wrk body), template and cookies: each app
    answers the scenario's own check under upstream and tornado_c, and a
    check of the wrong request fails (the check is not a formality)."""
    for name in ("post_json", "template", "cookies"):
        sc = H.REGISTRY[name]
        for impl in H.IMPLEMENTATIONS:
            port = H.free_port()
            srv = H.Server(H.server_argv(impl, sc, port), port, server_env(), str(tmp_path),
                           cpu=None, label="%s-%s" % (name, impl))
            with srv.start(timeout=30):
                assert H.http_check(port, sc)["status"] == 200
                if name == "post_json":
                    as_get = H.HttpScenario("get", sc.app, "GET", expect_json=sc.expect_json)
                    with pytest.raises(H.BenchError, match="GET / answered 405"):
                        H.http_check(port, as_get)
    with open(os.path.join(BENCH, H.REGISTRY["post_json"].wrk_script)) as f:
        lua = f.read()
    # the check sends what wrk sends
    assert "wrk.body = '%s'" % H.REGISTRY["post_json"].check_body.decode() in lua


def test_fixed_rate_client_measures_from_due_times(tmp_path):
    """benchmarks/fixed_rate.py against the hello app (one implementation,
    no pinning): every request answered, latencies present and positive."""
    fr = _load("fixed_rate_mod", "fixed_rate.py")
    sc = H.HttpScenario("fixed_rate", "apps/hello.py", "x")
    port = H.free_port()
    srv = H.Server(H.server_argv("tornado_c", sc, port), port, server_env(), str(tmp_path),
                   cpu=None, label="fr")
    with srv.start(timeout=30):
        lat, errors, wall = fr.run_clients(port, 200.0, 1.0, 4, 2,
                                           b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None)
    assert len(lat) == 200 and errors == 0 and lat == sorted(lat)
    assert 0 < lat[0] and wall >= 0.99
    assert fr.percentile([1, 2, 3, 4], 50) == 2 and fr.percentile([1, 2, 3, 4], 99) == 4
