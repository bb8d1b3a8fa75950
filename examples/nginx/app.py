"""The app of the nginx recipe (docs/deploy-nginx.md): one tornado_c process
behind nginx, with ``xheaders=True`` so that ``request.remote_ip`` and
``request.protocol`` come from nginx's X-Real-IP / X-Forwarded-For /
X-Scheme headers.

Run one process per upstream entry of nginx.conf:

    python -m tornado_c app.py --port 8001          # 127.0.0.1:8001
    python -m tornado_c app.py --unix /run/app/1.sock

It prints ``READY <port|path>`` once it listens and stops cleanly on SIGTERM
or SIGINT.  ``python app.py`` runs the same app on upstream Tornado.
"""

import argparse
import asyncio
import os
import signal
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write(
            {
                "pid": os.getpid(),
                "remote_ip": self.request.remote_ip,
                "protocol": self.request.protocol,
                "host": self.request.host,
                "x_real_ip": self.request.headers.get("X-Real-IP"),
                "x_forwarded_for": self.request.headers.get("X-Forwarded-For"),
                "server": type(self.request.connection).__module__,
            }
        )


def make_app():
    return tornado.web.Application([(r"/.*", MainHandler)])


async def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT (0: any free port)")
    g.add_argument("--unix", help="listen on this Unix socket path")
    p.add_argument("--unix-mode", type=lambda s: int(s, 8), default=0o660,
                   help="permissions of the Unix socket (octal, default 660)")
    args = p.parse_args()

    server = tornado.httpserver.HTTPServer(make_app(), xheaders=True)
    if args.unix:
        server.add_socket(tornado.netutil.bind_unix_socket(args.unix, mode=args.unix_mode))
        where = args.unix
    else:
        socks = tornado.netutil.bind_sockets(args.port, address="127.0.0.1")
        server.add_sockets(socks)
        where = socks[0].getsockname()[1]
    print("READY %s" % where, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()
    if args.unix:
        os.unlink(args.unix)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
