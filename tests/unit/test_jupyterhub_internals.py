"""Every private name of JupyterHub that hpchub touches, asserted against the installed
JupyterHub: an upgrade that renames or changes one fails here, in CI, instead of silently at a
centre. (docs/explanation/upstream.md says why each is used and what would make it unnecessary.)"""

from __future__ import annotations

import inspect

import jupyterhub
from jupyterhub.apihandlers.users import UserServerAPIHandler
from jupyterhub.app import JupyterHub
from jupyterhub.handlers.pages import SpawnHandler, default_handlers
from jupyterhub.spawner import Spawner
from jupyterhub.user import UserDict, _SpawnerDict

from hpchub.hubapp import CheckingUserServerAPIHandler, FormFirstSpawnHandler, HPCHub


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_jupyterhub_version_is_one_hpchub_is_tested_with():
    major, minor = (int(part) for part in jupyterhub.__version__.split(".")[:2])
    assert (major, minor) in {(6, 1)}, jupyterhub.__version__


def test_the_spawn_handlers_private_methods_hpchub_overrides_are_there_with_their_signatures():
    assert parameters(SpawnHandler._get_user_options) == ["self", "query_options"]
    assert parameters(SpawnHandler._wrap_spawn_single_user) == [
        "self", "user", "server_name", "display_name", "spawner", "pending_url", "options"]
    assert parameters(SpawnHandler._render_form) == ["self", "for_user", "spawner_options_form", "message",
                                                     "html_message"]
    for ours in (FormFirstSpawnHandler._wrap_spawn_single_user, FormFirstSpawnHandler._render_form):
        theirs = getattr(SpawnHandler, ours.__name__)
        assert parameters(ours) == parameters(theirs)


def test_the_handlers_hpchub_replaces_are_in_jupyterhubs_handler_list():
    assert SpawnHandler in {handler for _, handler, *_ in default_handlers}
    assert issubclass(CheckingUserServerAPIHandler, UserServerAPIHandler)
    assert issubclass(FormFirstSpawnHandler, SpawnHandler)


def test_the_app_methods_hpchub_extends_are_there():
    for name in ("init_handlers", "init_services", "init_tornado_settings", "init_spawners",
                 "_template_paths_default"):
        assert callable(getattr(JupyterHub, name)), name
    for name in ("init_handlers", "init_services", "init_tornado_settings", "init_spawners"):
        assert getattr(HPCHub, name) is not getattr(JupyterHub, name), name
    assert "_service_map" in JupyterHub.class_traits() or hasattr(JupyterHub, "_service_map")


def test_the_spawner_and_user_internals_hpchub_reads_and_sets():
    spawner_source = inspect.getsource(Spawner)
    for name in ("_spawn_pending", "_proxy_pending", "_spawn_future", "_log_name", "_check_pending"):
        assert name in spawner_source, name
    # dict.get on the user's spawners does not create a spawner; [] does.
    spawners = _SpawnerDict(lambda name: f"made {name}")
    assert dict.get(spawners, "x") is None and "x" not in spawners
    assert spawners["x"] == "made x" and "x" in spawners
    assert callable(UserDict.count_active_users)


def test_hpchub_hub_refuses_to_start_when_a_handler_it_replaces_is_missing(monkeypatch):
    import pytest

    def handlers_without_the_spawn_page(app):
        app.handlers = [("/hub/api/users/([^/]+)/server", UserServerAPIHandler)]

    monkeypatch.setattr(JupyterHub, "init_handlers", handlers_without_the_spawn_page)
    with pytest.raises(RuntimeError, match="has no SpawnHandler"):
        HPCHub().init_handlers()
