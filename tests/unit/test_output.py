"""Reading a server's output (remote/launcher_prelude.read_end, node_launcher.keep_log,
spawners/output.wanted_bytes): the end of a log, from a whole line, bounded; a login server's
log kept in the home directory after its runtime directory went."""

from __future__ import annotations

import os
import stat

from hpchub.remote import node_launcher
from hpchub.remote.launcher_prelude import MAX_READ, read_end
from hpchub.spawners.output import DEFAULT_BYTES, MAX_BYTES, wanted_bytes


def test_the_end_of_a_log_from_a_whole_line(tmp_path):
    log = tmp_path / "job.out"
    log.write_bytes(b"".join(b"line %04d\n" % n for n in range(1000)))  # 10 bytes a line
    whole = read_end(str(log), 1 << 20)
    assert whole["from"] == 0 and whole["size"] == 10_000 and whole["text"].startswith("line 0000\n")
    end = read_end(str(log), 95)  # starts within a line: that line's rest is left out
    assert end["text"].startswith("line 0991\n") and end["text"].endswith("line 0999\n")
    assert end["from"] == 9910 and end["size"] == 10_000
    assert read_end(str(tmp_path / "none"), 100) == {"missing": True}


def test_undecodable_bytes_and_a_log_without_newlines_are_shown_not_refused(tmp_path):
    log = tmp_path / "server.log"
    log.write_bytes(b"\xff\xfe" + b"x" * 5000)
    end = read_end(str(log), 100)
    assert len(end["text"]) == 100 and end["from"] == 4902
    assert "\ufffd" in read_end(str(log), 10_000)["text"]


def test_the_page_asks_for_a_bounded_amount():
    assert MAX_BYTES == MAX_READ
    assert wanted_bytes(None) == DEFAULT_BYTES
    for hostile in ("-1", "0", "1e9x", "", "²"):
        assert wanted_bytes(hostile) == DEFAULT_BYTES
    assert wanted_bytes("4096") == 4096 and wanted_bytes(str(10**12)) == MAX_BYTES


def test_a_stopped_login_server_log_is_kept_0600_and_old_ones_go(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    runtime = tmp_path / "runtime" / "alice-x-0a1b"
    runtime.mkdir(parents=True)
    (runtime / "server.log").write_text("[I] Jupyter Server is running\n")
    logs = tmp_path / ".hpchub" / "logs"
    logs.mkdir(parents=True)
    old = logs / "alice-old-0000.log"
    old.write_text("last month")
    os.utime(old, (0, 0))
    node_launcher.keep_log(str(runtime), "alice-x-0a1b")
    kept = logs / "alice-x-0a1b.log"
    assert kept.read_text() == "[I] Jupyter Server is running\n"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert not old.exists()
    # A runtime directory without a log (it never started) keeps nothing and raises nothing.
    node_launcher.keep_log(str(tmp_path / "gone"), "alice-y-0a1b")
    assert not (logs / "alice-y-0a1b.log").exists()


def test_a_gone_job_directory_keeps_only_its_output_and_an_empty_one_goes(tmp_path, monkeypatch):
    from hpchub.remote import batch_launcher
    monkeypatch.setenv("HOME", str(tmp_path))
    jobs = tmp_path / ".hpchub" / "jobs"
    ran = jobs / "alice-x-0a1b"
    ran.mkdir(parents=True)
    (ran / "job.out").write_text("Traceback ...\n")
    (ran / "x509up").write_text("secret")
    (ran / "ready.json").write_text("{}")
    assert batch_launcher.remove({"server_id": "alice-x-0a1b"})["status"] == "output-kept"
    assert sorted(p.name for p in ran.iterdir()) == ["ended.json", "job.out"]  # (prune counts from ended.json)
    never = jobs / "alice-y-0a1b"
    never.mkdir()
    (never / "job.out").write_text("")
    assert batch_launcher.remove({"server_id": "alice-y-0a1b"})["status"] == "removed" and not never.exists()
    # prune: a week after the job ended, its output goes too.
    os.utime(ran / "ended.json", (0, 0))
    batch_launcher.prune(str(jobs))
    assert not ran.exists()
