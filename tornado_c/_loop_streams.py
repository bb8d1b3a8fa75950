"""TCP and Unix-socket transports of the tornado_c event loop.

The methods that create stream transports and servers (create_connection,
create_server, create_unix_connection, create_unix_server, connect_accepted_socket,
...) live on ``StreamsMixin``, which ``tornado_c.loop.EventLoop`` inherits from.
This file belongs to the TCP/Unix transport work; the loop core only imports
the class.
"""


class StreamsMixin:
    """TCP/Unix transport methods of the C event loop (filled in by the
    transport component)."""
