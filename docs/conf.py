"""Sphinx configuration of hpchub's documentation (built in CI: tests/docs/test_docs.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "hpchub"
author = "the hpchub developers"
copyright = "2026, the hpchub developers"
extensions = ["myst_parser", "hpchub_settings"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_static_path = []
