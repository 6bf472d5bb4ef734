"""The README's two commands are the ones CI runs and the demo uses."""

from __future__ import annotations

from tests.support.procs import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    demo, tests = _readme_commands()
    assert demo.endswith("otel-audit demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = _readme_commands()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in [line.strip() for line in ci]
