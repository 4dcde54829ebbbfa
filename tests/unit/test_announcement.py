"""The admin's announcement file (hpchub.announcement): written atomically, read again when it
changes, shown as plain text."""

from __future__ import annotations

import os

from hpchub.announcement import MAX_LENGTH, AnnouncementFile, read_announcement, write_announcement


def test_written_read_again_when_changed_and_cleared(tmp_path):
    path = tmp_path / "announcement.txt"
    notice = AnnouncementFile(path)
    assert notice(None) == "" and read_announcement(path) == ""
    write_announcement(path, "  Maintenance on Tuesday 08:00-12:00  \n")
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert notice(None) == "Maintenance on Tuesday 08:00-12:00"
    write_announcement(path, "Outage: the GPU nodes are down")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)  # (a change within the same tick)
    assert notice(None) == "Outage: the GPU nodes are down"
    write_announcement(path, "")
    assert not path.exists() and notice(None) == ""


def test_shown_as_plain_text_and_cut_when_long(tmp_path):
    path = tmp_path / "announcement.txt"
    write_announcement(path, '<script>alert("x")</script> & more')
    assert str(AnnouncementFile(path)(None)) == "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more"
    write_announcement(path, "x" * (MAX_LENGTH + 50))
    assert read_announcement(path) == "x" * MAX_LENGTH + " …"
