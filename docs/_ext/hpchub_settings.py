"""The `hpchub-settings` directive: the reference of every hpchub setting, generated from the
traitlets themselves (their type, default and help), so the documentation cannot drift from
the code."""

from __future__ import annotations

import importlib
import inspect
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

# The configurable classes, in the order an admin meets them, each with the section its settings
# are set in (HPCSpawner's settings are declared in HPCSettings).
CLASSES = [
    ("hpchub.auth", "CredentialIssuingAuthenticator", "CredentialIssuingAuthenticator"),
    ("hpchub.spawners.settings", "HPCSettings", "HPCSpawner"),
    ("hpchub.hubapp", "HPCHub", "HPCHub"),
    ("hpchub.credentials.service", "CAService", "CAService"),
]


def configurable_classes() -> list[tuple[str, type]]:
    """(section, class) of each configurable class."""
    return [(section, getattr(importlib.import_module(module), name)) for module, name, section in CLASSES]


def _literals(text: str) -> str:
    """Help texts write code in single backquotes, as Markdown does; reST wants two."""
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def settings_rst(section: str, cls) -> list[str]:
    lines = [section, "-" * len(section), ""]
    doc = inspect.getdoc(cls) or ""
    if doc:
        lines += [_literals(doc.split("\n\n")[0]), ""]
    for name, trait in sorted(cls.class_own_traits(config=True).items()):
        default = trait.default_value_repr()
        if len(default) > 70:
            default = default[:67] + "..."
        lines += [f".. describe:: c.{section}.{name}", "",
                  f"   *{type(trait).__name__}*, default ``{default}``", ""]
        help_text = inspect.cleandoc(trait.help or "(no help)")
        lines += ["   " + line if line else "" for line in _literals(help_text).splitlines()]
        lines.append("")
    return lines


class SettingsDirective(SphinxDirective):
    has_content = False

    def run(self):
        text = []
        for section, cls in configurable_classes():
            text += settings_rst(section, cls)
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(StringList(text, source="hpchub-settings"), self.content_offset, container,
                                match_titles=True)
        return container.children


def setup(app):
    app.add_directive("hpchub-settings", SettingsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
