"""`aerovision` with one preset of the template tool changed in the tool registry.

Run as ``python -m tests.ui.changed_registry serve …`` (the arguments of ``aerovision``):
it replaces the template tool's "Visual QC" preset in :data:`aerovision.tools.TOOLS` by
:data:`CHANGED`, then runs aerovision's own command line. The browser tests check that
``GET /api/v1/tools`` and the UI show the changed preset, with no UI code involved.
"""

from __future__ import annotations

from dataclasses import replace

from aerovision import tools
from aerovision.tools.spec import Preset

REPLACED = "Visual QC"
CHANGED = Preset(
    "Strict QC (changed in the registry)",
    "A preset the test launcher put in place of Visual QC.",
    {"threshold": 0.97, "max_results": 7, "use_grayscale": False},
)


def change_registry() -> None:
    template = tools.TOOLS["template"]
    presets = tuple(CHANGED if p.name == REPLACED else p for p in template.presets)
    assert presets != template.presets, f"the template tool has no {REPLACED!r} preset"
    tools.TOOLS["template"] = replace(template, presets=presets)


if __name__ == "__main__":
    change_registry()
    from aerovision.cli import main

    main()
