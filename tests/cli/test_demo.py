"""``novacron demo`` with its output in a pipe: a summary on its own lines, a command that can be copied."""

from __future__ import annotations

import re
from pathlib import Path

from .runner import cli


def test_in_a_pipe_the_summary_starts_on_its_own_line_and_the_inspect_command_is_one_line(tmp_path: Path) -> None:
    # The demo keeps its folder for inspection, in $TMPDIR: here the test's own folder, removed with it.
    res = cli("demo", "--duration", "1", env={"TMPDIR": str(tmp_path)}, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    title = next(i for i, line in enumerate(lines) if "demo summary" in line)
    assert lines[title].strip() == "demo summary", f"the summary shares a line: {lines[title]!r}"
    assert lines[title - 1].startswith("injected "), "the live table's closing line comes just before"
    inspect = [line for line in lines if line.startswith("inspect:")]
    assert len(inspect) == 1
    found = re.fullmatch(r"inspect: novacron incidents list --store sqlite:///(\S+/novacron\.db)", inspect[0])
    assert found, f"not one copyable line: {inspect[0]!r}"
    assert lines[-1] == inspect[0], "nothing of the command is wrapped onto a next line"
    assert Path(found[1]).parent.parent == tmp_path, "the demo's folder is made in $TMPDIR"
