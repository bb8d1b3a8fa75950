"""Memory per open connection, upstream Tornado vs tornado_c, and where it goes.

The server is benchmarks/apps/longpoll_app.py (a plain Tornado app) in a
subprocess: ``python app`` (upstream) or ``python -m tornado_c app``.  For each
connection state:

* ``idle``: N keep-alive connections, each after one ``GET /pid`` and its
  response, then silent;
* ``poll``: N connections each waiting in ``GET /poll`` (the handler awaits one
  shared asyncio Future that has not resolved); at the end one ``POST /wake``
  answers them all and every response is checked.

bytes per connection = (VmRSS with the N connections - VmRSS before) / N, both
read after gc.collect() + malloc_trim(0) in the server (POST /trim).  The
client connections come from several 127.0.0.x source addresses.

``--breakdown`` adds, per connection: the live Python objects per type that
appeared with the connections (count and sys.getsizeof), and (in a second
server run with PYTHONTRACEMALLOC=1, so that tracing's own memory is not in the
RSS figures) tracemalloc's allocation sites.

    python benchmarks/conn_memory.py [-n 5000] [--states idle,poll]
        [--modes upstream,tornado_c] [--breakdown] [--json out.json]
"""

import argparse
import json
import os
import selectors
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import _serverproc as sp  # noqa: E402

APP = os.path.join(HERE, "apps", "longpoll_app.py")
SOURCES = ["127.0.0.%d" % i for i in range(2, 6)]
IP_BIND_ADDRESS_NO_PORT = 24
REQ = {
    "idle": b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n",
    "poll": b"GET /poll HTTP/1.1\r\nHost: t\r\n\r\n",
}


def post(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        code, _, body = sp.read_response(s, 60)
    finally:
        s.close()
    assert code == 200, (code, body)
    return json.loads(body)


def connect(port, i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((SOURCES[i % len(SOURCES)], 0))
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    return s


def open_conns(port, n, state, batch=500):
    """n connections in `state` (idle: after one answered request; poll: the
    request sent and the handler waiting, checked with GET /stats)."""
    socks = []
    try:
        for i in range(n):
            s = connect(port, i)
            socks.append(s)
            s.sendall(REQ[state])
            if state == "idle":
                code, _, _ = sp.read_response(s, 30)
                if code != 200:
                    raise RuntimeError("status %d" % code)
            elif (i + 1) % batch == 0 or i + 1 == n:
                want = i + 1 if i + 1 == n else i + 1 - batch
                if not sp.wait_for(lambda: sp.get_json(port, "/stats")["waiting"] >= want, 60):
                    raise RuntimeError("only %d of %d waiting" % (
                        sp.get_json(port, "/stats")["waiting"], want))
    except BaseException:
        sp.close_all(socks)
        raise
    return socks


def read_all_responses(socks, timeout):
    """Read one response on every socket; returns (seconds until the last
    one was complete, number complete, bodies seen (set))."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    t0 = time.monotonic()
    done = 0
    bodies = set()
    last = None
    while done < len(socks) and time.monotonic() - t0 < timeout:
        for key, _ in sel.select(1.0):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(s)
                continue
            buf = bufs[s] + d
            bufs[s] = buf
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            n = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            if len(rest) >= n:
                done += 1
                last = time.monotonic() - t0
                bodies.add(head.split(b"\r\n")[0] + b" " + rest[:n])
                sel.unregister(s)
    sel.close()
    for s in socks:
        s.setblocking(True)
    return last, done, bodies


def types_diff(before, after, n):
    rows = []
    for name, (c1, s1) in after.items():
        c0, s0 = before.get(name, (0, 0))
        if c1 - c0 >= n * 0.9:
            rows.append({"type": name, "per_conn_count": round((c1 - c0) / n, 2),
                         "per_conn_bytes": round((s1 - s0) / n)})
    rows.sort(key=lambda r: -r["per_conn_bytes"])
    return rows


def measure(mode, state, n, breakdown=False, tracemalloc=False):
    env = {"PYTHONTRACEMALLOC": "1"} if tracemalloc else None
    srv = sp.ServerProc(mode, app=APP, env=env)
    port = srv.port
    out = {"mode": mode, "state": state, "connections": n, "tracemalloc": tracemalloc}
    try:
        # warm-up: one-time allocations (code, caches, pools) in the baseline
        sp.close_all(open_conns(port, 200, "idle"))
        w = open_conns(port, 200, "poll")
        post(port, "/wake")
        read_all_responses(w, 30)
        sp.close_all(w)
        sp.wait_for(lambda: sp.fd_count(srv.pid) <= 20, 10)
        post(port, "/trim")
        types0 = sp.get_json(port, "/mem/types", timeout=300)["types"] if breakdown and not tracemalloc else None
        if tracemalloc:
            post(port, "/mem/snap")
        rss0 = sp.settle_rss(srv.pid)
        socks = open_conns(port, n, state)
        try:
            post(port, "/trim")
            rss1 = sp.settle_rss(srv.pid)
            out["rss_before_kib"] = rss0
            out["rss_open_kib"] = rss1
            out["bytes_per_conn"] = round((rss1 - rss0) * 1024 / n)
            if types0 is not None:
                types1 = sp.get_json(port, "/mem/types", timeout=300)["types"]
                out["types"] = types_diff(types0, types1, n)
            if tracemalloc:
                d = sp.get_json(port, "/mem/diff?limit=25", timeout=300)
                out["tracemalloc_per_conn"] = round(d["total_size_diff"] / n)
                out["tracemalloc_sites"] = [
                    {"site": r["site"], "per_conn_bytes": round(r["size_diff"] / n),
                     "per_conn_count": round(r["count_diff"] / n, 2)}
                    for r in d["rows"] if abs(r["size_diff"]) >= n * 4]
            assert sp.get_json(port, "/pid")["pid"] == srv.pid
            if state == "poll":
                woke = post(port, "/wake")
                t, done, bodies = read_all_responses(socks, 60)
                out["woken"] = woke["waiting"]
                out["answered"] = done
                out["ok"] = done == n and woke["waiting"] == n and len(bodies) == 1
            else:
                for s in (socks[0], socks[-1]):
                    assert sp.get(port, sock=s)[0] == 200
                out["ok"] = True
        finally:
            sp.close_all(socks)
        out["server_alive"] = srv.alive()
    finally:
        srv.cleanup()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=5000)
    p.add_argument("--modes", default="upstream,tornado_c")
    p.add_argument("--states", default="idle,poll")
    p.add_argument("--breakdown", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    sp.raise_nofile(max(sp.NOFILE, args.n + 1000))
    results = []
    for state in args.states.split(","):
        for mode in args.modes.split(","):
            r = measure(mode, state, args.n, breakdown=args.breakdown)
            if args.breakdown:
                t = measure(mode, state, args.n, tracemalloc=True)
                r["tracemalloc_per_conn"] = t["tracemalloc_per_conn"]
                r["tracemalloc_sites"] = t["tracemalloc_sites"]
            results.append(r)
            print("%-10s %-5s n=%d  %6d B/conn  (RSS %d -> %d KiB) ok=%s" % (
                mode, state, args.n, r["bytes_per_conn"], r["rss_before_kib"],
                r["rss_open_kib"], r["ok"]), flush=True)
            if args.breakdown:
                for row in r["types"]:
                    print("    %-50s %6.2f x  %6d B" % (row["type"], row["per_conn_count"],
                                                       row["per_conn_bytes"]))
                print("    tracemalloc total per conn: %d B" % r["tracemalloc_per_conn"])
                for row in r["tracemalloc_sites"]:
                    print("    %6d B %6.2f x  %s" % (row["per_conn_bytes"], row["per_conn_count"],
                                                   row["site"]))
    comps = []
    for state in args.states.split(","):
        per = {r["mode"]: r["bytes_per_conn"] for r in results if r["state"] == state}
        ratio = (per["upstream"] / per["tornado_c"]
                 if per.get("upstream") and per.get("tornado_c") else None)
        comps.append({"label": "%s connection, bytes each (n=%d)" % (state, args.n),
                      "unit": "B", "values": per, "ratio": ratio,
                      "ratio_label": "upstream / tornado_c"})
        if ratio:
            print("%s: upstream / tornado_c = %.2fx" % (state, ratio))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "results": results,
                       "comparisons": comps}, f, indent=2)
    return 0 if all(r["ok"] and r["server_alive"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
