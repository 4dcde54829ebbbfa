"""The magics' pandas mode (magics/tables.py): a Slurm command's printed table as rows with the
command's own columns. The texts are what Slurm 22.05 printed on the demo site."""

from __future__ import annotations

from hpchub.magics.tables import parse


def rows_of(text: str, delimited: bool = False) -> list[dict]:
    return parse(text, delimited).rows

SQUEUE = """\
             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)
                 8     batch     wrap    alice PD       0:00      1 (AssocGrpCPUMinutesLimit)
                 9     debug two-word    alice PD       0:00      2 (ReqNodeNotAvail, UnavailableNodes:c1)
                10     batch     wrap    alice  R       1:02      1 c3
"""
SQUEUE_FORMAT = """\
             JOBID ST PARTITION
                 8 PD     batch
"""
SINFO = """\
PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST
batch*       up   12:00:00      4   idle c[1-4]
debug        up      30:00      2   idle c[1-2]
"""
SACCT = """\
JobID           JobName  Partition    Account  AllocCPUS      State ExitCode 
------------ ---------- ---------- ---------- ---------- ---------- -------- 
6                  wrap      batch   teaching          1 CANCELLED+      0:0 
7             two words      batch    physics          1     FAILED     0:53 
7.batch           batch               physics          1     FAILED     0:53 
"""
SSHARE = """\
Account                    User  RawShares  NormShares    RawUsage  EffectvUsage  FairShare 
-------------------- ---------- ---------- ----------- ----------- ------------- ---------- 
root                                          0.000000          10      1.000000            
 physics                                 1    0.250000          10      1.000000            
  physics                 alice          1    0.333333          10      1.000000   0.166667 
"""
SREPORT = """\
--------------------------------------------------------------------------------
Cluster/Account/User Utilization 2026-11-29T00:00:00 - 2026-11-29T23:59:59 (86400 secs)
Usage reported in CPU Minutes
--------------------------------------------------------------------------------
  Cluster         Account     Login     Proper Name     Used   Energy 
--------- --------------- --------- --------------- -------- -------- 
     demo            root                                 12        0 
     demo         physics     alice                       12        0 
"""


def test_squeue_with_its_own_columns_and_a_reason_with_spaces():
    rows = rows_of(SQUEUE)
    assert list(rows[0]) == ["JOBID", "PARTITION", "NAME", "USER", "ST", "TIME", "NODES", "NODELIST(REASON)"]
    assert [r["ST"] for r in rows] == ["PD", "PD", "R"] and [r["JOBID"] for r in rows] == [8, 9, 10]
    assert rows[1]["NODELIST(REASON)"] == "(ReqNodeNotAvail, UnavailableNodes:c1)"
    assert rows_of(SQUEUE_FORMAT) == [{"JOBID": 8, "ST": "PD", "PARTITION": "batch"}]


def test_sinfo_as_printed():
    assert rows_of(SINFO)[0] == {"PARTITION": "batch*", "AVAIL": "up", "TIMELIMIT": "12:00:00", "NODES": 4,
                                 "STATE": "idle", "NODELIST": "c[1-4]"}


def test_underlined_tables_keep_spaced_and_blank_fields_in_their_columns():
    sacct = rows_of(SACCT)
    assert sacct[1] == {"JobID": "7", "JobName": "two words", "Partition": "batch", "Account": "physics",
                        "AllocCPUS": 1, "State": "FAILED", "ExitCode": "0:53"}
    assert sacct[2]["Partition"] == "" and sacct[2]["JobID"] == "7.batch"  # (so JobID stays text)
    sshare = rows_of(SSHARE)
    assert [(r["Account"], r["User"], r["FairShare"]) for r in sshare] == [
        ("root", "", ""), ("physics", "", ""), ("physics", "alice", "0.166667")]
    report = rows_of(SREPORT)
    assert report == [
        {"Cluster": "demo", "Account": "root", "Login": "", "Proper Name": "", "Used": 12, "Energy": 0},
        {"Cluster": "demo", "Account": "physics", "Login": "alice", "Proper Name": "", "Used": 12, "Energy": 0}]


def test_parsable_output_and_nothing():
    assert rows_of("JobID|State|\n8|COMPLETED|\n", delimited=True) == [{"JobID": 8, "State": "COMPLETED"}]
    assert rows_of("JobID|State\n8|COMPLETED\n9|FAILED\n", delimited=True)[1] == {"JobID": 9, "State": "FAILED"}
    assert rows_of("") == [] and parse("             JOBID ST\n") == (["JOBID", "ST"], [])
