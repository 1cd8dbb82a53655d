"""The renderer the nginx tests rely on changes only what it is asked to, or fails."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.deploy import nginxconf
from tests.deploy.nginx import SITE, SITE_ROOT, SITE_UPSTREAM
from tests.deploy.nginxconf import Directive, RenderError, Sub, enable_example, parse, render, walk

BASIC = [
    Sub("server", SITE_UPSTREAM, "127.0.0.1:9001"),
    Sub("listen", "80", "127.0.0.1:9002"),
    Sub("root", SITE_ROOT, "/srv/static"),
]


def names(text: str) -> list[str]:
    return [d.name for _, d in walk(parse(text))]


def test_rendering_keeps_every_directive_and_changes_only_the_substituted_arguments() -> None:
    source = SITE.read_text()
    rendered = render(source, BASIC)
    assert names(rendered) == names(source)
    before = [d.args for _, d in walk(parse(source))]
    after = [d.args for _, d in walk(parse(rendered))]
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert changed == [
        ([SITE_UPSTREAM, "max_fails=0"], ["127.0.0.1:9001", "max_fails=0"]),
        (["80"], ["127.0.0.1:9002"]),
        ([SITE_ROOT], ["/srv/static"]),
    ]


def test_a_substitution_that_matches_nothing_fails() -> None:
    with pytest.raises(RenderError, match="not in the site"):
        render(SITE.read_text(), [*BASIC, Sub("root", "/var/www/html", "/srv")])


def test_substituted_values_are_not_substituted_again() -> None:
    rendered = render(
        SITE.read_text(), [Sub("listen", "80", "443"), Sub("listen", "443", "127.0.0.1:1")], enable=["TLS"]
    )
    listens = [d.args for _, d in walk(parse(rendered)) if d.name == "listen"]
    assert listens == [["443"], ["127.0.0.1:1", "ssl", "http2"]]


def test_overriding_a_directive_the_site_lacks_fails() -> None:
    with pytest.raises(RenderError, match="no such directive"):
        render(SITE.read_text(), BASIC, override={"proxy_buffer_size": ["4k"]})


def test_additions_go_into_the_named_block_only() -> None:
    rendered = render(SITE.read_text(), BASIC, add={"location = /api/chat": ["proxy_ignore_headers X-Accel-Buffering"]})
    placed = [path for path, d in walk(parse(rendered)) if d.name == "proxy_ignore_headers"]
    assert placed == [("server", "location = /api/chat")]


def test_a_lost_directive_fails_the_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the writer ever drop a directive, the rendering says so."""
    real_dump = nginxconf.dump

    def lossy_dump(directives: Sequence[Directive], indent: int = 0) -> str:
        return "\n".join(line for line in real_dump(directives, indent).splitlines() if "gzip" not in line)

    monkeypatch.setattr(nginxconf, "dump", lossy_dump)
    with pytest.raises(RenderError, match="missing"):
        render(SITE.read_text(), BASIC)


def test_enabling_the_tls_example_uncomments_its_directives_only() -> None:
    source = SITE.read_text()
    enabled = enable_example(source, "TLS")
    added = names(enabled)
    for name in names(source):
        added.remove(name)
    assert added == [
        "listen",
        "ssl_certificate",
        "ssl_certificate_key",
        "ssl_protocols",
        "ssl_session_cache",
        "ssl_session_timeout",
    ]


def test_an_unknown_example_fails() -> None:
    with pytest.raises(RenderError, match="not found"):
        enable_example(SITE.read_text(), "QUIC")


@pytest.mark.parametrize("broken", ["server { listen 80; ", "listen 80", "location / { } }", "root '/srv;"])
def test_malformed_configs_fail_to_parse(broken: str) -> None:
    with pytest.raises(RenderError):
        parse(broken)
