"""Steps in JupyterLab that several browser tests take."""

from __future__ import annotations


def run_in_a_new_notebook(page, code: str) -> str:
    """Open a notebook from the launcher, run code in its first cell; the cell's output text."""
    page.wait_for_selector('.jp-LauncherCard[data-category="Notebook"]', timeout=60_000)
    page.click('.jp-LauncherCard[data-category="Notebook"]')
    page.wait_for_selector("text=| Idle", timeout=60_000)
    page.click(".jp-NotebookPanel .jp-Cell .jp-InputArea-editor")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
    return page.wait_for_selector(".jp-OutputArea-output", timeout=60_000).inner_text()
