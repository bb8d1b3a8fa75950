"""The compatibility gate: upstream Tornado's own test suite under tornado_c.

For each configuration it runs, in a fresh process and from an empty
directory,

    TORNADO_C_DISABLE=<...> python -m tornado_c -m tornado.test

collects the ids of the tests that failed or errored, and compares them with
compat/known_failures.txt.  The gate fails when a test fails that is not on
the list, or when the suite's runner fails for a reason that is not a listed
test (it also fails on unexpected stderr output or logged errors, as
upstream's runner does).  The list may only shrink: a listed test that now
passes is reported so it can be removed.

A test that fails in the whole run gets one more chance: its test module is
run again in a fresh process of the same configuration.  If the test passes
there it is reported as FLAKY (with the first failure's log) and does not
fail the gate: a few of upstream's own tests give a TLS handshake and a
request 0.1 s and fail on a loaded machine with or without tornado_c (run
alone in a cold process, SimpleHTTPSClientTestCase.test_request_timeout even
fails every time under plain upstream, hence the whole module).  A test that
fails again fails the gate.

    python compat/gate.py [--config NAME ...] [--module tornado.test.X ...] [--keep-logs DIR]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KNOWN = os.path.join(HERE, "known_failures.txt")

# name -> TORNADO_C_DISABLE value
CONFIGS = {
    "full": "",
    "loop-only": "http,web,websocket",
}

RESULT_RE = re.compile(r"^(FAIL|ERROR|UNEXPECTED SUCCESS): (\S+) \(([^)]*)\)", re.M)
RAN_RE = re.compile(r"^Ran (\d+) tests? in", re.M)
SKIP_RE = re.compile(r"skipped=(\d+)")


def load_known(path=KNOWN):
    """{config: {test_id: reason}} from the known-failures file.

    Lines: ``<config> <test id>  # reason``; '#' starts a comment."""
    known = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            body, _, reason = line.partition("#")
            parts = body.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[0] not in CONFIGS:
                raise SystemExit("%s:%d: expected '<config> <test id>  # reason'" % (path, lineno))
            known.setdefault(parts[0], {})[parts[1]] = reason.strip()
    return known


def parse_output(text):
    """(ran, skipped, failed_ids) from unittest's output."""
    failed = set()
    for _kind, name, where in RESULT_RE.findall(text):
        # Python >= 3.11 prints the full id in parentheses; older ones the class.
        failed.add(where if where.endswith("." + name) else where + "." + name)
    ran = sum(int(n) for n in RAN_RE.findall(text))
    skipped = sum(int(n) for n in SKIP_RE.findall(text))
    return ran, skipped, failed


def run_config(name, disable, log_dir, tests=(), tag=""):
    """Run upstream's suite (or only `tests`, full unittest ids) under the
    switch with TORNADO_C_DISABLE=`disable`."""
    env = dict(os.environ)
    env["TORNADO_C_DISABLE"] = disable
    # Import the same tornado_c this script sees (installed or in-tree).
    import tornado_c

    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(tornado_c.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    log_path = os.path.join(log_dir, "upstream-suite-%s%s.log" % (name, tag))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as cwd, open(log_path, "w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "tornado_c", "-m", "tornado.test", *tests],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=1800,
        )
    with open(log_path) as f:
        text = f.read()
    ran, skipped, failed = parse_output(text)
    return proc.returncode, ran, skipped, failed, log_path, time.monotonic() - started


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", choices=sorted(CONFIGS),
                    help="configuration(s) to run (default: all)")
    ap.add_argument("--keep-logs", default=None, help="folder for the suite logs")
    ap.add_argument("--module", action="append", default=[],
                    help="run only this upstream test module (tornado.test.web_test; "
                         "repeatable); known failures of other modules are not reported "
                         "as now passing")
    ap.add_argument("--allow", action="append", default=[], metavar="FILE",
                    help="tests (known_failures.txt's format) allowed to fail in this run "
                         "because of how it is run, not of tornado_c: reported as ALLOWED "
                         "(scripts/sanitize.sh: time limits a sanitizer build misses)")
    args = ap.parse_args(argv)
    configs = args.config or list(CONFIGS)
    known = load_known()
    allowed = {}
    for path in args.allow:
        for config, tests in load_known(path).items():
            allowed.setdefault(config, {}).update(tests)
    log_dir = args.keep_logs or tempfile.mkdtemp(prefix="tornado_c-gate-")
    os.makedirs(log_dir, exist_ok=True)

    total_passed = total_failed = total_skipped = 0
    ok = True
    for name in configs:
        rc, ran, skipped, failed, log_path, secs = run_config(
            name, CONFIGS[name], log_dir, tests=args.module)
        expected = known.get(name, {})
        if args.module:
            expected = {t: r for t, r in expected.items()
                        if t.rsplit(".", 2)[0] in args.module}
        allow = allowed.get(name, {})
        excused = sorted((failed & set(allow)) - set(expected))
        new = sorted(failed - set(expected) - set(allow))
        fixed = sorted(set(expected) - failed)
        flaky, rerun_ok = [], False
        if new:
            # their modules once more, in a fresh process: see the docstring
            modules = sorted({test.rsplit(".", 2)[0] for test in new})
            rrc, rran, _, refailed, relog, _ = run_config(
                name, CONFIGS[name], log_dir, tests=modules, tag="-rerun")
            if rran >= len(new):
                flaky = [t for t in new if t not in refailed]
                new = [t for t in new if t in refailed]
                failed = failed - set(flaky)
                # the rerun's exit status counts unless known or allowed tests explain it
                rerun_ok = rrc == 0 or bool(refailed) and refailed <= set(expected) | set(allow)
                if not new and not rerun_ok:
                    new = ["(rerun of %s: runner exit %d, see %s)" % (", ".join(flaky), rrc, relog)]
        # the runner's own exit status counts unless failing tests explain it
        # (known failures, or flaky ones that then passed alone)
        good = not new and ran > 0 and (rc == 0 or failed or rerun_ok)
        ok = ok and good
        passed = ran - skipped - len(failed)
        total_passed += passed
        total_failed += len(new)
        total_skipped += skipped
        print("gate[%s] TORNADO_C_DISABLE=%r: ran %d, %d passed, %d skipped, %d failed "
              "(%d known%s), runner exit %d, %.0fs -> %s"
              % (name, CONFIGS[name], ran, passed, skipped, len(failed),
                 len(failed) - len(new) - len(excused),
                 ", %d allowed" % len(excused) if excused else "",
                 rc, secs, "ok" if good else "FAILED"))
        for test in flaky:
            print("  FLAKY (failed in the whole run, passed when its module ran again): %s  (log: %s)"
                  % (test, log_path))
        for test in excused:
            print("  ALLOWED (failed; --allow: %s): %s" % (allow[test], test))
        for test in new:
            print("  NEW FAILURE: %s" % test)
        for test in fixed:
            print("  now passing, remove from known_failures.txt: %s %s" % (name, test))
        if not good:
            if not new:
                print("  the runner failed without a failing test (stderr output, logged "
                      "errors or a crash); see the log")
            print("  log: %s" % log_path)
            with open(log_path) as f:
                tail = f.read()[-3000:]
            print("  --- last lines of the log ---")
            print("  " + tail.replace("\n", "\n  "))
    print("gate: %d passed, %d failed, %d skipped" % (total_passed, total_failed, total_skipped))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
