"""The Content-Security-Policy header, and no template relying on what it forbids (issue 15, item 13).
The browser test (tests/browser/test_content_security_policy.py) checks the pages still work under it."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def test_every_page_carries_a_policy_without_inline_script(client, db):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())

    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'"


def test_no_template_has_an_inline_handler_or_script():
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0).strip()}"
        for path in TEMPLATES.rglob("*.html")
        for pattern in (INLINE_HANDLER, INLINE_SCRIPT)
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []
