"""asyncio's debug-mode and resource diagnostics, checked on both loops (the
`loop` fixture): slow callbacks, never-awaited coroutines with their origin,
ResourceWarning for transports nobody closed."""
import asyncio
import gc
import logging
import os
import subprocess
import sys
import time
import warnings

import pytest



def resource_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_slow_reader_callback_is_logged(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.02
    r, w = os.pipe()

    def slow_reader():
        os.read(r, 1)
        time.sleep(0.05)
        loop.remove_reader(r)
        loop.stop()

    loop.add_reader(r, slow_reader)
    os.write(w, b"x")
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    os.close(r)
    os.close(w)
    msgs = [rec.getMessage() for rec in caplog.records]
    assert any(m.startswith("Executing <Handle") and "slow_reader" in m and "took" in m
               for m in msgs), msgs


def test_never_awaited_coroutine_says_where_it_was_created(loop):
    loop.set_debug(True)

    async def forgotten():
        pass

    async def main():
        forgotten()  # never awaited

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.run_until_complete(main())
        gc.collect()
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("was never awaited" in m and "Coroutine created at" in m for m in msgs), msgs


def test_unclosed_tcp_transport_warns_when_the_loop_closes(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        closed, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        closed.close()
        await asyncio.sleep(0.01)
        server.close()

    loop.run_until_complete(main())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.close()
        gc.collect()
    msgs = resource_warnings(caught)
    # the client transport left open and its accepted peer; not the closed one
    assert sum(m.startswith("unclosed transport <") for m in msgs) == 2, msgs


def test_unclosed_subprocess_transport_warns(loop):
    async def main():
        tr, _ = await loop.subprocess_exec(asyncio.SubprocessProtocol, sys.executable, "-c",
                                           "pass", stdin=None, stdout=None, stderr=None)
        while tr.get_returncode() is None:
            await asyncio.sleep(0.01)
        return tr

    tr = loop.run_until_complete(main())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del tr
        gc.collect()
    msgs = resource_warnings(caught)
    assert any(m.startswith("unclosed transport <") and "SubprocessTransport" in m
               for m in msgs), msgs


def test_debug_logs_process_exit(loop, caplog):
    loop.set_debug(True)

    async def main():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(4)",
                                                    stdout=subprocess.DEVNULL)
        return await proc.wait()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        assert loop.run_until_complete(main()) == 4
    assert any("exited with return code 4" in r.getMessage() for r in caplog.records)
