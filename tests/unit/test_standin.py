from __future__ import annotations

import pytest
from jupyterhub.spawner import SpawnException

from hpchub.site.standin import StandInSpawner


async def test_stand_in_spawner_refuses_with_a_clear_message_and_runs_nothing():
    spawner = StandInSpawner()
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert "does not start Jupyter servers yet" in info.value.message
    assert info.value.reason == "standin" and info.value.log_message != info.value.message
    assert await spawner.poll() == 0
