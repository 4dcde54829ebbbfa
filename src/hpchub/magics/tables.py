"""A scheduler command's printed table as rows with the command's own columns, for the magics'
pandas mode (NERSC's slurm-magic read them with `pandas.read_table(sep=r"\\s+")`, which
misaligns every row with a blank or spaced field). Pure: text in, rows out.

- Delimited output (`--parsable`, `--parsable2`, `-P`, `-p`): split at "|" (a trailing "|" of
  `--parsable` is not a column).
- A header underlined by a line of dashes (sacct, sacctmgr, sshare, sreport): each column is
  the span of its dashes, so blank fields (sshare's User of an account row) and values with
  spaces ("CANCELLED by 1001") stay in their column.
- Otherwise (squeue, sinfo, sprio, in their default or user-given formats): fields are split
  at whitespace, the last column taking the rest of the line (squeue's
  "NODELIST(REASON)" may hold "(ReqNodeNotAvail, UnavailableNodes:c1)").

Whole numbers become ints, as read_table made them, where every value of a column is one.
"""

from __future__ import annotations

import re
from typing import NamedTuple

DASHES = re.compile(r"^[\s-]*-[\s-]*$")
WHOLE = re.compile(r"-?\d+")


class Table(NamedTuple):
    columns: list[str]  # (kept for a table without rows: squeue with no jobs still has its columns)
    rows: list[dict]


def parse(text: str, delimited: bool = False) -> Table:
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return Table([], [])
    if delimited:
        columns, rows = _delimited(lines)
    else:
        underline = _underline(lines)
        if underline is not None:
            columns, rows = _underlined(lines[underline - 1], lines[underline], lines[underline + 1:])
        else:
            columns, rows = _whitespace(lines)
    return Table(columns, _typed(rows))


def _underline(lines: list[str]) -> int | None:
    """The line of dashes under the table's header: one that follows a line of text, with one
    group of dashes per column (sreport frames its title in lines of one group: a table of
    several columns is preferred to them)."""
    candidates = [i for i in range(1, len(lines)) if DASHES.match(lines[i]) and not DASHES.match(lines[i - 1])]
    several = [i for i in candidates if len(lines[i].split()) > 1]
    return (several or candidates or [None])[0]


def _delimited(lines: list[str]) -> tuple[list[str], list[dict]]:
    header = lines[0].split("|")
    if len(header) > 1 and header[-1] == "":
        header = header[:-1]
    return header, [dict(zip(header, line.split("|"))) for line in lines[1:]]


def _underlined(header: str, dashes: str, lines: list[str]) -> tuple[list[str], list[dict]]:
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    names = [header[start:end].strip() for start, end in spans]
    rows = []
    for line in lines:
        if DASHES.match(line):
            continue  # (sreport repeats its underline)
        cells = [line[start:end].strip() for start, end in spans[:-1]]
        cells.append(line[spans[-1][0]:].strip())  # the last column: the rest of the line
        rows.append(dict(zip(names, cells)))
    return names, rows


def _whitespace(lines: list[str]) -> tuple[list[str], list[dict]]:
    names = lines[0].split()
    rows = []
    for line in lines[1:]:
        cells = line.split(None, len(names) - 1)
        rows.append(dict(zip(names, cells + [""] * (len(names) - len(cells)))))
    return names, rows


def _typed(rows: list[dict]) -> list[dict]:
    if not rows:
        return rows
    whole = {name for name in rows[0] if all(WHOLE.fullmatch(str(row.get(name, ""))) for row in rows)}
    return [{name: int(value) if name in whole else value for name, value in row.items()} for row in rows]
