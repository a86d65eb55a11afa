"""The proxy configurations of aiohttp_sockjs.deploy: shape, checks, and the guide's copy.

That the configurations work is shown by tests/cluster, which runs them
with the real nginx and haproxy.
"""

from __future__ import annotations

import re

import pytest

from aiohttp_sockjs import deploy
from tests.docblocks import blocks

EXAMPLE = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"]


def test_deploying_guide_shows_the_generated_nginx_config() -> None:
    [config] = [b.code for b in blocks() if b.path.endswith("deploying.rst") and b.lang == "nginx"]
    assert config == deploy.nginx_config(EXAMPLE, listen="80")


@pytest.mark.parametrize(
    ("path", "session"),
    [
        ("/chat/000/abc/xhr", "abc"),
        ("/chat/000/abc/xhr_send", "abc"),
        ("/a/b/chat/123/s-1_x/websocket", "s-1_x"),
        ("/chat/000/abc/jsonp_send", "abc"),
        ("/chat/info", None),
        ("/chat/websocket", None),
        ("/chat/iframe.html", None),
        ("/chat/000/abc/other", None),
        ("/chat/000/a.b/xhr", None),
    ],
)
def test_session_path(path: str, session: str | None) -> None:
    match = re.search(deploy.SESSION_PATH, path)
    assert (match.group(1) if match else None) == session


def test_servers_listed_in_both() -> None:
    servers = ["127.0.0.1:9001", "unix:/run/sockjs/2.sock"]
    nginx = deploy.nginx_config(servers, listen="127.0.0.1:8080", timeout=90)
    assert "server 127.0.0.1:9001 max_fails" in nginx
    assert "server unix:/run/sockjs/2.sock max_fails" in nginx
    assert "listen 127.0.0.1:8080;" in nginx
    assert "proxy_read_timeout 90s;" in nginx
    haproxy = deploy.haproxy_config(servers, listen="8080")
    assert "bind :8080" in haproxy
    assert haproxy.count("server p1 127.0.0.1:9001 ") == 2
    assert haproxy.count("server p2 /run/sockjs/2.sock ") == 2


def test_standalone_wraps_the_http_block() -> None:
    http = deploy.nginx_config(EXAMPLE)
    whole = deploy.nginx_config(EXAMPLE, standalone=True)
    assert "daemon off;" in whole and "pid nginx.pid;" in whole
    for line in http.splitlines():
        assert ("    " + line if line else "") in whole.splitlines()


@pytest.mark.parametrize(
    "servers",
    [[], ["localhost"], ["127.0.0.1:80; evil"], ["127.0.0.1:80 backup"], ["unix:/a b"]],
)
def test_bad_servers_are_refused(servers: list[str]) -> None:
    with pytest.raises(ValueError, match="server"):
        deploy.nginx_config(servers)
    with pytest.raises(ValueError, match="server"):
        deploy.haproxy_config(servers)


def test_bad_listen_is_refused() -> None:
    with pytest.raises(ValueError, match="listen"):
        deploy.nginx_config(EXAMPLE, listen="80; include /etc/passwd")


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    deploy.main(["nginx", "--server", "127.0.0.1:8081", "--listen", "8000"])
    assert capsys.readouterr().out == deploy.nginx_config(["127.0.0.1:8081"], listen="8000")
    deploy.main(["haproxy", "--server", "127.0.0.1:8081"])
    assert capsys.readouterr().out == deploy.haproxy_config(["127.0.0.1:8081"])
