"""The spawn page's form: rendering it (pure, from the targets, the scheduler's choices and what
to start from) and reading what it posts. Checking is not done here: every option goes through
the one path of options.py, by the spawner's check_user_options.

A batch target's fields are posted as "TARGET.FIELD", so that only the chosen card's values are
sent; hpchub's page that confirms a spawn link (for a spawner without a form) posts "opt-FIELD".
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import jinja2

from .prespawn import Finding
from .targets import Choices, Target


@dataclass(frozen=True)
class ClusterGroup:
    """A cluster's section of the spawn page: its targets for this user and its scheduler's
    choices (None: not asked, or it did not answer, which `unavailable` then says)."""

    name: str
    title: str
    state: str  # "up", "degraded: ...", "unreachable: ..." (Cluster.state)
    targets: list[Target]
    choices: Choices | None
    unavailable: str = ""
    findings: tuple[Finding, ...] = ()  # of the pre-spawn checks (prespawn.py)

    def findings_for_all(self) -> list[Finding]:
        """Findings about every job of the user on this cluster."""
        return [f for f in self.findings if not f.accounts]

    def account_flags(self) -> dict[str, str]:
        """Account ("" for the default account) -> why a job charged to it would not start."""
        return {account: f.message for f in self.findings for account in sorted(f.accounts)}

    def values(self, user: str) -> dict:
        """What the template reads of this cluster's choices."""
        choices = self.choices or Choices({}, {})
        return {"choices": choices, "all_qos": choices.qos_for(None),
                "reservations": [choices.reservation(name) for name in choices.reservations_for(user)]}

    def usable_now(self, reservation: str) -> bool:
        """Whether a reservation remembered from an earlier spawn may be offered as the default:
        it exists and has started (one that starts next week would queue the job until then)."""
        found = self.choices.reservation(reservation) if self.choices else None
        return found is not None and found.active


@dataclass
class Refusal:
    """A refused form, shown again with the error next to its field (kept on the server's own
    spawner, so that server A's refusal never shows on server B's form)."""

    options: dict
    errors: dict


def _template(name: str) -> jinja2.Template:
    text = resources.files("hpchub").joinpath("templates", name).read_text()
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(text)


def render(groups: list[ClusterGroup], *, last: dict, refusal: Refusal | None, user: str,
           headings: bool = False, notice: str = "") -> str:
    """The form's HTML: one card per target, grouped by cluster (with a heading and the
    cluster's state where the hub has several: `headings`), the chosen one open with the
    values to start from (a refusal's, else `last`: a spawn link's, or the server's last options);
    `notice`: a refusal whose field the form does not show (a spawn link's), above the targets."""
    last = refusal.options if refusal else last
    errors = refusal.errors if refusal else {}
    targets = [t for group in groups for t in group.targets]
    if not refusal and last.get("reservation"):
        # Remembered, a reservation that has not started (or has ended) is not the default: the
        # user chooses it again, reading when it starts.
        group = next((g for g in groups if any(t.name == last.get("target") for t in g.targets)), None)
        if group is None or not group.usable_now(str(last["reservation"])):
            last = {key: value for key, value in last.items() if key != "reservation"}
    chosen = last.get("target") if any(t.name == last.get("target") for t in targets) else targets[0].name
    return _template("spawn_form.html").render(
        groups=[(group, group.values(user)) for group in groups], headings=headings, last=last, chosen=chosen,
        errors=errors, user=user, notice=notice)


def options_from(formdata: dict) -> dict:
    """The options a form posted (values as sent; the check trims and types them)."""
    if any(key.startswith("opt-") for key in formdata):  # the confirmation page of a spawn link
        return {key[4:]: values[0] for key, values in formdata.items() if key.startswith("opt-") and values}
    target = (formdata.get("target") or [""])[0]
    prefix = f"{target}."
    options = {"target": target} if target else {}
    for key, values in formdata.items():
        if key.startswith(prefix) and values and values[0].strip():
            options[key[len(prefix):]] = values[0]
    return options


def refusal_of(options: dict, message: str) -> Refusal:
    """A refusal from the check's message ("field: why")."""
    field, _, why = message.partition(": ")
    return Refusal(options, {field: why})
