"""A small HTML page rendered from a template: a loop over ten rows and
auto-escaped values (two of them hold characters that need escaping), with
the template loaded and compiled once by the Application's loader as in any
app.  Run unmodified by the benchmarks, like hello.py.
"""

import asyncio

import tornado.template
import tornado.web
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")

PAGE = """<!DOCTYPE html>
<html><head><title>{{ title }}</title></head>
<body><h1>{{ title }}</h1>
<table>
{% for row in rows %}<tr class="{{ 'odd' if row['id'] % 2 else 'even' }}"><td>{{ row['id'] }}</td><td>{{ row['name'] }}</td><td>{{ "%.2f" % row['price'] }}</td></tr>
{% end %}</table>
<p>{{ len(rows) }} rows</p>
</body></html>
"""

ROWS = [{"id": i, "name": name, "price": i * 1.25}
        for i, name in enumerate(["apple", "pear <b>", "plum", "fig & date", "kiwi",
                                  "lime", "lemon", "grape", "melon", "peach"])]


class PageHandler(tornado.web.RequestHandler):
    def get(self):
        self.render("page.html", title="Fruit & prices", rows=ROWS)


def make_app():
    return tornado.web.Application(
        [(r"/", PageHandler)],
        template_loader=tornado.template.DictLoader({"page.html": PAGE}))


async def main():
    parse_command_line()
    app = make_app()
    app.listen(options.port, address=options.address)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
