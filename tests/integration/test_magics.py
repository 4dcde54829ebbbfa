"""The Slurm magics against the real Slurm: in IPython on a login node (the site's Jupyter
environment, where they are preloaded), and in notebooks executed with nbclient inside a
server spawned by the hub."""

from __future__ import annotations

import json

import nbformat

from ..site_handle import HubClient, check, spawn, stop
from .test_credentials import login_ok
from .test_ssh_spawner import run_in_kernel

PYTHON = "/opt/hpchub/jupyter/bin/python"

# Runs in IPython on a login node; prints one JSON object with what the magics returned.
PROBE = r"""
import json, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "hpchub.magics")
out = {}
job = ip.run_line_magic("sbatch", '--wrap "hostname; echo hi there" -J magic-line -o magic-%j.out')
out["repr"], out["id"] = repr(job), job.id
queue = ip.run_line_magic("squeue", "-u alice")
out["queued"] = [str(j) for j in queue["JOBID"]]
out["final"] = job.wait(timeout=60, poll=0.5)
out["output"] = job.output()
cell = ip.run_cell_magic("sbatch", "-J magic-cell", "#!/bin/bash\nsleep 300\n")
out["cell_id"], out["cell_state"] = cell.id, cell.state
cell.cancel()
for _ in range(40):
    if cell.state.startswith("CANCELLED"):
        break
    time.sleep(0.25)
out["cancelled"] = cell.state
for _ in range(40):  # accounting (slurmdbd) learns of the job's end a moment after the queue
    acct = ip.run_line_magic("sacct", "-j %s -X --format=JobID,State,ExitCode" % job.id)
    if list(acct["State"]) == ["COMPLETED"]:
        break
    time.sleep(0.25)
out["sacct"] = acct.to_dict("records")
out["sinfo"] = ip.run_line_magic("sinfo", "").to_dict("records")
out["scontrol"] = ip.run_line_magic("scontrol", "show job %s" % job.id)["JobState"]
errors = []
for line in ("sbatch -A nope --wrap true", "scancel 999999", "sbatch --wrap", "scontrol show job 999999"):
    result = ip.run_cell("%" + line)
    errors.append(repr(result.error_in_exec))
out["errors"] = errors
print(json.dumps(out, default=str))  # (numpy's ints of the tables' whole-number columns)
"""


def test_magics_in_ipython_on_a_login_node(site):
    result = check(site.ssh("alice", [PYTHON, "-c", PROBE], node="login2", timeout=180))
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["repr"] == f"Submitted batch job {out['id']}"
    assert out["id"] in out["queued"]
    assert out["final"] == "COMPLETED"
    node, greeting = out["output"].strip().split("\n")
    assert node in ("c1", "c2", "c3", "c4") and greeting == "hi there"
    # What Slurm itself says about the same jobs.
    truth = check(site.ssh("alice", ["sacct", "-n", "-X", "-P", "-j", f"{out['id']},{out['cell_id']}",
                                     "-o", "JobID,State,ExitCode,NodeList"])).stdout.split()
    assert f"{out['id']}|COMPLETED|0:0|{node}" in truth
    assert any(line.startswith(f"{out['cell_id']}|CANCELLED") for line in truth)
    assert out["cell_state"] in ("PENDING", "RUNNING") and out["cancelled"].startswith("CANCELLED")
    assert out["sacct"] == [{"JobID": int(out["id"]), "State": "COMPLETED", "ExitCode": "0:0"}]
    partitions = {row["PARTITION"]: row for row in out["sinfo"]}
    assert partitions["batch*"]["TIMELIMIT"] == "12:00:00" and partitions["debug"]["NODELIST"] == "c[1-2]"
    assert out["scontrol"] == "COMPLETED"
    # Slurm's own messages, as UsageErrors (shown without a traceback).
    assert "Invalid account or account/partition combination specified" in out["errors"][0]
    assert "Invalid job id specified" in out["errors"][1]
    assert all(e.startswith("SlurmError(") for e in out["errors"]), out["errors"]


def _notebook(cells: list[str]) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    return nbformat.writes(nb)


# NERSC's notebooks, line for line in slurm-magic's syntax.
NERSC_STYLE = [
    "%load_ext slurm_magic",
    '%sbatch --wrap "sleep 1; echo nersc-style" -J nersc-style',
    "%squeue -u alice",
    "%%sbatch -J nersc-cell\n#!/bin/bash\necho from-the-cell",
    # Accounting records a job a moment after submission.
    "import time\nfor _ in range(120):\n"
    "    if 'nersc-style' in str(get_ipython().run_line_magic('sacct', '-u alice --format=JobName%30')):\n"
    "        break\n"
    "    time.sleep(0.25)",
    "%sacct -u alice --format=JobID,JobName%30,State",  # (sacct's own width syntax: names are cut at 10)
    "%sinfo",
    'long = %sbatch -N 1 --wrap "sleep 300" -J nersc-long\nq = %squeue -u alice -o "%.18i %.2t"\n'
    "print(list(q.columns), long.id in [str(j) for j in q.JOBID], set(q.ST) <= {'CF', 'PD', 'R'})",
    "df = %squeue -u alice\nprint(list(df.columns), bool(df.ST.isin(['CF', 'PD', 'R']).any()))",
    "%scancel {long.id}",
    "assoc = %sacctmgr show assoc user=alice format=account,user\nprint(sorted(set(assoc.Account)))",
    "prio = %sprio\nprint(list(prio.columns)[:3])",
    "share = %sshare -u alice\nprint(list(share.columns)[:2])",
    "%slurm display raw",
    "%sinfo -p debug",
    "%slurm display pandas",
    "%sbatch -p nosuchpart --wrap true",
]
EVERY_MAGIC = [
    "job = %sbatch --wrap 'echo every-magic' -J every-magic\njob",
    "job.wait(timeout=60, poll=0.5)",
    "print(job.output().strip())",
    "%squeue -u alice",
    "%sacct -j {job.id} -X --format=JobID,State",
    "%sinfo -p debug",
    "%scontrol show job {job.id}",
    "long = %sbatch --wrap 'sleep 300' -J every-cancel\n%scancel {long.id}",
    "%%sbatch -J every-cell\n#!/bin/bash\necho cell",
]

RUN_NOTEBOOK = r"""
import json, nbformat, nbclient
nb = nbformat.reads(%(notebook)r, as_version=4)
nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
outputs = []
for cell in nb.cells:
    text = []
    for o in cell.outputs:
        if o.output_type == "stream":
            text.append(o.text)
        elif "data" in o:
            text.append(o.data.get("text/html") or o.data.get("text/plain", ""))
        elif o.output_type == "error":
            text.append("ERROR " + o.ename + ": " + o.evalue)
    outputs.append("".join(text))
print(json.dumps(outputs))
"""


def test_notebooks_run_with_nbclient_inside_a_spawned_server(loopback_site):
    hub = HubClient(loopback_site)
    try:
        login_ok(hub, "alice")
        spawn(hub, "alice")
        results = {}
        for name, cells in (("nersc", NERSC_STYLE), ("every", EVERY_MAGIC)):
            code = RUN_NOTEBOOK % {"notebook": _notebook(cells)}
            results[name] = json.loads(run_in_kernel(hub, "alice", code).strip().splitlines()[-1])
        nersc, every = results["nersc"], results["every"]
        assert nersc[1].startswith("Submitted batch job ") and nersc[3].startswith("Submitted batch job ")
        # (squeue prints 8 characters of a name, and so does its table)
        assert "<table" in nersc[2] and "<td>nersc-st</td>" in nersc[2] and "<th>ST</th>" in nersc[2]
        assert "nersc-style" in nersc[5] and "<table" in nersc[6] and "debug" in nersc[6]
        # squeue's own columns, for its default format and for one the user gives.
        assert nersc[7].strip() == "['JOBID', 'ST'] True True", nersc[7]
        assert nersc[8].strip() == ("['JOBID', 'PARTITION', 'NAME', 'USER', 'ST', 'TIME', 'NODES', "
                                    "'NODELIST(REASON)'] True"), nersc[8]
        # The same commands in a shell.
        accounts = check(loopback_site.ssh("alice", ["sacctmgr", "-n", "-P", "show", "assoc", "user=alice",
                                                     "format=account"])).stdout.split()
        assert nersc[10].strip() == str(sorted(set(accounts))), (nersc[10], accounts)
        assert nersc[11].strip() == "['JOBID', 'PARTITION', 'PRIORITY']", nersc[11]
        assert nersc[12].strip() == "['Account', 'User']", nersc[12]
        # Raw mode: the text as sinfo printed it (no quotes, no table).
        assert nersc[13].strip() == "raw"
        # (its rows' states may differ from a later sinfo: the notebook's own jobs end meanwhile)
        shell_sinfo = check(loopback_site.ssh("alice", ["sinfo", "-p", "debug"])).stdout
        assert nersc[14].splitlines()[0] == shell_sinfo.splitlines()[0] and "<table" not in nersc[14], nersc[14]
        assert all(row.split()[:3] == ["debug", "up", "30:00"] for row in nersc[14].strip().splitlines()[1:]), nersc[14]
        # Slurm's refusal as Slurm's words in the cell: no traceback, no Python error output.
        assert "invalid partition" in nersc[16].lower() and "Traceback" not in nersc[16], nersc[16]
        assert not nersc[16].startswith("ERROR"), nersc[16]
        job_id = every[0].split()[-1]
        assert every[1].endswith("'COMPLETED'") and every[2].strip() == "every-magic"
        assert job_id in every[4] and "COMPLETED" in every[4]
        assert "debug" in every[5] and "batch" not in every[5]
        assert "'JobState': 'COMPLETED'" in every[6]
        assert every[8].startswith("Submitted batch job ")
        assert not any(o.startswith("ERROR") for o in nersc + every), (nersc, every)
        # job.wait()'s status line is text, not a quoted string.
        assert f"job {job_id}: COMPLETED" in every[1] and f"'job {job_id}" not in every[1], every[1]
    finally:
        if "" in hub.admin("GET", "/users/alice").json()["servers"]:
            stop(hub, "alice")
        hub.close()


COMPUTE_PROBE = r"""
import json, socket
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "hpchub.magics")
job = ip.run_line_magic("sbatch", "--wrap true -J from-compute")
print(json.dumps({"host": socket.gethostname(), "final": job.wait(timeout=60, poll=0.5),
                  "partitions": sorted(set(ip.run_line_magic("sinfo", "")["PARTITION"]))}))
"""


def test_magics_in_ipython_on_a_compute_node(loopback_site):
    out = check(loopback_site.ssh("bob", ["srun", "-w", "c3", PYTHON, "-c", COMPUTE_PROBE], timeout=180)).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"host": "c3", "final": "COMPLETED", "partitions": ["batch*", "debug", "shared"]}
