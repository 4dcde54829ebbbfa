"""The how-to guides' steps, run as an administrator would type them (their paths moved into a
directory of the test's own): what a guide tells an admin to do must work."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUB_PYTHON = "/opt/hpchub/hub/bin/python"  # the hub's environment (make install), readable by jupyterhub


def shell_blocks(page: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (ROOT / "docs" / "howto" / page).read_text(), re.S)


def test_the_ssh_ca_guides_first_step_gives_a_ca_the_hub_can_sign_with():
    etc = Path("/var/lib/hpchub-tests/howto-ssh-ca/etc-hpchub")  # (traversable by the hub's user, as /etc is)
    shutil.rmtree(etc.parent, ignore_errors=True)
    etc.mkdir(parents=True, mode=0o755)
    for directory in (etc, etc.parent, etc.parent.parent):
        directory.chmod(0o755)
    step = shell_blocks("ssh-ca.md")[0].replace("/etc/hpchub", str(etc))
    subprocess.run(["bash", "-euo", "pipefail", "-c", step], check=True, timeout=60)
    # As the hub's user, with the defaults of step 4 (the ledger beside the key): a certificate.
    sign = ("import sys; from hpchub.credentials.ssh_ca import CertificatePolicy, SSHCertificateAuthority; "
            "ca = SSHCertificateAuthority(sys.argv[1], sys.argv[1] + '.issued.jsonl'); "
            "print(ca.issue('alice', 'hub1', CertificatePolicy(validity=60)).principal)")
    signed = subprocess.run(["setpriv", "--reuid=jupyterhub", "--regid=jupyterhub", "--init-groups", "--",
                             HUB_PYTHON, "-c", sign, str(etc / "ssh-ca" / "user_ca")],
                            capture_output=True, text=True, timeout=60, cwd="/")
    assert signed.returncode == 0 and signed.stdout.strip() == "alice", signed.stderr[-2000:]
    assert (etc / "ssh-ca" / "user_ca.issued.jsonl").stat().st_size > 0
    shutil.rmtree(etc.parent)
