"""Cloudflare's address ranges: the repository's copy parses, the refresh script validates."""

from __future__ import annotations

import http.server
import threading
from typing import ClassVar

import pytest

from components import cloudflare_ranges
from scripts import refresh_cloudflare_ranges

V4 = "173.245.48.0/20\n103.21.244.0/22\n"
V6 = "2400:cb00::/32\n2606:4700::/32\n"


def test_the_kept_ranges_parse_and_are_stored_canonically():
    ranges = cloudflare_ranges.load()
    assert len(ranges.ipv4) >= 10 and len(ranges.ipv6) >= 5
    assert "173.245.48.0/20" in ranges.ipv4 and "2606:4700::/32" in ranges.ipv6
    # Sorted, deduplicated, exactly what the refresh script writes: a refresh diff is Cloudflare's.
    assert cloudflare_ranges.DATA.read_text() == ranges.to_json()


@pytest.mark.parametrize(
    ("v4", "v6", "message"),
    [
        ("173.245.48.1/20\n", V6, "ips-v4:1: '173.245.48.1/20' is not a network"),
        ("2400:cb00::/32\n", V6, "ips-v4:1: 2400:cb00::/32 is not an IPv4 network"),
        (V4, "", "ips-v6: no IPv6 networks"),
        ("0.0.0.0/0\n", V6, "implausibly wide"),
        ("<html>rate limited</html>\n", V6, "is not a network"),
    ],
)
def test_a_bad_list_is_refused_with_the_line(v4, v6, message):
    with pytest.raises(ValueError, match=message):
        cloudflare_ranges.parse_lists(v4, v6)


class _Lists(http.server.BaseHTTPRequestHandler):
    lists: ClassVar[dict[str, str]] = {}

    def do_GET(self):
        body = self.lists.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write((body or "not found").encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    """A local stand-in for www.cloudflare.com's /ips-v4 and /ips-v6."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Lists)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_refresh_script_rewrites_the_file_from_the_published_lists(stand_in, tmp_path, capsys):
    _Lists.lists = {"/ips-v4": V4, "/ips-v6": V6}
    out = tmp_path / "ranges.json"
    argv = ["--base-url", stand_in[1], "--out", str(out)]
    assert refresh_cloudflare_ranges.main(argv) == 0
    assert "updated" in capsys.readouterr().out
    written = cloudflare_ranges.load(out)
    assert written.ipv4 == ("103.21.244.0/22", "173.245.48.0/20")
    assert written.ipv6 == ("2400:cb00::/32", "2606:4700::/32")
    assert refresh_cloudflare_ranges.main(argv) == 0
    assert "unchanged" in capsys.readouterr().out


@pytest.mark.parametrize(
    "lists",
    [{"/ips-v4": V4}, {"/ips-v4": V4, "/ips-v6": "not a list\n"}],
    ids=["missing list", "garbage"],
)
def test_a_failed_refresh_leaves_the_file_as_it_was(stand_in, tmp_path, capsys, lists):
    _Lists.lists = lists
    out = tmp_path / "ranges.json"
    out.write_text("kept\n")
    assert refresh_cloudflare_ranges.main(["--base-url", stand_in[1], "--out", str(out)]) == 1
    assert out.read_text() == "kept\n"
    assert "left as it was" in capsys.readouterr().err
