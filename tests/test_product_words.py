"""Product files speak of the product as it is: no references to how its development was organised.

Every text file git knows of (tracked, or new and not ignored) is read line by line; a line that names a work
session, an issue or ticket of a tracker, a work period or a helper agent fails the test with ``file:line``. The
history of the work belongs in commit messages, not in the README, docs, notebooks, code or tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Files that are data, not prose (their bytes are not read).
BINARY_SUFFIXES = {".pt", ".gz", ".jpg", ".jpeg", ".png", ".gif", ".json", ".tar", ".zip", ".so", ".pdf", ".ico"}

#: This file holds the patterns themselves.
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()

#: Development-history words, each with why it is one. Ordinary English stays allowed: "a Jupyter session",
#: "interactive sessions", ``scope="session"``, "callers issue sfence()", "the reviewers' question".
PATTERNS: dict[str, str] = {
    r"\bsessions? \d+": "a numbered work session",
    r"\b(this|that|earlier|previous|later|next|last|one|each|every|the same) sessions?\b(?![-_(])": "a work session",
    r"\bissues? #?\d+\b": "a numbered issue",
    r"\(issue\b|\bissue:|\bissue \"": "an issue cited as a source",
    r"\bthe [a-z][a-z-]* issue('s)?\b": "an issue by name",
    r"\bissue's\b|\bthe issue (names|asks|says|wants|requires|lists|requests)\b": "what an issue asks",
    r"\btickets?\b": "a ticket",
    r"\bwork periods?\b": "a work period",
    r"\b(helper|sub-?) ?agents?\b": "a helper agent",
    r"\b(before|after|since|with) this change\b": "the history of a change",
    r"\ba user (measured|reported|asked|noticed)\b": "a bug report",
    r"\bthe brief (says|asks|wants)\b": "a task brief",
}
COMPILED = [(re.compile(pattern, re.IGNORECASE), why) for pattern, why in PATTERNS.items()]


def git_files() -> list[str]:
    """The repository's files that git tracks or would track (new, not ignored); skips where git is unavailable."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the product-words check reads the files git lists")
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError:
        pytest.skip(f"{ROOT} is not a git checkout (an installed copy?): nothing to check")
    return sorted({name for name in listed.decode().split("\0") if name})


def text_lines(path: Path) -> list[str] | None:
    """The file's lines, or None for binary files and files that are gone from the working tree."""
    if path.suffix.lower() in BINARY_SUFFIXES or not path.is_file():
        return None
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace").splitlines()


def findings(name: str, lines: list[str]) -> list[str]:
    """``file:line: why: text`` for each line of ``lines`` that holds a process word (regular expressions that look
    for such words, lines holding ``\\b``, are not prose and are skipped)."""
    found = []
    for number, line in enumerate(lines, start=1):
        if "\\b" in line:
            continue
        for pattern, why in COMPILED:
            match = pattern.search(line)
            if match:
                found.append(f"{name}:{number}: {why} ({match.group(0)!r}): {line.strip()[:160]}")
                break
    return found


#: The words assembled, so that no line of this file reads as the history it tests for.
SESSION, ISSUE = "sess" + "ion", "iss" + "ue"


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        (f"measured in {SESSION} 19 on a 2-core AMD EPYC", True),
        (f"the run before ({SESSION} 18's runs)", True),
        (f"as in earlier {SESSION}s", True),
        (f"Notebook 10 misses the convnet {ISSUE}'s own target", True),
        (f"The target of 120 reference epochs (the fast-evaluation {ISSUE})", True),
        ("(issue: Section 3.3)", True),
        (f"the data leak ({ISSUE} 16)", True),
        ("see ticket 4", True),
        ("the second work period", True),
        ("written by a helper agent", True),
        ("Before this change the AVX2 build spilled", True),
        ("start a Jupyter session and run all cells", False),
        ("inside the panel's output area (interactive sessions)", False),
        ('@pytest.fixture(scope="session")', False),
        ("Callers issue sfence() before their outputs are read.", False),
        ("the reviewers' question on cost", False),
        ("delete sessions through /api/sessions before stopping", False),
        (r'HISTORY = re.compile(r"\b(?:sessions?|issues?|tickets?)\b")', False),
    ],
)
def test_patterns_catch_history_and_spare_ordinary_english(line: str, flagged: bool) -> None:
    """The patterns flag development-history phrases and leave ordinary uses of the same words alone."""
    assert bool(findings("x", [line])) is flagged, line


def test_no_process_words_in_the_product() -> None:
    """No tracked text file mentions sessions, issues, tickets, work periods or helper agents."""
    found = []
    for name in git_files():
        if name == SELF:
            continue
        lines = text_lines(ROOT / name)
        if lines is not None:
            found += findings(name, lines)
    assert not found, (
        f"{len(found)} line(s) speak of how the work was organised; say what the product is instead "
        "(the history goes in commit messages):\n" + "\n".join(found)
    )
