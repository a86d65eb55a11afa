"""Proxy configurations for running one endpoint on several processes.

A SockJS session lives in the process that created it. Websocket sessions
are one connection, but every HTTP fallback transport (xhr, xhr_streaming,
eventsource, htmlfile, jsonp) makes a new request for each poll and each
message sent, and each of those requests must reach that same process. A
plain round-robin balancer (``gunicorn -w 4``, several processes on one
``SO_REUSEPORT`` socket) hands them to any process, which answers 404 for a
session it does not know and the client disconnects.

The configurations below route by the session id in the URL
(``/<prefix>/<server>/<session>/<transport>``) with consistent hashing, so
every request of a session reaches one process and a process that dies
only moves its own sessions. Print one from the command line::

    python -m aiohttp_sockjs.deploy nginx --listen 80 \\
        --server 127.0.0.1:8081 --server 127.0.0.1:8082
    python -m aiohttp_sockjs.deploy haproxy --listen 80 \\
        --server 127.0.0.1:8081 --server 127.0.0.1:8082

The test suite (``tests/cluster``) runs the same functions' output with the
real nginx and haproxy.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["SESSION_PATH", "haproxy_config", "nginx_config"]

#: The transports whose URL carries a session id.
SESSION_TRANSPORTS: Final = (
    "websocket",
    "xhr",
    "xhr_send",
    "xhr_streaming",
    "eventsource",
    "htmlfile",
    "jsonp",
    "jsonp_send",
)

#: A regular expression (PCRE and Python) for the end of a session URL; its
#: one group is the session id.
SESSION_PATH: Final = "/[^/.]+/([^/.]+)/(?:" + "|".join(SESSION_TRANSPORTS) + ")$"

_UNIX: Final = "unix:"


def _check_servers(servers: Sequence[str]) -> list[str]:
    if not servers:
        raise ValueError("at least one server is needed")
    checked = []
    for server in servers:
        server = server.strip()
        if not server.startswith(_UNIX) and not re.fullmatch(r"[\w.\-\[\]:]+:\d+", server):
            raise ValueError(f"a server is host:port or unix:/path, not {server!r}")
        if re.search(r"[\s;{}#'\"]", server):
            raise ValueError(f"unexpected characters in server {server!r}")
        checked.append(server)
    return checked


def _check_listen(listen: str) -> str:
    listen = str(listen).strip()
    if not re.fullmatch(r"[\w.\-\[\]:/]+", listen):
        raise ValueError(f"listen is a port, host:port or unix:/path, not {listen!r}")
    return listen


def _banner(proxy: str) -> str:
    """The comment that opens either configuration."""
    return f"""\
# aiohttp-sockjs: several server processes behind {proxy}, each SockJS
# session routed to one process by the session id in its URL.
"""


def _seconds(timeout: float) -> str:
    """A timeout as the proxies write it, in whole seconds."""
    return f"{int(timeout)}s"


def nginx_config(
    servers: Sequence[str],
    *,
    listen: str = "80",
    timeout: float = 60,
    max_body: str = "8m",
    standalone: bool = False,
) -> str:
    """An nginx configuration that routes SockJS sessions to ``servers``.

    ``servers`` are the server processes, each ``host:port`` or
    ``unix:/path/to.sock``. ``listen`` is nginx's ``listen`` argument.
    ``timeout`` (seconds) must be longer than the endpoint's
    ``heartbeat_delay`` (25 s by default): a streaming or polling response
    and a websocket send nothing else between heartbeats. ``max_body`` is
    nginx's ``client_max_body_size``; keep it at least the endpoint's
    ``max_request_size`` (8 MiB by default), nginx's own default of 1 MiB
    refuses large messages with 413 before they reach the server.

    The result goes in nginx's ``http`` block (for example as
    ``/etc/nginx/conf.d/sockjs.conf``). With ``standalone=True`` it is a
    whole ``nginx.conf`` that runs in the foreground from a prefix directory
    as any user: ``nginx -p DIR -c DIR/nginx.conf``.
    """
    upstream = _nginx_upstream(_check_servers(servers))
    seconds = _seconds(timeout)
    server = _nginx_server(_check_listen(listen), seconds, max_body)
    http = "\n".join([_banner("nginx"), _nginx_maps(), upstream, server])
    return _nginx_standalone(http) if standalone else http


def _nginx_maps() -> str:
    """The variables the upstream hashes on and the proxy passes on."""
    return f"""\
# The session id of /<prefix>/<server>/<session>/<transport>. It is empty
# for /info, the iframe page and raw websockets: any process serves them.
map $uri $sockjs_session {{
    "~{SESSION_PATH}" $1;
    default "";
}}

# Upgrade websockets; keep other upstream connections alive.
map $http_upgrade $sockjs_connection {{
    default upgrade;
    "" "";
}}
"""


def _nginx_upstream(servers: list[str]) -> str:
    lines = "\n".join(f"    server {server} max_fails=1 fail_timeout=5s;" for server in servers)
    return f"""\
upstream sockjs {{
    # Consistent hashing: a process that goes away moves only its own
    # sessions. An empty key (no session) is balanced round-robin.
    hash $sockjs_session consistent;
{lines}
    keepalive 32;
}}
"""


def _nginx_server(listen: str, seconds: str, max_body: str) -> str:
    return f"""\
server {{
    listen {listen};

    location / {{
        proxy_pass http://sockjs;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $sockjs_connection;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Streaming transports: every frame goes out as it is written; and
        # messages sent by the client go straight through, not to a file.
        proxy_buffering off;
        proxy_request_buffering off;
        # Longer than heartbeat_delay: idle connections carry only heartbeats.
        proxy_read_timeout {seconds};
        proxy_send_timeout {seconds};
        # At least max_request_size (nginx's default is 1m).
        client_max_body_size {max_body};
    }}
}}
"""


def _nginx_standalone(http: str) -> str:
    """A whole ``nginx.conf`` around the ``http`` block's contents."""
    body = "\n".join(f"    {line}" if line else "" for line in http.splitlines())
    return f"""\
# Runs in the foreground from its prefix directory:
#     nginx -p DIR -c DIR/nginx.conf
daemon off;
master_process on;
worker_processes 1;
pid nginx.pid;
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

{body}
}}
"""


def haproxy_config(
    servers: Sequence[str],
    *,
    listen: str = "80",
    timeout: float = 60,
) -> str:
    """A whole haproxy configuration that routes SockJS sessions to ``servers``.

    ``servers`` and ``timeout`` are as for :func:`nginx_config`; ``listen``
    is haproxy's ``bind`` argument (``:80``, ``127.0.0.1:8080``, a bare port
    means every address). Run it with ``haproxy -f haproxy.cfg``. Needs
    haproxy 2.6 or later (``balance hash``).
    """
    listen = _check_listen(listen)
    if listen.isdigit():
        listen = ":" + listen
    server_lines = _haproxy_servers(_check_servers(servers))
    defaults = _haproxy_defaults(_seconds(timeout))
    return "\n".join(
        [
            _banner("haproxy") + _haproxy_global(),
            defaults,
            _haproxy_frontend(listen),
            _haproxy_backends(server_lines),
        ]
    )


def _haproxy_global() -> str:
    return """\
global
    # Each connection takes two file descriptors (client and server).
    maxconn 4096
"""


def _haproxy_defaults(seconds: str) -> str:
    return f"""\
defaults
    mode http
    timeout connect 5s
    # Longer than heartbeat_delay: idle connections carry only heartbeats.
    timeout client {seconds}
    timeout server {seconds}
    timeout tunnel {seconds}
    timeout http-request 10s
    # A process that refuses the connection: retry on another one.
    retries 2
    option redispatch 1
    # A client that goes away mid-request (a poll, a stream) drops the
    # request to the server too, so its session learns it at once (1002)
    # rather than at the next failed heartbeat.
    option abortonclose
    # The client's address for the servers (client_key=TrustedProxies):
    # appended to any X-Forwarded-For the client sent.
    option forwardfor
"""


def _haproxy_frontend(listen: str) -> str:
    return f"""\
frontend sockjs
    bind {listen}
    # /<prefix>/<server>/<session>/<transport>: by session id. The rest
    # (/info, the iframe page, raw websockets) can go anywhere.
    acl sockjs_session path -m reg {SESSION_PATH}
    use_backend sockjs_sessions if sockjs_session
    default_backend sockjs_any
"""


def _haproxy_servers(servers: list[str]) -> str:
    """The ``server`` lines of a backend, one for each server process."""
    lines = []
    for number, server in enumerate(servers, 1):
        address = server.removeprefix(_UNIX)
        lines.append(f"    server p{number} {address} check inter 1s fall 1 rise 2")
    return "\n".join(lines)


def _haproxy_backends(server_lines: str) -> str:
    """The session backend, by consistent hash, and the one for the rest."""
    return f"""\
backend sockjs_sessions
    # Consistent hashing on the session id: a process that goes away
    # moves only its own sessions.
    balance hash path,field(-2,/)
    hash-type consistent
{server_lines}

backend sockjs_any
    balance roundrobin
{server_lines}
"""


def main(argv: Sequence[str] | None = None) -> None:
    """Print a proxy configuration: ``python -m aiohttp_sockjs.deploy nginx|haproxy``."""
    parser = argparse.ArgumentParser(
        prog="python -m aiohttp_sockjs.deploy",
        description="Print a proxy configuration that routes SockJS sessions "
        "to several server processes by session id.",
    )
    parser.add_argument("proxy", choices=["nginx", "haproxy"])
    parser.add_argument(
        "--server",
        action="append",
        required=True,
        help="a server process, host:port or unix:/path (repeat for each)",
    )
    parser.add_argument("--listen", default="80", help="where the proxy listens (default 80)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60,
        help="proxy read timeout in seconds, longer than heartbeat_delay (default 60)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="nginx: a whole nginx.conf that runs in the foreground from a prefix directory",
    )
    args = parser.parse_args(argv)
    if args.proxy == "nginx":
        text = nginx_config(
            args.server, listen=args.listen, timeout=args.timeout, standalone=args.standalone
        )
    else:
        text = haproxy_config(args.server, listen=args.listen, timeout=args.timeout)
    print(text, end="")


if __name__ == "__main__":
    main()
