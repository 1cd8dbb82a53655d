"""A suite that cannot run its real part skips on a developer's machine and fails in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.realparts import in_ci, missing

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_a_missing_part_fails_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="nginx is missing: `make system-deps` installs nginx-light"):
        missing("nginx", "`make system-deps` installs nginx-light")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_part_skips_elsewhere_with_the_fix(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception, match="redis-server is missing: apt-get install redis-server"):
        missing("redis-server", "apt-get install redis-server")


def test_the_ci_script_runs_the_suite_as_ci():
    script = (ROOT / ".ci" / "run").read_text()
    assert "export CI=true" in script
    assert script.index("export CI=true") < script.index("make test")


def test_no_suite_decides_by_itself_whether_to_skip_for_a_missing_part():
    """Every skip for a missing part goes through ``missing``, so none forgets CI."""
    offenders = []
    for path in (ROOT / "tests").rglob("*.py"):
        if path.name in {"realparts.py", "test_realparts.py"}:
            continue
        text = path.read_text()
        for needle in ("pytest.skip(", "mark.skip(", "mark.skipif(", "importorskip(", 'environ.get("CI")'):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []
