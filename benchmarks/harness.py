"""Side-by-side benchmark harness: the same unmodified Tornado app, run as
``python app.py --port N`` (upstream) and ``python -m tornado_c app.py --port N``
(tornado_c), the server pinned to one CPU and wrk pinned to another.

For every HTTP run: req/s, latency p50/p99 (from wrk's own histogram, printed
as JSON by ``wrk_report.lua``) and the server's CPU time per request: the
server process's utime+stime (``/proc/<pid>/stat``, clock ticks) read right
before wrk starts and right after it exits, divided by the requests wrk
completed.  The server is idle outside that window (warm-up is done and
checked first), so the delta is the cost of serving wrk's connections.

Scenarios live in ``REGISTRY``; adding one is one ``register(...)`` line:

* ``HttpScenario``: a Tornado app file (run unmodified) + URL path, optionally
  a wrk Lua script shaping the requests (POST bodies, headers...).
* ``ScriptScenario``: a standalone benchmark script that prints (or writes)
  JSON; if the JSON has a ``comparisons`` list, it becomes a table (and a
  ``notes`` list of strings is shown above it).

Nothing here imports tornado or tornado_c: everything runs in subprocesses
with the runner's interpreter (``sys.executable``) and environment, so a
broken tornado_c build is reported as a failed run rather than crashing the
runner.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPORTER_LUA = os.path.join(HERE, "wrk_report.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")
IMPLEMENTATIONS = ("upstream", "tornado_c")
# Other frameworks' hello world, measured the same way for reference: each is
# one scenario with its own app file, run as `python APP --port=N`.
PEERS = ("aiohttp", "starlette")
SCHEMA = 1
# Warn when other processes/steal used more than this share of the server's
# CPU during a measurement (the machine was not quiet: numbers are suspect).
OTHER_LOAD_WARN = 0.05
FLATTEN_LIMIT = 40  # values listed for a script result without "comparisons"


class BenchError(Exception):
    """A run could not be completed; the message says why."""


# --------------------------------------------------------------------------
# Scenario registry


@dataclass(frozen=True)
class HttpScenario:
    name: str
    app: str  # path of the Tornado app, relative to benchmarks/
    description: str
    path: str = "/"
    wrk_script: str | None = None  # Lua shaping requests, relative to benchmarks/
    # tornado.options' own --logging flag: keep the per-request access log out
    # of the measurement (it is the same Python logging code in both runs).
    app_args: tuple = ("--logging=warning",)
    expect_status: int = 200
    expect_body: bytes | None = None  # checked once before measuring
    expect_json: object = None  # ditto, compared after json.loads
    # the request of that check (the wrk script's, for a scenario that POSTs)
    check_method: str = "GET"
    check_body: bytes | None = None
    check_headers: tuple = ()  # (name, value) pairs
    tls: bool = False  # the app serves HTTPS (wrk and the check connect with TLS,
    # certificate not verified); wrk's connections are kept alive, so the
    # figures are those of requests on established TLS connections
    # what runs the app: upstream and tornado_c (the same Tornado app), or a
    # peer's own app (one of PEERS)
    implementations: tuple = IMPLEMENTATIONS
    kind: str = field(default="http", init=False)

    def url(self, port):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", port, self.path)

    def app_path(self):
        return os.path.join(HERE, self.app)

    def files(self):
        out = [self.app_path()]
        if self.wrk_script:
            out.append(os.path.join(HERE, self.wrk_script))
        return out


@dataclass(frozen=True)
class ScriptScenario:
    name: str
    script: str  # relative to benchmarks/
    description: str
    # "{json}" in args is replaced by a temporary file the script writes its
    # JSON to; without it the JSON is read from the script's stdout.
    args: tuple = ("--json",)
    quick_args: tuple = ()
    optional: bool = False  # skipped (with a note) when the script is absent
    pin: bool = True  # run under taskset on the server CPU (False: it pins itself)
    timeout: float = 900.0
    # Optional adapter: the script's JSON -> a "comparisons" list (for scripts
    # whose JSON has its own shape).  Its output is stored next to the raw JSON.
    summarize: object = None
    chart: bool = True  # give its comparisons a panel in latest.png
    kind: str = field(default="script", init=False)

    def script_path(self):
        return os.path.join(HERE, self.script)

    def files(self):
        return [self.script_path()]


REGISTRY: dict = {}


def register(scenario):
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", scenario.name):
        raise ValueError("bad scenario name %r" % scenario.name)
    REGISTRY[scenario.name] = scenario
    return scenario


register(HttpScenario(
    "hello", "apps/hello.py",
    "GET / -> self.write('Hello, world') (plain Tornado app, keep-alive)",
    expect_body=b"Hello, world",
))
register(HttpScenario(
    "hello_aiohttp", "apps/hello_aiohttp.py",
    "hello on aiohttp (web.Response('Hello, world'), its own asyncio loop, keep-alive)",
    app_args=(), implementations=("aiohttp",), expect_body=b"Hello, world",
))
register(HttpScenario(
    "hello_starlette", "apps/hello_starlette.py",
    "hello on Starlette under uvicorn (PlainTextResponse('Hello, world'); uvicorn's "
    "defaults: uvloop and httptools when installed, keep-alive)",
    app_args=(), implementations=("starlette",), expect_body=b"Hello, world",
))
register(HttpScenario(
    "json", "apps/json_app.py",
    "GET / -> self.write(small dict) (JSON encoding, keep-alive)",
    expect_json={"message": "Hello, World!", "n": 1, "ok": True,
                 "tags": ["tornado", "benchmark"], "ratio": 0.5},
))
register(HttpScenario(
    "gen_coroutine", "apps/gen_coroutine.py",
    "GET / -> @gen.coroutine: yield gen.sleep(0), then gen.multi of two coroutines "
    "(legacy generator handler, keep-alive)",
    expect_body=b"Hello, world",
))
register(HttpScenario(
    "https_hello", "apps/hello_https.py",
    "hello over HTTPS (ssl_options server; keep-alive: no handshakes measured)",
    expect_body=b"Hello, world", tls=True,
))
register(ScriptScenario(
    "wsmask", "wsmask.py",
    "WebSocket mask MB/s: tornado_c C vs tornado.speedups (no server)",
    args=("--json", "{json}"), quick_args=("--quick",),
))
register(HttpScenario(
    "post_json", "apps/post_json.py",
    "POST / with a small JSON body -> json.loads(self.request.body), self.write(dict) "
    "(keep-alive)",
    wrk_script="lua/post_json.lua", check_method="POST",
    check_body=b'{"name": "tornado", "n": 42, "ok": true, "tags": ["a", "b"]}',
    check_headers=(("Content-Type", "application/json"),),
    expect_json={"received": {"name": "tornado", "n": 42, "ok": True, "tags": ["a", "b"]},
                 "count": 4},
))
register(HttpScenario(
    "template", "apps/template_app.py",
    "GET / -> self.render() of a small page: a loop over 10 rows, auto-escaped values "
    "(keep-alive)",
))
register(HttpScenario(
    "cookies", "apps/cookies_app.py",
    "GET / -> get_signed_cookie + set_signed_cookie (the client sends back the cookie "
    "it got; keep-alive)",
    wrk_script="lua/cookies.lua", expect_body=b"visit 1",
))
# tornado_c's own pieces, standalone scripts printing JSON with --json; run
# when present.
def _vs(values, num="tornado_c", refs=("uvloop", "asyncio"), invert=False):
    """(ratio, label) of values[num] to the first reference present."""
    for ref in refs:
        a, b = values.get(num), values.get(ref)
        if a and b:
            return (b / a, "%s / %s" % (ref, num)) if invert else (a / b, "%s / %s" % (num, ref))
    return None, None


def summarize_loop_micro(data):
    """benchmarks/loop_micro.py JSON -> comparisons (ops/s per loop)."""
    comps = []
    for scen, per in (data.get("scenarios") or {}).items():
        if not isinstance(per, dict) or not per:
            continue
        first = next(iter(per.values()))
        if scen == "hello_http" or "requests_per_sec" in first:
            rows = [("%s" % scen, "req/s",
                     {k: v.get("requests_per_sec") for k, v in per.items()})]
        else:
            rows = [("%s/%s" % (scen, m), "ops/s", {k: v.get(m) for k, v in per.items()})
                    for m in first]
        for label, unit, values in rows:
            ratio, rlabel = _vs(values)
            comps.append({"label": label, "unit": unit, "values": values,
                          "ratio": ratio, "ratio_label": rlabel})
    return comps


def summarize_loop_tcp(data):
    """benchmarks/loop_tcp.py JSON -> comparisons (echo msg/s and server
    CPU-µs per message, per API and message size)."""
    groups = {}
    prefix = "TLS " if (data.get("meta") or {}).get("tls") else ""
    for r in data.get("results") or []:
        key = (r.get("api", "udp"), r.get("size"))
        groups.setdefault(key, {})[r.get("server_loop")] = r
    comps = []
    for (api, size), per in groups.items():
        rate = {k: v.get("msgs_per_s") for k, v in per.items()}
        ratio, rlabel = _vs(rate)
        comps.append({"label": "%s%s %s B msg/s" % (prefix, api, size), "unit": "msg/s",
                      "values": rate, "ratio": ratio, "ratio_label": rlabel})
        cpu = {k: v.get("server_cpu_us_per_msg") for k, v in per.items()}
        if any(cpu.values()):
            ratio, rlabel = _vs(cpu, invert=True)
            comps.append({"label": "%s%s %s B server CPU-µs/msg" % (prefix, api, size),
                          "unit": "µs", "values": cpu, "ratio": ratio, "ratio_label": rlabel})
    return comps


def summarize_loop_udp(data):
    """benchmarks/loop_udp.py JSON -> comparisons (echo datagrams/s and
    server CPU-µs per datagram, per size)."""
    return summarize_loop_tcp(data)


register(ScriptScenario(
    "web_headers", "web_headers.py",
    "HTTPHeaders operations ns/op: tornado_c C vs upstream's Python (no server)",
    args=("--json", "{json}"), quick_args=("--quick",),
))
register(ScriptScenario(
    "web_floor", "web_floor.py",
    "tornado.web's own Python per request, no server (the floor under any server)",
    args=("--json", "{json}"), quick_args=("--quick",), chart=False,
))


# tornado_c's own pieces, standalone scripts that pin themselves and write
# JSON to --json PATH; run when present.
register(ScriptScenario(
    "loop_micro", "loop_micro.py",
    "event loop micro-benchmarks: asyncio vs uvloop vs tornado_c loop",
    args=("--json", "{json}"), quick_args=("--quick",), optional=True, pin=False,
    summarize=summarize_loop_micro, chart=False,
))
register(ScriptScenario(
    "loop_tcp", "loop_tcp.py",
    "TCP echo server on asyncio vs uvloop vs tornado_c loop (client: uvloop)",
    args=("--json", "{json}"), quick_args=("--duration", "1", "--rounds", "1"),
    optional=True, pin=False, summarize=summarize_loop_tcp, chart=False,
))
register(ScriptScenario(
    "loop_tls", "loop_tcp.py",
    "TLS echo server (protocol API) on asyncio vs uvloop vs tornado_c loop (client: uvloop)",
    args=("--tls", "--apis", "protocol", "--json", "{json}"),
    quick_args=("--duration", "1", "--rounds", "1"),
    optional=True, pin=False, summarize=summarize_loop_tcp, chart=False,
))
register(ScriptScenario(
    "loop_udp", "loop_udp.py",
    "UDP echo server on asyncio vs uvloop vs tornado_c loop (client: uvloop)",
    args=("--json", "{json}"), quick_args=("--duration", "1", "--rounds", "1"),
    optional=True, pin=False, summarize=summarize_loop_udp, chart=False,
))

register(ScriptScenario(
    "loop_subprocess", "loop_subprocess.py",
    "child processes (create_subprocess_exec + wait/communicate) on asyncio vs uvloop vs tornado_c",
    args=("--json", "{json}"), quick_args=("--quick",), optional=True, chart=False,
))

register(ScriptScenario(
    "ws_echo", "ws_echo.py",
    "WebSocket echo server CPU-us/msg (64 B, 1 KiB, 64 KiB binary, 1 KiB text): "
    "upstream vs tornado_c without/with the websocket component (client: ws_load.c, "
    "64 connections, compiled with cc)",
    args=("--cpu", "--json", "{json}"), quick_args=("--quick",), pin=False, chart=False,
))
register(ScriptScenario(
    "conn_memory", "conn_memory.py",
    "bytes per idle keep-alive and per long-poll connection (5,000 each, RSS after trim): "
    "upstream vs tornado_c",
    args=("--json", "{json}"), quick_args=("-n", "1000"), pin=False, chart=False,
))
register(ScriptScenario(
    "longpoll_scale", "longpoll_scale.py",
    "19,000 long-poll clients in one process woken by one Future: time until all are "
    "answered, server CPU, a normal client meanwhile (upstream vs tornado_c)",
    args=("--json", "{json}"), quick_args=("--quick",), pin=False, chart=False,
))
register(ScriptScenario(
    "ws_big", "ws_big.py",
    "WebSocket at scale: one 64 MiB message in and out (time, server CPU, peak RSS), broadcast "
    "to 1,000 and 10,000 clients (time until all have it), idle connections up to the fd hard "
    "limit (kB per connection): upstream vs tornado_c (server on CPU 0, client processes on CPU 1)",
    args=("--json", "{json}"), quick_args=("--quick",), pin=False, chart=False,
))
register(ScriptScenario(
    "ws_idle", "ws_big.py",
    "memory per idle WebSocket connection (RSS delta / N, 5,000 connections after their "
    "handshake): upstream vs tornado_c",
    args=("--scenarios", "idle", "--idle", "5000", "--json", "{json}"),
    quick_args=("--quick",), pin=False, chart=False,
))
register(ScriptScenario(
    "ws_broadcast", "ws_big.py",
    "one 100 B WebSocket message to 1,000 and 10,000 clients (time until all have it, "
    "median of 3): upstream vs tornado_c (server on CPU 0, client processes on CPU 1)",
    args=("--scenarios", "broadcast", "--json", "{json}"), quick_args=("--quick",),
    pin=False, chart=False,
))
register(ScriptScenario(
    "hello_fixed_rate", "fixed_rate.py",
    "hello at a fixed offered load (open-loop client, 1000 req/s, 16 keep-alive "
    "connections): latency p50/p99/p99.9 and server CPU-us/request, upstream vs tornado_c",
    args=("--json", "{json}"), quick_args=("--quick",), pin=False, chart=False,
))
register(ScriptScenario(
    "http_client", "http_client.py",
    "HTTP client CPU-us/request and req/s (GET hello, GET 64 KiB; 8 concurrent fetch loops, "
    "the client pinned to the client CPU, a tornado_c server on the server CPU, the three "
    "clients interleaved): upstream's AsyncHTTPClient on asyncio vs the same under tornado_c vs "
    "aiohttp's client",
    args=("--cpu", "--json", "{json}"), quick_args=("--quick",), pin=False, chart=False,
))


def select(only=None, registry=None):
    """Scenarios to run, in registry order (or in the order of `only`, a
    comma-separated string or list).  Returns (scenarios, notes)."""
    registry = REGISTRY if registry is None else registry
    notes = []
    if only:
        names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only)]
        names = [n for n in names if n]
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise BenchError("unknown scenario(s): %s; known: %s"
                             % (", ".join(unknown), ", ".join(registry)))
        chosen = [registry[n] for n in names]
        for sc in chosen:
            missing = [f for f in sc.files() if not os.path.exists(f)]
            if missing:
                raise BenchError("scenario %s: missing file(s) %s" % (sc.name, ", ".join(missing)))
        return chosen, notes
    chosen = []
    for sc in registry.values():
        missing = [f for f in sc.files() if not os.path.exists(f)]
        if missing and getattr(sc, "optional", False):
            notes.append("%s skipped: %s not present" % (sc.name, os.path.relpath(missing[0], HERE)))
            continue
        chosen.append(sc)
    return chosen, notes


# --------------------------------------------------------------------------
# Settings


@dataclass
class Settings:
    duration: int = 10  # seconds measured per run (wrk: whole seconds)
    warmup: int = 2  # seconds of wrk before measuring (0: none)
    connections: int = 50
    threads: int = 1
    server_cpu: int | None = 0
    client_cpu: int | None = 1
    # runs per implementation, alternating order; the median is reported (a
    # shared machine's noise is ~10% run to run)
    repeat: int = 3
    start_timeout: float = 20.0
    # Before each measurement, wait up to this many seconds for the pinned
    # CPUs to be quiet (other load below OTHER_LOAD_WARN over 1 s); 0 = don't.
    quiet_wait: float = 0.0
    quick: bool = False

    @classmethod
    def quick_settings(cls, **kw):
        base = dict(duration=2, warmup=1, repeat=1, quick=True)
        base.update(kw)
        return cls(**base)

    def as_dict(self):
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------
# Parsing: /proc, wrk


def parse_proc_stat(text):
    """Parse /proc/<pid>/stat.  The command name (field 2) is in parentheses
    and may itself contain spaces and parentheses, so split after the LAST
    ')'.  Returns a dict with pid, comm, state, utime, stime (clock ticks)."""
    text = text.strip()
    lpar = text.find("(")
    rpar = text.rfind(")")
    if lpar < 0 or rpar < lpar:
        raise ValueError("not a /proc/<pid>/stat line: %r" % text[:80])
    rest = text[rpar + 1:].split()
    if len(rest) < 13:
        raise ValueError("truncated /proc/<pid>/stat line: %r" % text[:80])
    # rest[0] is field 3 (state); field k (1-based, proc(5)) is rest[k - 3]
    return {
        "pid": int(text[:lpar]),
        "comm": text[lpar + 1:rpar],
        "state": rest[0],
        "utime": int(rest[14 - 3]),
        "stime": int(rest[15 - 3]),
    }


def read_cpu_ticks(pid):
    """utime + stime of a live process, in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = parse_proc_stat(f.read())
    except FileNotFoundError:
        raise BenchError("server process %d is gone" % pid) from None
    return st["utime"] + st["stime"]


def parse_proc_status_ctxt(text):
    """(voluntary, nonvoluntary) context switches from /proc/<pid>/status."""
    vol = nonvol = None
    for line in text.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            vol = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            nonvol = int(line.split()[1])
    return vol, nonvol


def read_ctxt_switches(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return parse_proc_status_ctxt(f.read())
    except FileNotFoundError:
        return None, None


def parse_proc_stat_cpus(text):
    """Per-CPU (busy, total) clock ticks from /proc/stat: {cpu_number: (busy, total)}.
    busy = everything but idle and iowait (steal included: time the CPU was
    not ours to use)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"cpu(\d+)\s+(.*)", line)
        if not m:
            continue
        vals = [int(x) for x in m.group(2).split()]
        # user nice system idle iowait irq softirq steal guest guest_nice;
        # guest time is already included in user/nice.
        vals = (vals + [0] * 8)[:8]
        idle = vals[3] + vals[4]
        total = sum(vals)
        out[int(m.group(1))] = (total - idle, total)
    return out


def read_cpu_busy():
    try:
        with open("/proc/stat") as f:
            return parse_proc_stat_cpus(f.read())
    except OSError:
        return {}


def other_load_share(before, after, cpu, own_ticks):
    """Share of `cpu`'s time over the window spent on anything but our
    process (`own_ticks`): other processes, interrupts, hypervisor steal.
    None when unknown."""
    if cpu is None or cpu not in before or cpu not in after:
        return None
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    if total <= 0:
        return None
    return max(0.0, (busy - own_ticks) / total)


def wait_for_quiet(cpus, max_wait, own_pid=None, sample=1.0, threshold=None):
    """Wait (up to max_wait s) until each CPU in `cpus` spent at most
    `threshold` of a `sample`-second window on anything but `own_pid`.
    Returns (seconds waited, last measured other load per CPU)."""
    threshold = OTHER_LOAD_WARN if threshold is None else threshold
    cpus = [c for c in cpus if c is not None]
    t0 = time.monotonic()
    while True:
        before = read_cpu_busy()
        own0 = read_cpu_ticks(own_pid) if own_pid else 0
        time.sleep(sample)
        after = read_cpu_busy()
        own = (read_cpu_ticks(own_pid) - own0) if own_pid else 0
        # own_pid runs on the first CPU (the server's); nothing of ours on the others
        loads = {c: other_load_share(before, after, c, own if i == 0 else 0)
                 for i, c in enumerate(cpus)}
        waited = time.monotonic() - t0
        if all(v is None or v <= threshold for v in loads.values()) or waited >= max_wait:
            return waited, loads


def cpu_us_per_request(ticks, requests, clk_tck=CLK_TCK):
    """CPU microseconds per request from a tick delta; None without requests."""
    if not requests or requests <= 0:
        return None
    return ticks * 1e6 / clk_tck / requests


def parse_wrk_json(stdout):
    """The dict printed by wrk_report.lua (line 'WRK_JSON {...}'), or None."""
    found = None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("WRK_JSON "):
            found = json.loads(line[len("WRK_JSON "):])
    return found


_TIME_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
_SIZE_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_wrk_time(text):
    """'812.00us' / '9.12ms' / '1.20s' / '2.00m' -> microseconds."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not m:
        raise ValueError("not a wrk time: %r" % text)
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def parse_wrk_text(stdout):
    """Parse wrk's human-readable report (with --latency).  Used when the Lua
    reporter's line is missing, and as a cross-check.  Returns a dict shaped
    like parse_wrk_json's (durations rounded as wrk prints them)."""
    out = {"errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
           "latency_us": {}}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h), ", stdout, re.M)
    if not m:
        raise ValueError("no 'N requests in T' line in wrk output")
    out["requests"] = int(m.group(1))
    out["duration_us"] = float(m.group(2)) * _TIME_UNITS[m.group(3)]
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", stdout, re.M)
    if m:
        out["requests_per_sec_printed"] = float(m.group(1))
    t = r"([0-9.]+(?:us|ms|s|m|h))"
    m = re.search(r"^\s*Latency\s+%s\s+%s\s+%s" % (t, t, t), stdout, re.M)
    if m:
        out["latency_us"]["mean"] = parse_wrk_time(m.group(1))
        out["latency_us"]["stdev"] = parse_wrk_time(m.group(2))
        out["latency_us"]["max"] = parse_wrk_time(m.group(3))
    dist = stdout.split("Latency Distribution", 1)
    if len(dist) == 2:
        for pm in re.finditer(r"^\s*([0-9.]+)%\s+(\S+)\s*$", dist[1], re.M):
            p = pm.group(1)
            p = p[:-4] if p.endswith(".000") else p
            p = p.rstrip("0").rstrip(".") if "." in p else p
            out["latency_us"]["p" + p] = parse_wrk_time(pm.group(2))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout)
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
            out["errors"][k] = int(v)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if m:
        out["errors"]["status"] = int(m.group(1))
    return out


def summarize_wrk(stdout):
    """Best available summary of one wrk run: the Lua JSON if present, else
    the text report.  Adds 'requests_per_sec' and 'source'."""
    data = parse_wrk_json(stdout)
    source = "lua"
    if data is None:
        data = parse_wrk_text(stdout)
        source = "text"
    dur = data["duration_us"]
    data["requests_per_sec"] = data["requests"] / (dur / 1e6) if dur > 0 else None
    data["source"] = source
    return data


# --------------------------------------------------------------------------
# Ratios and aggregation


def ratios(upstream, tornado_c):
    """tornado_c vs upstream from two run summaries (dicts with
    requests_per_sec, cpu_us_per_request, latency_us).  A missing/failed side
    gives None.  rps: >1 = tornado_c serves more; cpu_less: >1 = tornado_c
    uses that many times less CPU per request."""

    def get(d, key):
        if not d or not d.get("ok"):
            return None
        return d.get(key)

    def div(a, b):
        if a is None or b is None or b == 0:
            return None
        return a / b

    def lat(d):
        return (d.get("latency_us") or {}) if d and d.get("ok") else {}

    up_lat, tc_lat = lat(upstream), lat(tornado_c)
    return {
        "rps": div(get(tornado_c, "requests_per_sec"), get(upstream, "requests_per_sec")),
        "cpu_less": div(get(upstream, "cpu_us_per_request"), get(tornado_c, "cpu_us_per_request")),
        "p50_lower": div(up_lat.get("p50"), tc_lat.get("p50")),
        "p99_lower": div(up_lat.get("p99"), tc_lat.get("p99")),
    }


def aggregate(runs):
    """Combine the runs of one implementation.  Runs that other load on the
    server CPU disturbed (``disturbed``) are set aside when at least one run
    was undisturbed; the median of each metric over the runs used is
    reported, with min-max.  ok only if every run was ok."""
    if not runs:
        return {"ok": False, "error": "not run"}
    good = [r for r in runs if r.get("ok")]
    if len(good) != len(runs):
        bad = next(r for r in runs if not r.get("ok"))
        return {"ok": False, "error": bad.get("error", "a run failed"), "runs": len(runs)}
    clean = [r for r in good if not r.get("disturbed")]
    used = clean or good
    loads = [r["server_cpu_other_load"] for r in good
             if r.get("server_cpu_other_load") is not None]
    client = [r["client_cpu_other_load"] for r in good
              if r.get("client_cpu_other_load") is not None]

    def med(getter):
        vals = [getter(r) for r in used]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    out = {
        "ok": True,
        "runs": len(runs),
        "runs_used": len(used),
        "runs_disturbed": len(good) - len(clean),
        "other_load_max": max(loads) if loads else None,
        "client_other_load_max": max(client) if client else None,
        "statistic": "median" if len(used) > 1 else "single run",
        "requests": med(lambda r: r["requests"]),
        "requests_per_sec": med(lambda r: r["requests_per_sec"]),
        "cpu_us_per_request": med(lambda r: r["cpu_us_per_request"]),
        "latency_us": {},
        "warnings": sorted({w for r in used for w in r.get("warnings", [])}),
    }
    for key in ("p50", "p99", "mean"):
        out["latency_us"][key] = med(lambda r, k=key: (r.get("latency_us") or {}).get(k))
    for key in ("requests_per_sec", "cpu_us_per_request"):
        vals = [r[key] for r in used if r.get(key) is not None]
        out[key + "_range"] = [min(vals), max(vals)] if len(vals) > 1 else None
    return out


# --------------------------------------------------------------------------
# Processes


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd, cpu):
    """Prefix `cmd` with taskset (which execs it: same pid)."""
    if cpu is None:
        return list(cmd)
    taskset = shutil.which("taskset")
    if taskset is None:
        raise BenchError("taskset not found (Debian package util-linux)")
    return [taskset, "-c", str(cpu), *cmd]


def tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else "...\n" + text[-limit:]


class Server:
    """One server process.  `pid` is the Python interpreter's own pid (taskset
    execs it), checked against /proc/<pid>/cmdline once it is listening."""

    def __init__(self, argv, port, env, workdir, cpu=None, label="server"):
        self.argv = list(argv)
        self.port = port
        self.env = env
        self.workdir = workdir
        self.cpu = cpu
        self.label = label
        self.proc = None
        self.stdout_path = os.path.join(workdir, "%s.stdout" % label)
        self.stderr_path = os.path.join(workdir, "%s.stderr" % label)
        self.command = pinned(self.argv, cpu)

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=self.env, cwd=self.workdir, start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
            self.check_identity()
        except BaseException:
            self.stop()  # never leave a server behind
            raise
        return self

    def died(self, what):
        code = self.proc.returncode
        return BenchError("%s %s (exit code %s); its stderr:\n%s"
                          % (self.label, what, code, tail(self.stderr_path) or "(empty)"))

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise self.died("exited before accepting connections")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(
                    "%s did not accept connections on 127.0.0.1:%d within %.0f s; its stderr:\n%s"
                    % (self.label, self.port, timeout, tail(self.stderr_path) or "(empty)"))
            time.sleep(0.05)

    def check_identity(self):
        """The pid we measure must be the interpreter running the app, not a
        wrapper (taskset execs, so this holds unless something changes)."""
        try:
            with open("/proc/%d/cmdline" % self.pid, "rb") as f:
                cmdline = f.read().split(b"\0")
        except FileNotFoundError:
            raise self.died("vanished") from None
        want = os.fsencode(self.argv[-1])  # last argument of the server command
        if want not in cmdline or b"taskset" in os.path.basename(cmdline[0]):
            raise BenchError("pid %d is not the server (cmdline %r)" % (self.pid, cmdline))
        if self.cpu is not None:
            aff = os.sched_getaffinity(self.pid)
            if aff != {self.cpu}:
                raise BenchError("server pid %d affinity is %s, not {%d}" % (self.pid, aff, self.cpu))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM (the default action ends a Tornado app), then SIGKILL.
        Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def http_check(port, scenario, timeout=10.0):
    """One request before measuring: the app must answer as expected (a fast
    404 would otherwise look like a great result)."""
    if scenario.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(scenario.check_method, scenario.path, body=scenario.check_body,
                     headers=dict(scenario.check_headers))
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    what = "%s %s" % (scenario.check_method, scenario.path)
    if resp.status != scenario.expect_status:
        raise BenchError("%s answered %d, expected %d: %r"
                         % (what, resp.status, scenario.expect_status, body[:200]))
    if scenario.expect_body is not None and body != scenario.expect_body:
        raise BenchError("%s: unexpected body %r" % (what, body[:200]))
    if scenario.expect_json is not None:
        try:
            got = json.loads(body)
        except ValueError:
            raise BenchError("%s: body is not JSON: %r" % (what, body[:200])) from None
        if got != scenario.expect_json:
            raise BenchError("%s: unexpected JSON %r" % (what, got))
    return {"status": resp.status, "bytes": len(body),
            "content_type": resp.getheader("Content-Type")}


def wrk_duration_arg(sec):
    """wrk's -d takes whole seconds ('2.5s' and '500ms' are usage errors)."""
    if sec != int(sec) or sec < 1:
        raise BenchError("wrk durations are whole seconds >= 1, not %r" % (sec,))
    return "%ds" % int(sec)


def build_wrk(url, duration, connections, threads, cpu, script=None, latency=True):
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk not found (Debian package wrk)")
    cmd = [wrk, "-t%d" % threads, "-c%d" % connections, "-d" + wrk_duration_arg(duration)]
    if latency:
        cmd.append("--latency")
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    return pinned(cmd, cpu)


def combined_lua(scenario, workdir):
    """The scenario's own Lua (if any) followed by the JSON reporter."""
    with open(REPORTER_LUA) as f:
        reporter = f.read()
    if not scenario.wrk_script:
        return REPORTER_LUA
    with open(os.path.join(HERE, scenario.wrk_script)) as f:
        own = f.read()
    path = os.path.join(workdir, "%s.lua" % scenario.name)
    with open(path, "w") as f:
        f.write(own + "\n-- appended by the harness\n" + reporter)
    return path


def server_argv(impl, scenario, port, python=None):
    python = python or sys.executable
    app_cmd = [scenario.app_path(), *scenario.app_args, "--port=%d" % port]
    if impl == "upstream" or impl in PEERS:
        return [python, *app_cmd]
    if impl == "tornado_c":
        return [python, "-m", "tornado_c", *app_cmd]
    raise ValueError("unknown implementation %r" % impl)


def run_http_once(impl, scenario, settings, env, workdir, log=print):
    """One implementation, one server: start, check, warm up, measure, stop.
    Never raises for a failed run: returns {'ok': False, 'error': ...}."""
    port = free_port()
    url = scenario.url(port)
    argv = server_argv(impl, scenario, port)
    result = {"implementation": impl, "ok": False, "command": " ".join(argv), "warnings": []}
    server = None
    try:
        server = Server(argv, port, env, workdir, cpu=settings.server_cpu,
                        label="%s-%s" % (scenario.name, impl))
        result["command"] = " ".join(server.command)
        lua = combined_lua(scenario, workdir)
        server.start(settings.start_timeout)
        result["pid"] = server.pid
        result["check"] = http_check(port, scenario)
        if settings.warmup > 0:
            # the scenario's own requests (a POST scenario warmed up with GETs
            # would get 405s)
            warm = subprocess.run(
                build_wrk(url, settings.warmup, settings.connections, settings.threads,
                          settings.client_cpu, script=lua, latency=False),
                capture_output=True, text=True, timeout=settings.warmup + 60)
            if warm.returncode != 0:
                raise BenchError("warm-up wrk failed: %s" % (warm.stderr or warm.stdout)[-2000:])
        if not server.alive():
            raise server.died("died during warm-up")
        cmd = build_wrk(url, settings.duration, settings.connections, settings.threads,
                        settings.client_cpu, script=lua)
        result["wrk_command"] = " ".join(cmd)
        if settings.quiet_wait > 0:
            waited, loads = wait_for_quiet((settings.server_cpu, settings.client_cpu),
                                           settings.quiet_wait, own_pid=server.pid)
            result["quiet_wait_s"] = waited
            result["other_load_before"] = {str(k): v for k, v in loads.items()}
        ctx0 = read_ctxt_switches(server.pid)
        cpus0 = read_cpu_busy()
        # wrk is the only child reaped during the window: its CPU time is the
        # delta of RUSAGE_CHILDREN.
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        ticks0 = read_cpu_ticks(server.pid)
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=settings.duration + 120)
        ticks1 = read_cpu_ticks(server.pid)
        wall = time.monotonic() - t0
        cpus1 = read_cpu_busy()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        ctx1 = read_ctxt_switches(server.pid)
        if proc.returncode != 0:
            raise BenchError("wrk failed (exit %d): %s"
                             % (proc.returncode, (proc.stderr or proc.stdout)[-2000:]))
        if not server.alive():
            raise server.died("died during the measurement")
        summary = summarize_wrk(proc.stdout)
        ticks = ticks1 - ticks0
        result.update({
            "requests": summary["requests"],
            "duration_s": summary["duration_us"] / 1e6,
            "requests_per_sec": summary["requests_per_sec"],
            "latency_us": summary["latency_us"],
            "errors": summary["errors"],
            "bytes": summary.get("bytes"),
            "wrk_summary_source": summary["source"],
            "server_cpu_ticks": ticks,
            "server_cpu_s": ticks / CLK_TCK,
            "cpu_window_s": wall,
            "server_cpu_utilisation": (ticks / CLK_TCK) / wall if wall > 0 else None,
            "cpu_us_per_request": cpu_us_per_request(ticks, summary["requests"]),
            "clk_tck": CLK_TCK,
            # Interference: what else ran on the server's CPU meanwhile.
            "server_cpu_other_load": other_load_share(cpus0, cpus1, settings.server_cpu, ticks),
            "server_nonvoluntary_ctxt_switches": (
                ctx1[1] - ctx0[1] if None not in (ctx0[1], ctx1[1]) else None),
            "wrk_stdout": proc.stdout,
        })
        if summary["requests"] <= 0:
            raise BenchError("wrk completed no requests")
        errs = summary["errors"]
        if errs.get("status"):
            raise BenchError("%d responses were not 2xx/3xx" % errs["status"])
        result["wrk_cpu_s"] = wrk_cpu_s
        # ...and on wrk's CPU: recorded only.  wrk needs ~10% of its CPU here
        # and, sleeping most of the time, is scheduled promptly even on a
        # busy CPU, so this does not set a run aside.
        result["client_cpu_other_load"] = other_load_share(
            cpus0, cpus1, settings.client_cpu, round(wrk_cpu_s * CLK_TCK))
        other = result["server_cpu_other_load"]
        result["disturbed"] = other is not None and other > OTHER_LOAD_WARN
        sock_errs = {k: v for k, v in errs.items() if k != "status" and v}
        if sock_errs:
            result["warnings"].append("socket errors: %s" % ", ".join(
                "%s %d" % kv for kv in sorted(sock_errs.items())))
        result["ok"] = True
    except (BenchError, OSError, subprocess.SubprocessError, ValueError) as exc:
        result["error"] = str(exc)
        log("  %s/%s FAILED: %s" % (scenario.name, impl, str(exc).splitlines()[0]))
    finally:
        if server is not None:
            code = server.stop()
            result["exit_code"] = code
            stderr_text = tail(server.stderr_path)
            if stderr_text.strip():
                result["server_stderr_tail"] = stderr_text
            if result["ok"] and code not in (-signal.SIGTERM, 0):
                result["warnings"].append("server exit code %s on SIGTERM" % code)
    return result


def run_http_scenario(scenario, settings, env, workdir, impls=IMPLEMENTATIONS, log=print):
    runs = {impl: [] for impl in impls}
    for i in range(settings.repeat):
        order = list(impls) if i % 2 == 0 else list(reversed(impls))
        for impl in order:
            log("  %s / %s%s ..." % (scenario.name, impl,
                                    " (run %d/%d)" % (i + 1, settings.repeat)
                                    if settings.repeat > 1 else ""))
            r = run_http_once(impl, scenario, settings, env, workdir, log=log)
            runs[impl].append(r)
            if r["ok"]:
                log("    %.0f req/s, p50 %.2f ms, p99 %.2f ms, %.1f CPU-us/req"
                    % (r["requests_per_sec"], r["latency_us"].get("p50", 0) / 1e3,
                       r["latency_us"].get("p99", 0) / 1e3, r["cpu_us_per_request"]))
    results = {impl: aggregate(runs[impl]) for impl in impls}
    out = {
        "name": scenario.name,
        "kind": "http",
        "description": scenario.description,
        "app": scenario.app,
        "app_args": list(scenario.app_args),
        "path": scenario.path,
        "results": results,
        "runs": runs,
        "ratios": ratios(results.get("upstream"), results.get("tornado_c")),
    }
    return out


def run_script_scenario(scenario, settings, env, workdir, log=print):
    log("  %s (script %s) ..." % (scenario.name, scenario.script))
    json_path = os.path.join(workdir, "%s.json" % scenario.name)
    args = [a.replace("{json}", json_path) for a in scenario.args]
    uses_file = any("{json}" in a for a in scenario.args)
    if settings.quick:
        args += list(scenario.quick_args)
    cmd = [sys.executable, scenario.script_path(), *args]
    out = {"name": scenario.name, "kind": "script", "description": scenario.description,
           "script": scenario.script, "command": " ".join(cmd), "ok": False}
    try:
        if scenario.pin:
            cmd = pinned(cmd, settings.server_cpu)
            out["command"] = " ".join(cmd)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir,
                              timeout=scenario.timeout)
        if proc.returncode != 0:
            raise BenchError("exit code %d; stderr:\n%s"
                             % (proc.returncode, (proc.stderr or proc.stdout)[-3000:]))
        if uses_file:
            with open(json_path) as f:
                data = json.load(f)
        else:
            data = parse_json_stdout(proc.stdout)
        out["result"] = data
        if scenario.summarize is not None and isinstance(data, dict):
            data.setdefault("comparisons", scenario.summarize(data))
        out["chart"] = scenario.chart
        out["ok"] = True
        if proc.stdout.strip() and uses_file:
            out["stdout"] = proc.stdout[-4000:]
    except (BenchError, OSError, subprocess.SubprocessError, ValueError) as exc:
        out["error"] = str(exc)
        log("  %s FAILED: %s" % (scenario.name, str(exc).splitlines()[0]))
    return out


def parse_json_stdout(stdout):
    """A script's JSON result from its stdout: the whole output, or else the
    last line that is a JSON object."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise BenchError("no JSON found in the script's output: %r" % text[-300:])


# --------------------------------------------------------------------------
# Machine facts


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


_PROBE = r"""
import json, sys
out = {"python": sys.version.split()[0], "executable": sys.executable}
try:
    import tornado
    out["tornado"] = tornado.version
    out["tornado_path"] = tornado.__file__
except Exception as exc:
    out["tornado_error"] = repr(exc)
try:
    import tornado_c
    out["tornado_c_versions"] = tornado_c.versions()
    out["tornado_c_path"] = tornado_c.__file__
except Exception as exc:
    out["tornado_c_error"] = repr(exc)
print(json.dumps(out))
"""


def parse_info_components(text):
    """{component: state} from `python -m tornado_c --info` output."""
    comps = {}
    in_comps = False
    for line in text.splitlines():
        if line.strip() == "components:":
            in_comps = True
            continue
        if in_comps and line.startswith("  "):
            parts = line.split(None, 1)
            if len(parts) == 2:
                state = re.split(r"\s{2,}", parts[1].strip())[0]
                comps[parts[0]] = state
    return comps


def machine_info(env, workdir):
    info = {
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "clk_tck": CLK_TCK,
        "loadavg_start": loadavg(),
    }
    wrk = shutil.which("wrk")
    if wrk:
        p = subprocess.run([wrk, "-v"], capture_output=True, text=True)
        info["wrk"] = (p.stdout + p.stderr).splitlines()[0].strip() if (p.stdout + p.stderr) else "?"
    else:
        info["wrk"] = None
    try:
        p = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                           env=env, cwd=workdir, timeout=60)
        info.update(json.loads(p.stdout) if p.returncode == 0 else
                    {"probe_error": p.stderr[-2000:]})
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        info["probe_error"] = repr(exc)
    try:
        p = subprocess.run([sys.executable, "-m", "tornado_c", "--info"], capture_output=True,
                           text=True, env=env, cwd=workdir, timeout=60)
        info["tornado_c_info"] = (p.stdout + p.stderr).strip()
        info["tornado_c_info_exit"] = p.returncode
        comps = parse_info_components(p.stdout)
        info["tornado_c_components"] = comps
        info["tornado_c_active"] = sorted(k for k, v in comps.items() if v == "active")
    except (OSError, subprocess.SubprocessError) as exc:
        info["tornado_c_info"] = "failed: %r" % (exc,)
    info["tornado_c_disable_env"] = env.get("TORNADO_C_DISABLE")
    return info


# --------------------------------------------------------------------------
# Whole run


def utc_stamp(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def run_all(scenarios, settings, env=None, log=print, notes=()):
    env = dict(os.environ if env is None else env)
    started = datetime.datetime.now(datetime.timezone.utc)
    workdir = tempfile.mkdtemp(prefix="tornado_c-bench-")
    try:
        if settings.server_cpu is not None or settings.client_cpu is not None:
            cpus = os.sched_getaffinity(0)
            for cpu in (settings.server_cpu, settings.client_cpu):
                if cpu is not None and cpu not in cpus:
                    raise BenchError("CPU %d is not available (allowed: %s); use --server-cpu/"
                                     "--client-cpu or --no-pin" % (cpu, sorted(cpus)))
        pinning = settings.server_cpu is not None or settings.client_cpu is not None
        if pinning and shutil.which("taskset") is None:
            raise BenchError("taskset not found (Debian package util-linux); "
                             "install it or use --no-pin")
        if any(sc.kind == "http" for sc in scenarios) and shutil.which("wrk") is None:
            raise BenchError("wrk not found: install the Debian package wrk "
                             "(scripts/bench.sh does), or run only script scenarios")
        machine = machine_info(env, workdir)
        results = []
        for sc in scenarios:
            if sc.kind == "http":
                results.append(run_http_scenario(sc, settings, env, workdir,
                                                 impls=sc.implementations, log=log))
            else:
                results.append(run_script_scenario(sc, settings, env, workdir, log=log))
        machine["loadavg_end"] = loadavg()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finished = datetime.datetime.now(datetime.timezone.utc)
    return {
        "schema": SCHEMA,
        "timestamp": utc_stamp(started),
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "settings": settings.as_dict(),
        "machine": machine,
        "notes": list(notes),
        "scenarios": results,
    }


# --------------------------------------------------------------------------
# Output


def _f(v, fmt="%.0f", none="-"):
    return none if v is None else fmt % v


def _int_commas(v):
    return "-" if v is None else "{:,.0f}".format(v)


def _oneline(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def error_summary(text, limit=240):
    """One line for a table: the error's first line and, for a multi-line
    error (stderr of a dead server), its last line (the exception)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return "?"
    out = lines[0] if len(lines) == 1 else "%s ... %s" % (lines[0], lines[-1])
    return _oneline(out, limit)


def _impls_of(sc):
    """The implementations a scenario's results hold: upstream and tornado_c
    first, then peers, then anything else in the order stored."""
    got = list(sc.get("results") or {})
    order = list(IMPLEMENTATIONS) + list(PEERS)
    return sorted(got, key=lambda k: order.index(k) if k in order else len(order))


def render_markdown(doc):
    m = doc.get("machine", {})
    s = doc.get("settings", {})
    lines = []
    lines.append("# tornado_c benchmarks (%s)" % doc.get("timestamp", "?"))
    lines.append("")
    tcv = m.get("tornado_c_versions") or {}
    lines.append("- Machine: %s, %s CPUs, Linux %s; Python %s; tornado %s; tornado_c %s "
                 "(libuv %s, llhttp %s)%s" % (
                     m.get("cpu_model", "?"), m.get("nproc", "?"), m.get("kernel", "?"),
                     m.get("python", "?"), m.get("tornado", "?"), tcv.get("tornado_c", "?"),
                     tcv.get("libuv", "?"), tcv.get("llhttp", "?"),
                     ", DEBUG build" if tcv.get("debug_build") else ""))
    if m.get("tornado_c_components"):
        lines.append("- tornado_c components: " + ", ".join(
            "%s: %s" % kv for kv in m["tornado_c_components"].items()))
    elif m.get("tornado_c_error") or m.get("tornado_c_info"):
        lines.append("- tornado_c: %s" % _oneline(m.get("tornado_c_error") or m.get("tornado_c_info")))
    pin = ("server on CPU %s, wrk on CPU %s" % (s.get("server_cpu"), s.get("client_cpu"))
           if s.get("server_cpu") is not None else "not pinned")
    lines.append("- wrk: %s threads, %s keep-alive connections, %s s measured after %s s "
                 "warm-up, %s run(s) per implementation%s; %s; load average at start %s" % (
                     s.get("threads"), s.get("connections"), s.get("duration"), s.get("warmup"),
                     s.get("repeat"),
                     " in alternating order (median shown, min-max in brackets)"
                     if (s.get("repeat") or 1) > 1 else "",
                     pin, m.get("loadavg_start")))
    http_sc = [sc for sc in doc.get("scenarios", []) if sc.get("kind") == "http"]
    if http_sc:
        tornado_sc = [sc for sc in http_sc if set(sc.get("results") or {}) & set(IMPLEMENTATIONS)]
        if tornado_sc:
            args = " ".join(tornado_sc[0].get("app_args") or [])
            lines.append("- Servers: `python APP %s --port=N` (upstream) vs `python -m tornado_c "
                         "APP %s --port=N`, the same unmodified app file" % (args, args))
        peers = [impl for impl in PEERS if any(impl in (sc.get("results") or {}) for sc in http_sc)]
        if peers:
            lines.append("- For reference, %s: the same response from that framework's own app "
                         "(`python APP --port=N`), one server process pinned the same way"
                         % ", ".join(peers))
    lines.append("- CPU-µs/req = server utime+stime (/proc/<pid>/stat) over the measured "
                 "window / requests completed. Ratios are tornado_c vs upstream. A run is "
                 "\"disturbed\" when other processes took > %.0f%% of the server's CPU meanwhile; "
                 "disturbed runs are set aside when an undisturbed one exists."
                 % (100 * OTHER_LOAD_WARN))
    client = [r.get("client_cpu_other_load") for sc in http_sc
              for runs in (sc.get("runs") or {}).values() for r in runs
              if r.get("client_cpu_other_load") is not None]
    if client:
        lines.append("- Other load on wrk's CPU during the runs: %.0f%%-%.0f%% (recorded; wrk "
                     "itself needs little CPU)" % (100 * min(client), 100 * max(client)))
    for note in doc.get("notes", []):
        lines.append("- Note: %s" % note)
    lines.append("")

    http = [sc for sc in doc.get("scenarios", []) if sc.get("kind") == "http"]
    if http:
        lines.append("| scenario | implementation | req/s | p50 ms | p99 ms | CPU-µs/req | tornado_c vs upstream |")
        lines.append("|---|---|---:|---:|---:|---:|---|")
        for sc in http:
            for impl in _impls_of(sc):
                r = sc["results"].get(impl)
                if r is None:
                    continue
                if not r.get("ok"):
                    lines.append("| %s | %s | FAILED: %s | | | | |" % (
                        sc["name"], impl, error_summary(r.get("error", "?")).replace("|", "/")))
                    continue
                lat = r.get("latency_us") or {}
                cmp_ = ""
                if impl == "tornado_c":
                    ra = sc.get("ratios") or {}
                    if ra.get("rps") is not None:
                        cmp_ = "%.2fx req/s, %.2fx less CPU/req" % (ra["rps"], ra["cpu_less"])
                    else:
                        cmp_ = "n/a (a run failed)"
                warn = list(r.get("warnings") or [])
                nd = r.get("runs_disturbed") or 0
                if nd:
                    if nd == r.get("runs", 1):
                        warn.append("%s disturbed by other load on the server CPU (up to "
                                    "%.0f%%): unreliable" % (
                                        "the run was" if nd == 1 else "all %d runs were" % nd,
                                        100 * (r.get("other_load_max") or 0)))
                    else:
                        warn.append("%d of %d runs set aside: other load on the server CPU "
                                    "(up to %.0f%%)" % (nd, r["runs"],
                                                        100 * (r.get("other_load_max") or 0)))
                if warn:
                    cmp_ += (" " if cmp_ else "") + "(%s)" % "; ".join(warn)
                rps = _int_commas(r.get("requests_per_sec"))
                cpu = _f(r.get("cpu_us_per_request"), "%.1f")
                if r.get("requests_per_sec_range"):
                    rps += " (%s-%s)" % tuple(_int_commas(v) for v in r["requests_per_sec_range"])
                if r.get("cpu_us_per_request_range"):
                    cpu += " (%s-%s)" % tuple(_f(v, "%.1f") for v in r["cpu_us_per_request_range"])
                lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    sc["name"], impl, rps,
                    _f(lat.get("p50") and lat["p50"] / 1e3, "%.2f"),
                    _f(lat.get("p99") and lat["p99"] / 1e3, "%.2f"),
                    cpu, cmp_))
        lines.append("")

    for sc in doc.get("scenarios", []):
        if sc.get("kind") != "script":
            continue
        lines.append("**%s** — %s" % (sc["name"], sc.get("description", "")))
        lines.append("")
        if not sc.get("ok"):
            lines.append("FAILED: %s" % error_summary(sc.get("error", "?"), 400))
            lines.append("")
            continue
        res = sc.get("result") or {}
        comps = res.get("comparisons") if isinstance(res, dict) else None
        if isinstance(res, dict) and isinstance(res.get("notes"), list):
            for note in res["notes"]:  # a script's own remarks, one line each
                lines.append("- %s" % _oneline(note, 300))
            lines.append("")
        if comps:
            impls = []
            for c in comps:
                for k in c.get("values", {}):
                    if k not in impls:
                        impls.append(k)
            units = {c.get("unit", "") for c in comps}
            rlabels = {c.get("ratio_label") or "ratio" for c in comps}
            one_unit = len(units) == 1
            one_label = len(rlabels) == 1
            head = ["case"] + (["unit"] if not one_unit else [])
            head += ["%s %s" % (i, next(iter(units))) if one_unit else i for i in impls]
            head.append(next(iter(rlabels)) if one_label else "ratio")
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|---|" + ("---|" if not one_unit else "") + "---:|" * (len(impls) + 1))
            for c in comps:
                vals = c.get("values", {})
                cells = [c.get("label", "?")] + ([c.get("unit", "")] if not one_unit else [])
                for i in impls:
                    v = vals.get(i)
                    cells.append(_int_commas(v) if v is not None and v >= 100 else _f(v, "%.2f"))
                ratio = _f(c.get("ratio"), "%.2fx")
                if not one_label and c.get("ratio") is not None:
                    ratio += " (%s)" % (c.get("ratio_label") or "ratio")
                cells.append(ratio)
                lines.append("| " + " | ".join(cells) + " |")
        else:
            items = list(flatten(res))
            for key, val in items[:FLATTEN_LIMIT]:
                lines.append("- %s: %s" % (key, val))
            if len(items) > FLATTEN_LIMIT:
                lines.append("- ... %d more values in the JSON" % (len(items) - FLATTEN_LIMIT))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def flatten(obj, prefix=""):
    """(dotted key, scalar) pairs of a JSON value, for scripts without
    'comparisons'."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, "%s.%s" % (prefix, k) if prefix else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from flatten(v, "%s[%d]" % (prefix, i))
    else:
        yield prefix, obj


def render_png(doc, path):
    """Bar chart: req/s and CPU-µs/req per HTTP scenario (upstream vs
    tornado_c, ratio annotated), plus MB/s for script comparisons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    http = [sc for sc in doc.get("scenarios", []) if sc.get("kind") == "http"]
    comp = [sc for sc in doc.get("scenarios", [])
            if sc.get("kind") == "script" and sc.get("ok") and sc.get("chart", True)
            and isinstance(sc.get("result"), dict) and sc["result"].get("comparisons")]
    panels = (2 if http else 0) + len(comp)
    if panels == 0:
        return None
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6), squeeze=False)
    axes = list(axes[0])
    colors = {"upstream": "#8c8c8c", "tornado_c": "#d9534f", "aiohttp": "#5bc0de",
              "starlette": "#5cb85c"}
    width = 0.38
    if http:
        names = [sc["name"] for sc in http]
        for ax, key, title, ratio_key, ratio_fmt in (
            (axes[0], "requests_per_sec", "requests/s (higher is better)", "rps", "%.2fx"),
            (axes[1], "cpu_us_per_request", "server CPU-µs per request (lower is better)",
             "cpu_less", "%.2fx less"),
        ):
            seen = set()
            for i, sc in enumerate(http):
                impls = _impls_of(sc)
                for j, impl in enumerate(impls):
                    r = sc["results"].get(impl) or {}
                    v = r.get(key) if r.get("ok") else 0
                    rng = r.get(key + "_range") if r.get("ok") else None
                    lo, hi = (v - rng[0], rng[1] - v) if rng else (0, 0)
                    x = i + (j - (len(impls) - 1) / 2) * width
                    b = ax.bar([x], [v or 0], width, color=colors.get(impl, "#f0ad4e"),
                               label=None if impl in seen else impl,
                               yerr=[[lo], [hi]] if (lo or hi) else None, capsize=3,
                               error_kw={"elinewidth": 0.8, "ecolor": "#333333"})[0]
                    seen.add(impl)
                    if not v:
                        ax.text(b.get_x() + b.get_width() / 2, 0, "FAILED", ha="center",
                                va="bottom", rotation=90, fontsize=8, color="red")
                    elif impl == "tornado_c":
                        ra = (sc.get("ratios") or {}).get(ratio_key)
                        if ra is not None:
                            ax.annotate(ratio_fmt % ra, (b.get_x() + b.get_width() / 2, v + hi),
                                        ha="center", va="bottom", fontsize=9,
                                        xytext=(0, 2), textcoords="offset points")
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names)
            ax.set_xlim(-0.75, len(names) - 0.25)
            ax.set_title(title, fontsize=10)
            ax.margins(y=0.15)
            ax.legend(fontsize=8)
        axes = axes[2:]
    for ax, sc in zip(axes, comp):
        comps = sc["result"]["comparisons"]
        impls = []
        for c in comps:
            for k in c.get("values", {}):
                if k not in impls:
                    impls.append(k)
        w = 0.8 / max(1, len(impls))
        palette = ["#d9534f", "#8c8c8c", "#5bc0de", "#5cb85c", "#f0ad4e"]
        for j, impl in enumerate(impls):
            xs = [i + (j - (len(impls) - 1) / 2) * w for i in range(len(comps))]
            vals = [c["values"].get(impl) or 0 for c in comps]
            ax.bar(xs, vals, w, label=impl, color=palette[j % len(palette)])
        for i, c in enumerate(comps):
            if c.get("ratio") is not None:
                top = max(v for v in c["values"].values() if v)
                ax.annotate("%.2fx" % c["ratio"], (i, top), ha="center", va="bottom",
                            fontsize=9, xytext=(0, 2), textcoords="offset points")
        ax.set_yscale("log")
        tops = [v for c in comps for v in c["values"].values() if v]
        if tops:
            ax.set_ylim(top=max(tops) * 4)  # room for the ratio labels and the legend
        ax.set_xticks(range(len(comps)))
        ax.set_xticklabels([c.get("label", "?") for c in comps], fontsize=8)
        ax.set_title("%s: %s (log scale)" % (sc["name"], comps[0].get("unit", "")), fontsize=10)
        ax.legend(fontsize=8, ncol=len(impls), loc="upper left")
    m = doc.get("machine", {})
    fig.suptitle("tornado_c vs upstream Tornado %s — %s, %s" % (
        m.get("tornado", "?"), m.get("cpu_model", "?"), doc.get("timestamp", "")), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def strip_bulky(doc):
    """The JSON written to disk keeps everything except wrk's raw text of
    successful runs (kept for failed ones)."""
    doc = json.loads(json.dumps(doc))
    for sc in doc.get("scenarios", []):
        for runs in (sc.get("runs") or {}).values():
            for r in runs:
                if r.get("ok"):
                    r.pop("wrk_stdout", None)
        for r in (sc.get("results") or {}).values():
            if r.get("ok"):
                r.pop("wrk_stdout", None)
    return doc


def write_outputs(doc, out_dir, png=True):
    os.makedirs(out_dir, exist_ok=True)
    clean = strip_bulky(doc)
    text = json.dumps(clean, indent=1, sort_keys=False) + "\n"
    stamped = os.path.join(out_dir, "%s.json" % doc["timestamp"])
    paths = {"json": stamped, "latest_json": os.path.join(out_dir, "latest.json"),
             "latest_md": os.path.join(out_dir, "latest.md")}
    for p in (stamped, paths["latest_json"]):
        with open(p, "w") as f:
            f.write(text)
    md = render_markdown(clean)
    with open(paths["latest_md"], "w") as f:
        f.write(md)
    if png:
        try:
            p = render_png(clean, os.path.join(out_dir, "latest.png"))
            if p:
                paths["latest_png"] = p
        except ImportError as exc:
            paths["png_error"] = "matplotlib not available: %s" % exc
    return paths, md
