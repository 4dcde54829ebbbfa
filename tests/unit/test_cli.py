from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hpchub.cli import build_parser, main

HPCHUB = str(Path(sys.executable).with_name("hpchub"))


def test_site_defaults():
    args = build_parser().parse_args(["site", "up"])
    assert (args.name, args.isolated, args.hub) == ("demo", None, True)
    args = build_parser().parse_args(["site", "up", "--name", "x", "--isolated", "--no-hub"])
    assert (args.name, args.isolated, args.hub) == ("x", True, False)


def test_modes_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["site", "up", "--isolated", "--loopback"])
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["up", "down", "status"])
def test_bad_site_name_is_a_clear_error_not_a_traceback(action):
    proc = subprocess.run([HPCHUB, "site", action, "--name", "../etc"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "invalid site name '../etc'" in proc.stderr and "Traceback" not in proc.stderr


def test_status_of_an_unknown_site_says_so(capsys):
    assert main(["site", "status", "--name", "nosuch9"]) == 3
    assert "no site named 'nosuch9'" in capsys.readouterr().err


def test_check_with_a_broken_config_file_says_so_without_a_traceback(tmp_path, capsys):
    from hpchub.cli import main

    config = tmp_path / "jupyterhub_config.py"
    config.write_text("c = get_config()\nc.HPCSpawner.login_nodes = [undefined_name]\n")
    assert main(["check", "-f", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cannot load" in err and "undefined_name" in err and "Traceback" not in err
    assert main(["check", "-f", str(tmp_path / "missing.py")]) == 2
