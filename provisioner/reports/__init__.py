"""Plan reports for people who review without a terminal: HTML, Markdown, CSV.

Each builder is a pure function Plan -> str; the CLI writes the string to a
file or stdout, the scheduler attaches it to its notification.
"""

from __future__ import annotations

import json
from typing import Callable

from ..model import Plan
from .csv_report import plan_csv
from .html_report import plan_html
from .markdown_report import plan_markdown


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"


# --format NAME -> builder; "text" (the terminal view) is the CLI's own
PLAN_REPORTS: dict[str, Callable[[Plan], str]] = {
    "json": plan_json, "html": plan_html, "markdown": plan_markdown, "csv": plan_csv,
}

__all__ = ["PLAN_REPORTS", "plan_csv", "plan_html", "plan_json", "plan_markdown"]
