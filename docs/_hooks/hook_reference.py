"""mkdocs hook: each `{{ hook NAME }}` line of reference/hooks.md becomes that hook's heading, signature and
docstring, read from `gan_registry.hookspecs`, so the reference cannot drift from the hooks the core calls."""
from __future__ import annotations

import inspect
import re

MARKER = re.compile(r"^\{\{ hook (\w+) \}\}$", re.MULTILINE)


def hook_section(name: str) -> str:
    from gan_registry import hookspecs

    function = getattr(hookspecs, name, None)
    if function is None:
        raise ValueError(f"reference/hooks.md names {{{{ hook {name} }}}}, which gan_registry.hookspecs lacks")
    doc = inspect.getdoc(function) or ""
    quoted = "\n".join(f"> {line}" if line else ">" for line in doc.splitlines())
    return f"## `{name}{inspect.signature(function)}`\n\n{quoted}"


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if page.file.src_uri != "reference/hooks.md":
        return markdown
    return MARKER.sub(lambda m: hook_section(m.group(1)), markdown)
