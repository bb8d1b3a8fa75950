"""Child processes (subprocess_exec/_shell, asyncio.create_subprocess_*),
checked against stdlib asyncio: every test runs on both loops (the `loop`
fixture), and on the tornado_c loop both with pidfds and with the thread
fallback that waits in waitpid()."""
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tornado_c import _loop_subprocess
from tornado_c.loop import EventLoop

from conftest import LOOP_KINDS, new_loop

PY = sys.executable


@pytest.fixture(params=[*LOOP_KINDS, "tornado_c-thread"])
def loop(request, monkeypatch):
    """conftest's loops, plus the C loop with the waiting-thread fallback in
    place of pidfds; set as the current loop while the test runs."""
    kind = request.param
    if kind == "tornado_c-thread":
        monkeypatch.setattr(_loop_subprocess, "_USE_PIDFD", False)
        kind = "tornado_c"
    lp = new_loop(kind)
    asyncio.set_event_loop(lp)
    yield lp
    asyncio.set_event_loop(None)
    if not lp.is_closed():
        lp.run_until_complete(lp.shutdown_default_executor())
        lp.close()


def run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def gone(pid, timeout=5.0):
    """True once `pid` no longer exists (reaped: not even a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


class Recorder(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.events = []
        self.data = {1: bytearray(), 2: bytearray()}
        self.exited = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def pipe_data_received(self, fd, data):
        self.data[fd] += data
        self.events.append(("data", fd))

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")
        self.exited.set_result(self.transport.get_returncode())

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(None)


# ------------------------------------------------------------- basics


def test_communicate_and_returncode(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; d = sys.stdin.buffer.read(); "
                      "sys.stdout.buffer.write(d.upper()); sys.stderr.write('err'); sys.exit(3)",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate(b"hello")
        assert (out, err) == (b"HELLO", b"err")
        assert proc.returncode == 3
        assert await proc.wait() == 3
        return proc.pid

    assert gone(run(loop, main()))


def test_large_data_both_ways(loop):
    payload = os.urandom(4 * 1024 * 1024)

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = await proc.communicate(payload)
        assert out == payload and proc.returncode == 0

    run(loop, main())


def test_shell(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo $((6 * 7)); exit 5", stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        assert out == b"42\n" and proc.returncode == 5

    run(loop, main())


def test_stdio_devnull_stdout_fds_and_files(loop):
    async def main():
        # stderr into stdout
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print('o', flush=True); print('e', file=sys.stderr)",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, err = await proc.communicate()
        assert sorted(out.split()) == [b"e", b"o"] and err is None
        # DEVNULL in, out to a file object, err to a raw fd
        r, w = os.pipe()
        with tempfile.TemporaryFile() as f:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import sys; print(repr(sys.stdin.read())); "
                          "print('to fd', file=sys.stderr)",
                stdin=subprocess.DEVNULL, stdout=f, stderr=w)
            os.close(w)
            assert proc.stdin is None and proc.stdout is None and proc.stderr is None
            assert await proc.wait() == 0
            f.seek(0)
            assert f.read() == b"''\n"
        assert os.read(r, 100) == b"to fd\n"
        os.close(r)
        # DEVNULL out
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "print('x' * 100000)", stdout=subprocess.DEVNULL)
        assert await proc.wait() == 0

    run(loop, main())


def test_cwd_env_pass_fds_start_new_session(loop):
    async def main():
        with tempfile.TemporaryDirectory() as d:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import os; print(os.getcwd()); print(os.environ['TC_SUBPROC'])",
                stdout=subprocess.PIPE, cwd=d, env=dict(os.environ, TC_SUBPROC="yes"))
            out, _ = await proc.communicate()
            assert out.split() == [os.path.realpath(d).encode(), b"yes"]
        r, w = os.pipe()
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import os, sys; os.write(int(sys.argv[1]), b'passed')", str(w),
            pass_fds=(w,))
        os.close(w)
        assert await proc.wait() == 0
        assert os.read(r, 100) == b"passed"
        os.close(r)
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getsid(0) == os.getpid())",
            stdout=subprocess.PIPE, start_new_session=True)
        out, _ = await proc.communicate()
        assert out == b"True\n"

    run(loop, main())


def test_signals_give_negative_returncodes(loop):
    code = "import time, sys; print('up', flush=True); time.sleep(60)"

    async def started():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=subprocess.PIPE)
        assert await proc.stdout.readline() == b"up\n"
        return proc

    async def main():
        proc = await started()
        proc.terminate()
        assert await proc.wait() == -signal.SIGTERM
        proc = await started()
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL
        proc = await started()
        proc.send_signal(signal.SIGUSR1)
        assert await proc.wait() == -signal.SIGUSR1
        # once wait() returned, the transport let the process go
        with pytest.raises(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with pytest.raises(ProcessLookupError):
            proc.kill()

    run(loop, main())


def test_errors_as_asyncio(loop):
    async def main():
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/nonexistent/tornado-c-program")
        for kw in ({"text": True}, {"encoding": "utf-8"}, {"errors": "strict"},
                   {"universal_newlines": True}, {"bufsize": 1}):
            with pytest.raises(ValueError):
                await asyncio.create_subprocess_exec(PY, "-c", "pass", **kw)
            with pytest.raises(ValueError):
                await asyncio.create_subprocess_shell("true", **kw)
        with pytest.raises(ValueError, match="shell must be False"):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, PY, shell=True)
        with pytest.raises(ValueError, match="shell must be True"):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, "true", shell=False)
        with pytest.raises(ValueError, match="cmd must be a string"):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, ["true"])
        with pytest.raises(TypeError):
            await asyncio.create_subprocess_exec(PY, "-c", "pass", no_such_option=1)

    run(loop, main())


def test_transport_api(loop):
    async def main():
        proto = Recorder(loop)
        tr, pr = await loop.subprocess_exec(
            lambda: proto, PY, "-c", "import sys; sys.stdout.write(sys.stdin.read())")
        assert pr is proto and proto.events == ["made"]
        assert tr.get_pid() == tr.get_extra_info("subprocess").pid
        assert isinstance(tr.get_extra_info("subprocess"), subprocess.Popen)
        assert tr.get_returncode() is None
        stdin = tr.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        assert isinstance(tr.get_pipe_transport(1), asyncio.ReadTransport)
        assert tr.get_pipe_transport(3) is None
        assert "running" in repr(tr)
        stdin.write(b"round trip")
        stdin.close()
        assert await proto.exited == 0
        await proto.lost
        assert bytes(proto.data[1]) == b"round trip"
        assert tr.get_returncode() == 0
        assert proto.events[0] == "made" and proto.events[-1] == ("lost", None)
        assert proto.events.count("exited") == 1
        for fd in (0, 1, 2):
            assert proto.events.count(("pipe_lost", fd, None)) == 1
        last_data = max(i for i, e in enumerate(proto.events) if e == ("data", 1))
        assert last_data < proto.events.index(("pipe_lost", 1, None))
        tr.close()
        assert tr.is_closing()
        assert "returncode=0" in repr(tr)

    run(loop, main())


def test_exit_noticed_while_pipes_stay_open_then_drained(loop):
    # The child exits at once but leaves a grandchild holding stdout, which
    # writes later: process_exited comes first, the data is still delivered,
    # connection_lost comes once the pipe is closed.
    script = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
              "'import time, sys; time.sleep(0.5); sys.stdout.write(\"late\")']); sys.exit(7)")

    async def main():
        proto = Recorder(loop)
        t0 = time.monotonic()
        tr, _ = await loop.subprocess_exec(lambda: proto, PY, "-c", script, stdin=None,
                                           stderr=None)
        assert await proto.exited == 7
        assert time.monotonic() - t0 < 0.5 + 0.4  # noticed before the pipe closed
        assert not proto.lost.done()
        assert bytes(proto.data[1]) == b""
        await proto.lost
        assert bytes(proto.data[1]) == b"late"
        assert proto.events[-2:] == [("pipe_lost", 1, None), ("lost", None)]
        tr.close()

    run(loop, main())


def test_close_kills_running_child(loop):
    async def main():
        proto = Recorder(loop)
        tr, _ = await loop.subprocess_exec(lambda: proto, PY, "-c", "import time; time.sleep(60)")
        pid = tr.get_pid()
        tr.close()
        assert await proto.exited == -signal.SIGKILL
        await proto.lost
        return pid

    assert gone(run(loop, main()))


def test_many_concurrent_children_and_no_zombies(loop):
    async def one(i):
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", "echo $1; exit $(($1 % 7))", "sh", str(i),
            stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        return proc.pid, int(out), proc.returncode

    async def main():
        return await asyncio.gather(*(one(i) for i in range(200)))

    results = run(loop, main(), timeout=120)
    assert [(i, rc) for _, i, rc in results] == [(i, i % 7) for i in range(200)]
    assert all(gone(pid) for pid, _, _ in results)


def test_pipeline_ls_wc(loop, tmp_path):
    for i in range(17):
        (tmp_path / ("f%d" % i)).write_text("x")

    async def main():
        r, w = os.pipe()
        ls = await asyncio.create_subprocess_exec("ls", "-1", str(tmp_path), stdout=w)
        os.close(w)
        wc = await asyncio.create_subprocess_exec("wc", "-l", stdin=r, stdout=subprocess.PIPE)
        os.close(r)
        out, _ = await wc.communicate()
        assert await ls.wait() == 0 and wc.returncode == 0
        return int(out)

    assert run(loop, main()) == 17


def test_child_still_running_when_loop_closes_is_reaped(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import time; time.sleep(0.3)", stdin=subprocess.DEVNULL)
        return proc

    proc = run(loop, main())
    pid = proc.pid
    stdlib = not isinstance(loop, EventLoop)
    loop.close()
    if stdlib and sys.version_info >= (3, 12):
        # asyncio's pidfd child watcher (3.12+) stops watching with the loop
        # and leaves a zombie; its 3.11 thread watcher reaps it
        proc._transport._proc.wait()
    assert gone(pid)
    proc._transport.close()


def test_cancelled_creation_kills_child(loop):
    async def main():
        before = set(_children())
        task = asyncio.ensure_future(loop.subprocess_exec(
            asyncio.SubprocessProtocol, PY, "-c", "import time; time.sleep(60)"))
        await asyncio.sleep(0)
        spawned = set(_children()) - before
        assert len(spawned) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return spawned

    pids = run(loop, main())
    assert all(gone(pid) for pid in pids)


def _children():
    me = os.getpid()
    try:
        with open("/proc/%d/task/%d/children" % (me, me)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # pragma: no cover - kernel without the file
        return []


def test_debug_logs(loop, caplog):
    loop.set_debug(True)

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", stdout=subprocess.PIPE,
                                                    stderr=subprocess.STDOUT)
        await proc.communicate()

    with caplog.at_level("DEBUG", logger="asyncio"):
        run(loop, main())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "execute program %r stdout=stderr=<pipe>" % PY in text
    assert "exited with return code 0" in text
