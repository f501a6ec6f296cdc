"""CI is a new user's run: .ci/run builds a brand-new venv and runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README.md has no '## The two commands' bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_has_two_commands_a_demo_and_the_tests() -> None:
    demo, tests = _readme_commands()
    assert demo.endswith("python -m kalshi_router demo")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readmes_test_command_in_a_new_venv() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    steps = [line.strip() for line in script.splitlines() if not line.lstrip().startswith("#")]
    _, tests = _readme_commands()
    assert tests in steps, f"{tests!r} is not a line of .ci/run"
    venv = steps.index(next(line for line in steps if re.match(r"python3? -m venv ", line)))
    activate = steps.index(next(line for line in steps if line.startswith("source ")))
    assert venv < activate < steps.index(tests)
    # Nothing installed into the machine's own Python first.
    assert not any("pip install" in line for line in steps[:activate])
