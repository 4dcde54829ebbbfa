"""Every hostile value in every option of the most permissive target (the demo's "custom"):
refused with a FieldError naming the field, or - where it is a legal value once trimmed
(" 1 ", "batch ") - reduced to that clean value, never passed on as sent."""

from __future__ import annotations

import re

import pytest

from hpchub.spawners.options import FieldError, resolve
from hpchub.spawners.targets import FIELDS

from ..hostile import BLANK, CONTROL, HOSTILE_JSON, HOSTILE_TEXT
from .test_targets import TARGETS, alice_choices

CUSTOM = TARGETS["custom"]
CLEAN = {"number": re.compile(r"[0-9]{1,9}"), "text": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+&:-]{0,63}")}


def check_value(field: str, raw) -> None:
    try:
        values = resolve(CUSTOM, {"target": "custom", field: raw}, alice_choices(), "alice")
    except FieldError as refused:
        assert refused.field == field, (field, raw, refused)
        return
    chosen = values.get(field)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        assert chosen == CUSTOM.defaults.get(field), (field, raw, chosen)  # blank: the target's default
        return
    assert chosen is not None, (field, raw)
    kind = "number" if isinstance(chosen, int) else "text"
    assert CLEAN[kind].fullmatch(str(chosen)), (field, raw, chosen)
    # Accepted only as sent, trimmed (or, for a walltime, as the same time in Slurm's form).
    assert str(raw).strip().isascii(), (field, raw, chosen)


@pytest.mark.parametrize("field", FIELDS)
def test_every_hostile_text_is_refused_or_reduced_to_a_clean_legal_value(field):
    for raw in HOSTILE_TEXT:
        check_value(field, raw)


@pytest.mark.parametrize("field", FIELDS)
def test_values_of_other_json_types_are_refused(field):
    for raw in HOSTILE_JSON:
        check_value(field, raw)


def test_hostile_option_names_are_refused_by_name():
    for name in HOSTILE_TEXT[:80] + ["__class__", "script", "env", "argv", "cmd"]:
        with pytest.raises(FieldError) as refused:
            resolve(CUSTOM, {name: "1"}, alice_choices(), "alice")
        assert refused.value.field == name


@pytest.mark.parametrize("field", FIELDS)
def test_a_blank_value_is_the_targets_default_and_a_control_character_is_refused(field):
    gpu = TARGETS["gpu"]
    for blank in BLANK:
        assert resolve(CUSTOM, {field: blank}, alice_choices(), "alice").get(field) == CUSTOM.defaults.get(field)
        if field in gpu.choose:
            assert resolve(gpu, {field: blank}, alice_choices(), "alice").get(field) == gpu.defaults.get(field)
    for value in CONTROL:
        with pytest.raises(FieldError) as refused:
            resolve(CUSTOM, {field: value}, alice_choices(), "alice")
        assert refused.value.field == field and "control or invisible characters" in refused.value.message
        assert str(refused.value).isprintable()
