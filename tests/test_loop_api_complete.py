"""Every asyncio.AbstractEventLoop method that the stdlib's own Linux loop
implements is implemented by tornado_c's loop too (an inherited one would
raise NotImplementedError)."""
import asyncio

from tornado_c.loop import EventLoop

# Being implemented elsewhere: remove from here when they land.
# Private hook of asyncio's own TimerHandle, which this loop never schedules
# (its timers are C handles).
PRIVATE = {"_timer_handle_cancelled"}


def inherited_abstract(cls):
    base = asyncio.AbstractEventLoop
    return {name for name in dir(base)
            if not name.startswith("__") and getattr(cls, name, None) is getattr(base, name)}


def test_no_abstract_method_left_that_asyncio_implements():
    stdlib_left = inherited_abstract(asyncio.SelectorEventLoop)
    ours_left = inherited_abstract(EventLoop) - stdlib_left
    assert ours_left <= PRIVATE, sorted(ours_left - PRIVATE)


def test_subprocess_pipes_and_sendfile_are_ours():
    for name in ("subprocess_exec", "subprocess_shell", "connect_read_pipe",
                 "connect_write_pipe", "sendfile", "sock_sendfile",
                 "create_datagram_endpoint", "start_tls"):
        assert name not in inherited_abstract(EventLoop)
