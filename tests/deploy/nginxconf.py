"""Render deploy/nginx/llm-sse.conf for a test: the same directives, other addresses.

The tests must exercise the site a sysadmin installs, not a look-alike, so a
rendering may only

* substitute whole arguments of named directives (addresses, ports, paths),
  each substitution required to match at least once;
* give a directive other arguments (``override``: a shortened timeout, or the
  buffering a negative test needs), the directive required to exist;
* add directives a negative test needs (``add``), named explicitly;
* uncomment an example block between its ``# ---`` marker lines (``enable``),
  exactly as its own comment tells the reader to.

The config is parsed into directives and written back out; the result is
parsed again and its directives compared with the source's, so a directive
that went missing (or appeared unasked) fails the rendering loudly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field


class RenderError(ValueError):
    """The rendering would not be the site with only the asked-for changes."""


@dataclass
class Directive:
    name: str
    args: list[str] = field(default_factory=list)
    block: list[Directive] | None = None

    @property
    def head(self) -> str:
        return " ".join([self.name, *self.args])


@dataclass(frozen=True)
class Sub:
    """Replace the argument ``old`` (the whole argument) of every ``directive`` by ``new``.

    All substitutions apply to the source's arguments at once, so a new value
    is never substituted again.
    """

    directive: str
    old: str
    new: str


# -- parsing


def _tokens(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            yield c
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise RenderError(f"unterminated quoted string at offset {i}")
            yield text[i : j + 1]
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                if text[j] == "$" and j + 1 < n and text[j + 1] == "{":
                    raise RenderError("${...} variables are not supported by this renderer")
                j += 1
            yield text[i:j]
            i = j


def parse(text: str) -> list[Directive]:
    """Directives of an nginx config (comments dropped, quotes kept as written)."""
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for token in _tokens(text):
        if token == ";":
            if not words:
                raise RenderError("empty directive (a stray ';')")
            stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            if not words:
                raise RenderError("a block without a directive name")
            block: list[Directive] = []
            stack[-1].append(Directive(words[0], words[1:], block))
            stack.append(block)
            words = []
        elif token == "}":
            if words or len(stack) == 1:
                raise RenderError("unbalanced '}' or a directive missing its ';'")
            stack.pop()
        else:
            words.append(token)
    if words or len(stack) != 1:
        raise RenderError("the config ends inside a directive or a block")
    return stack[0]


def dump(directives: Sequence[Directive], indent: int = 0) -> str:
    pad = "    " * indent
    lines: list[str] = []
    for d in directives:
        if d.block is None:
            lines.append(f"{pad}{d.head};")
        else:
            lines.append(f"{pad}{d.head} {{")
            body = dump(d.block, indent + 1)
            if body:
                lines.append(body)
            lines.append(f"{pad}}}")
    return "\n".join(lines)


def walk(directives: Sequence[Directive], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Directive]]:
    """Every directive with the heads of the blocks around it."""
    for d in directives:
        yield path, d
        if d.block is not None:
            yield from walk(d.block, (*path, d.head))


def find_block(directives: Sequence[Directive], head: str) -> Directive:
    """The one block whose head (name and arguments) is ``head``."""
    found = [d for _, d in walk(directives) if d.block is not None and d.head == head]
    if len(found) != 1:
        raise RenderError(f"expected exactly one block {head!r}, found {len(found)}")
    return found[0]


# -- the example blocks


def enable_example(text: str, name: str) -> str:
    """Uncomment the ``#directive`` lines of the example block ``# --- <name> ...``.

    The block runs from the marker line starting ``# --- <name>`` to the one
    containing ``end of <name>``; its prose lines (``# ...``) stay comments.
    """
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(f"# --- {name}")]
    ends = [i for i, line in enumerate(lines) if f"end of {name}" in line and line.strip().startswith("# ---")]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise RenderError(f"example block {name!r} not found exactly once")
    enabled = 0
    for i in range(starts[0], ends[0]):
        stripped = lines[i].lstrip()
        if stripped.startswith("#") and not stripped.startswith("# "):
            lines[i] = lines[i].replace("#", "", 1)
            enabled += 1
    if not enabled:
        raise RenderError(f"example block {name!r} has no commented directives")
    return "".join(lines)


# -- rendering


def render(
    source: str,
    subs: Iterable[Sub],
    *,
    enable: Sequence[str] = (),
    override: Mapping[str, Sequence[str]] | None = None,
    add: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The site with ``subs`` applied; see the module's docstring for the rules.

    ``override`` maps a directive name to its new arguments (everywhere it
    appears); ``add`` maps a block head (e.g. ``"location = /api/chat"``) to
    directives appended to it (e.g. ``"proxy_ignore_headers X-Accel-Buffering"``).
    """
    for name in enable:
        source = enable_example(source, name)
    directives = parse(source)
    expected = _signature(directives)

    table = {(sub.directive, sub.old): sub for sub in subs}
    hits = dict.fromkeys(table.values(), 0)
    for _, d in walk(directives):
        for i, arg in enumerate(d.args):
            found = table.get((d.name, arg))
            if found is not None:
                d.args[i] = found.new
                hits[found] += 1
    for sub, count in hits.items():
        if not count:
            raise RenderError(f"{sub.directive} {sub.old}: not in the site, so it cannot be substituted")

    for name, args in (override or {}).items():
        targets = [d for _, d in walk(directives) if d.name == name]
        if not targets:
            raise RenderError(f"cannot override {name}: the site has no such directive")
        for d in targets:
            d.args = list(args)

    for head, lines in (add or {}).items():
        block = find_block(directives, head)
        assert block.block is not None
        where = _names_to(directives, block)
        for line in lines:
            new = parse(line.rstrip(";") + ";")
            block.block.extend(new)
            expected.extend((where, d.name) for d in new)

    rendered = dump(directives) + "\n"
    got = _signature(parse(rendered))
    if sorted(got) != sorted(expected):
        missing = [e for e in expected if e not in got]
        extra = [g for g in got if g not in expected]
        raise RenderError(f"the rendering changed the directives: missing {missing}, unexpected {extra}")
    return rendered


Signature = list[tuple[tuple[str, ...], str]]


def _signature(directives: Sequence[Directive], around: tuple[str, ...] = ()) -> Signature:
    """Each directive's name with the names of the blocks around it."""
    out: Signature = []
    for d in directives:
        out.append((around, d.name))
        if d.block is not None:
            out.extend(_signature(d.block, (*around, d.name)))
    return out


def _names_to(directives: Sequence[Directive], target: Directive, around: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The names of the blocks from the top down to and including ``target``."""
    for d in directives:
        if d is target:
            return (*around, d.name)
        if d.block is not None:
            try:
                return _names_to(d.block, target, (*around, d.name))
            except LookupError:
                pass
    raise LookupError(target.head)
