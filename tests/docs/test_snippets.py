"""Every code snippet in README.md and docs/*.md is executed, so the documentation cannot rot.

Conventions (docs/index.md repeats them for writers):

* ```python: run in a fresh interpreter (``python -c``), in a temporary directory, with a clean
  environment (no inherited ``OTEL_*``), records going to a temporary embedded sink, repo on
  ``PYTHONPATH``. It must exit 0.
* ```yaml: a **policy** when marked ``<!-- policy -->`` or when every top-level key is a policy key
  (``rules``, ``audit_configs``, ``extends``, ``routes``, ``redaction``, ...): loaded and validated
  with the real policy loader (``extends: pack:NAME`` resolves; relative paths resolve from the
  repo). Any other yaml block must at least parse.
* ```bash / ```sh / ```console whose first command starts with ``otel-audit``: each ``otel-audit``
  line is run (``$ `` prompts and trailing comments stripped) with a timeout, in a temporary
  directory that holds copies of ``examples/``; it must exit 0, or the code given by
  ``<!-- exit: N -->``. Other shell blocks (installs, servers) are not run.
* ``<!-- no-test: REASON -->`` on the line right before a fence skips that block; the reason is
  required and is shown in the skip message.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.procs import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>no-test|policy|exit)\s*:?\s*(?P<value>.*?)\s*-->\s*$")
POLICY_KEYS = {"$schema", "format", "id", "version", "description", "extends", "failure_mode", "defaults", "redaction",
               "required_fields", "actors", "rules", "audit_configs", "routes", "critical"}
SHELL = {"bash", "sh", "shell", "console"}
TIMEOUT = 120


@dataclass
class Snippet:
    path: Path
    line: int
    lang: str
    code: str
    markers: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}:{self.lang or 'text'}"


def extract(path: Path) -> list[Snippet]:
    """Fenced blocks with the markers on the line(s) just above them."""
    lines = path.read_text().splitlines()
    snippets, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, lang = match["fence"], match["info"].strip().split(" ")[0].lower()
        markers: dict[str, str] = {}
        back = index - 1
        while back >= 0 and MARKER.match(lines[back]):
            marker = MARKER.match(lines[back])
            markers[marker["kind"]] = marker["value"]
            back -= 1
        body = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence[:3]):
            body.append(lines[index][len(match["indent"]):])
            index += 1
        snippets.append(Snippet(path, index - len(body), lang, "\n".join(body) + "\n", markers))
        index += 1
    return snippets


ALL = [snippet for doc in DOCS for snippet in extract(doc)]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "OTEL_AUDIT_SINK_PATH": str(tmp_path / "audit.jsonl"),
        "OTEL_AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
        "OTEL_AUDIT_QUIET": "true",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "NOTES_DB": str(tmp_path / "notes.db"),
    })
    return env


def is_policy(snippet: Snippet, data: object) -> bool:
    if "policy" in snippet.markers:
        return True
    return isinstance(data, dict) and bool(data) and set(map(str, data)) <= POLICY_KEYS


def shell_commands(code: str) -> list[str]:
    commands, pending = [], ""
    for raw in code.splitlines():
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if pending:
            line = pending + " " + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def _strip_comment(command: str) -> str:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return shlex.join(list(lexer))


@pytest.mark.parametrize("snippet", [s for s in ALL if s.lang in ("python", "py")], ids=lambda s: s.id)
def test_python_snippet_runs(snippet: Snippet, tmp_path: Path) -> None:
    if "no-test" in snippet.markers:
        pytest.skip(f"{snippet.id}: {snippet.markers['no-test']}")
    result = subprocess.run([sys.executable, "-c", snippet.code], cwd=tmp_path, env=_env(tmp_path),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{snippet.id} failed:\n{snippet.code}\n--- stderr ---\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("snippet", [s for s in ALL if s.lang in ("yaml", "yml")], ids=lambda s: s.id)
def test_yaml_snippet_is_valid(snippet: Snippet, tmp_path: Path) -> None:
    if "no-test" in snippet.markers:
        pytest.skip(f"{snippet.id}: {snippet.markers['no-test']}")
    data = yaml.safe_load(snippet.code)
    if not is_policy(snippet, data):
        return
    from otel_audit.policy import PolicyError, load_policy

    policy_file = REPO / f".snippet-{os.getpid()}-{snippet.line}.yaml"  # relative extends: resolve from the repo
    policy_file.write_text(snippet.code)
    try:
        load_policy(str(policy_file), environ={})
    except PolicyError as exc:
        pytest.fail(f"{snippet.id}: the policy does not load:\n{snippet.code}\n{exc.report()}")
    finally:
        policy_file.unlink()


@pytest.mark.parametrize("snippet", [s for s in ALL if s.lang in ("json",)], ids=lambda s: s.id)
def test_json_snippet_parses(snippet: Snippet) -> None:
    if "no-test" in snippet.markers:
        pytest.skip(f"{snippet.id}: {snippet.markers['no-test']}")
    json.loads(snippet.code)


RUNNABLE_SHELL = [s for s in ALL if s.lang in SHELL and shell_commands(s.code)
                  and shell_commands(s.code)[0].startswith("otel-audit")]


@pytest.mark.parametrize("snippet", RUNNABLE_SHELL, ids=lambda s: s.id)
def test_otel_audit_commands_run(snippet: Snippet, tmp_path: Path) -> None:
    if "no-test" in snippet.markers:
        pytest.skip(f"{snippet.id}: {snippet.markers['no-test']}")
    expected = int(snippet.markers.get("exit") or 0)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / "home").mkdir()
    cli = [sys.executable, "-m", "otel_audit.cli"]
    for command in shell_commands(snippet.code):
        if not command.startswith("otel-audit"):
            continue
        argv = shlex.split(_strip_comment(command))
        result = subprocess.run(cli + argv[1:], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                                timeout=TIMEOUT)
        assert result.returncode == expected, (f"{snippet.id}: `{command}` exited {result.returncode}, expected "
                                               f"{expected}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def test_every_skip_names_its_reason() -> None:
    unexplained = [s.id for s in ALL if "no-test" in s.markers and len(s.markers["no-test"].strip()) < 8]
    assert not unexplained, f"<!-- no-test: REASON --> needs a reason: {unexplained}"


def test_the_runner_finds_snippets_in_every_doc() -> None:
    assert {s.path.name for s in ALL} >= {"README.md", "policy.md", "getting-started.md", "compliance.md"}


def test_the_runner_catches_broken_snippets(tmp_path: Path) -> None:
    """Self-check: markers are read, a bad policy does not load, a failing python block fails."""
    from otel_audit.policy import PolicyError, load_policy

    doc = tmp_path / "doc.md"
    doc.write_text("<!-- no-test: needs a server -->\n```bash\notel-audit demo\n```\n\n"
                   "```yaml\nrules:\n  - level: loud\n```\n\n<!-- exit: 1 -->\n```bash\n$ otel-audit coverage \\\n"
                   "    --app x:y  # comment\n```\n\n```python\nraise SystemExit(3)\n```\n")
    skipped, policy, shell, python = extract(doc)
    assert skipped.markers == {"no-test": "needs a server"} and shell.markers == {"exit": "1"}
    assert shell_commands(shell.code) == ["otel-audit coverage --app x:y  # comment"]
    assert _strip_comment(shell_commands(shell.code)[0]) == "otel-audit coverage --app x:y"
    assert is_policy(policy, yaml.safe_load(policy.code))
    broken = tmp_path / "broken.yaml"
    broken.write_text(policy.code)
    with pytest.raises(PolicyError, match="loud"):
        load_policy(str(broken), environ={})
    result = subprocess.run([sys.executable, "-c", python.code], capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 3
