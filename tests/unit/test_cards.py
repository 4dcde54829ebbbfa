"""The home page's session cards (spawners/cards.py): one card per server, from hpchub's
spawner or from a stopped server's database row, with its state in words."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qsl

from jupyterhub import orm

from hpchub.spawners.cards import session_card
from hpchub.spawners.state import BatchServer, LastServer, SpawnerState, dump

NOW = 1_800_000_000.0


def running(**overrides):
    fields = dict(name="gpu", display_name="", user_options={"target": "gpu", "walltime": "01:00:00"},
                  active=True, ready=True, pending=None, trouble="", notice="", waiting_in_queue=False,
                  last_outcome={}, seconds_left=3 * 3600 + 25 * 60, target=SimpleNamespace(title="GPU node"),
                  clusters={}, where="c4", job_id="1234", last_server=LastServer("batch", "alice-gpu-1", "", "login1",
                                                                                     "1234"))
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_a_running_job_shows_where_its_job_and_when_it_ends():
    card = session_card(running(), now=NOW)
    assert (card.title, card.state, card.tone) == ("gpu", "running", "running")
    assert (card.target, card.node, card.job_id) == ("GPU node", "c4", "1234")
    assert card.time_left == "3 h 25 min" and card.ends_at == int(NOW) + 3 * 3600 + 25 * 60
    assert card.has_output and not card.can_relaunch
    assert session_card(running(seconds_left=59), now=NOW).time_left == "0 min"


def test_every_state_in_words():
    words = {
        "waiting in the queue": running(ready=False, pending="spawn", waiting_in_queue=True),
        "starting": running(ready=False, pending="spawn"),
        "stopping": running(ready=False, pending="stop"),
        "being checked": running(ready=False, pending="check"),
        "running, but its tunnel is down": running(trouble="its tunnel is down"),
        "running; login node login1 is being drained": running(notice="login node login1 is being drained"),
        "stopped: job 1234 reached its time limit": running(active=False, ready=False, seconds_left=None,
                                                            last_outcome={"message": "job 1234 reached its time limit"}),
    }
    for said, spawner in words.items():
        assert session_card(spawner, now=NOW).state == said
    assert session_card(running(ready=False, pending="some-new-word"), now=NOW).state == "busy"


def test_a_stopped_server_row_gives_the_same_card_with_relaunch_and_its_output():
    state = dump(SpawnerState(last_outcome={"message": "job 77 failed"},
                              last_server=LastServer("batch", "alice-x-1", "", "login1", "77")))
    # JupyterHub's own row class, as the home page gets it (it has a `pending` attribute too).
    row = orm.Spawner(name="x", display_name="", user_options={"target": "compute", "walltime": "00:30:00",
                                                                "nodes": 2}, state=state)
    card = session_card(row, now=NOW)
    assert (card.state, card.tone, card.has_output, card.can_relaunch) == ("stopped: job 77 failed", "failed",
                                                                           True, True)
    assert not card.active and card.node == "" and card.time_left == ""
    # Edit and relaunch: a spawn link with exactly these options.
    assert dict(parse_qsl(card.edit_query)) == {"opt-target": "compute", "opt-walltime": "00:30:00", "opt-nodes": "2"}
    # A row whose options were PUT by hand as anything, or whose state a newer hpchub wrote.
    odd = orm.Spawner(name="", display_name="", user_options=["not", "a", "dict"], state={"version": 99})
    card = session_card(odd, now=NOW)
    assert (card.title, card.state, card.options, card.can_relaunch) == ("Default server", "stopped", {}, False)


def test_a_server_saved_before_hpchub_kept_its_output_place_still_has_its_output():
    saved = dump(SpawnerState("batch", "compute", BatchServer(job_id="5", server_id="s")))
    assert "last_server" not in saved  # as hpchub 0.2 saved it
    card = session_card(orm.Spawner(name="y", display_name="Y", user_options={}, state=saved), now=NOW)
    assert card.title == "Y" and card.has_output


def test_a_server_in_a_container_shows_its_image_as_the_user_chose_it():
    from hpchub.spawners.targets import Target

    choice = Target.from_config({"name": "c", "title": "In a container", "kind": "login", "container": {
        "runtime": "charliecloud", "images": {"PyTorch": "/images/pytorch", "Plain": "/images/plain"}}})
    fixed = Target.from_config({"name": "f", "title": "Fixed", "kind": "login", "container": {
        "runtime": "charliecloud", "image": "/images/fixed"}})
    bare = Target.from_config({"name": "b", "title": "Bare", "kind": "login"})
    shown = {
        "Plain": running(target=choice, user_options={"target": "c", "image": "/images/plain"}),
        "PyTorch": running(target=choice, user_options={"target": "c"}),  # the list's first
        "/images/fixed": running(target=fixed, user_options={"target": "f"}),
        "": running(target=bare, user_options={"target": "b"}),
    }
    for image, spawner in shown.items():
        assert session_card(spawner, now=NOW).image == image
    # A choice the admin has since taken out of the list: no image is claimed, the card still shows.
    gone = session_card(running(target=choice, user_options={"target": "c", "image": "/images/old"}), now=NOW)
    assert gone.image == "" and gone.state == "running"
    # A stopped server shows none (it runs nowhere).
    assert session_card(running(target=fixed, user_options={"target": "f"}, active=False, ready=False,
                                seconds_left=None), now=NOW).image == ""
