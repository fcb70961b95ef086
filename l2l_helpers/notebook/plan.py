"""The evaluation plan (``notebooks/PLAN.md``): every claim's statistic, number of held-out tasks, seeds, baseline
tuning and rule, fixed on ``dev`` tasks before the locked ``test`` tasks were evaluated.

The plan is a Markdown file a reader can read; each notebook has a section ``## <notebook>`` with one table whose
rows are its claims: ``| id | claim | statistic | n | seeds | baselines tuned for | rule |``. A notebook's claims
carry their ``id``; :func:`~l2l_helpers.notebook.results.report_claims` looks each one up here and records ``planned_n``
beside the ``n`` the run used, so that a run that evaluated fewer tasks than planned says so.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from l2l_helpers.settings import CHECKOUT_DIR

#: Columns of a notebook's table, in order.
COLUMNS = ("id", "claim", "statistic", "n", "seeds", "baselines tuned for", "rule")


def plan_file() -> Path | None:
    """``notebooks/PLAN.md`` of a checkout, or None where the package runs without one (an installed wheel)."""
    if CHECKOUT_DIR is None:
        return None
    path = CHECKOUT_DIR / "notebooks" / "PLAN.md"
    return path if path.is_file() else None


def parse_plan(text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{notebook: {claim id: row}}`` from the plan's Markdown (sections ``## NN_name``; other sections are prose);
    ``n`` and ``seeds`` become integers (None for a dash). A table whose header is not :data:`COLUMNS`, or an id
    used twice in a notebook, is a ``ValueError``."""
    plan: dict[str, dict[str, dict[str, Any]]] = {}
    notebook, header_seen = None, False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("## "):
            name = stripped[3:].strip().split()[0]
            notebook = name if name[:2].isdigit() and name[2:3] == "_" else None  # other sections are prose
            header_seen = False
            continue
        if notebook is None or not stripped.startswith("|"):
            continue
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        if not header_seen:
            if tuple(c.lower() for c in cells) != COLUMNS:
                raise ValueError(f"PLAN.md line {number}: a table's header must be | {' | '.join(COLUMNS)} |")
            header_seen = True
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row
        if len(cells) != len(COLUMNS):
            raise ValueError(f"PLAN.md line {number}: {len(cells)} cells, expected {len(COLUMNS)}")
        row: dict[str, Any] = dict(zip(COLUMNS, cells, strict=True))
        for key in ("n", "seeds"):
            row[key] = int(row[key]) if row[key].isdigit() else None
        claims = plan.setdefault(notebook, {})
        if row["id"] in claims:
            raise ValueError(f"PLAN.md line {number}: claim id {row['id']!r} appears twice in {notebook}")
        claims[row["id"]] = row
    return plan


@functools.cache
def _load(path: str, mtime: float) -> dict[str, dict[str, dict[str, Any]]]:
    return parse_plan(Path(path).read_text())


def planned(notebook: str) -> dict[str, dict[str, Any]]:
    """The plan's rows for ``notebook`` by claim id (empty without a plan file or a section for it)."""
    path = plan_file()
    if path is None:
        return {}
    return _load(str(path), path.stat().st_mtime).get(notebook, {})
