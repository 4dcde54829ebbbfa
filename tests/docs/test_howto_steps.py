"""The how-to guides' steps, run as an administrator would type them (their paths moved into a
directory of the test's own): what a guide tells an admin to do must work."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUB_BIN = "/opt/hpchub/hub/bin"  # the hub's environment (make install), readable by jupyterhub
HUB_PYTHON = f"{HUB_BIN}/python"


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
            "print(ca.issue('alice', 'hub1', CertificatePolicy(validity=600)).certificate)")
    signed = subprocess.run(["setpriv", "--reuid=jupyterhub", "--regid=jupyterhub", "--init-groups", "--",
                             HUB_PYTHON, "-c", sign, str(etc / "ssh-ca" / "user_ca")],
                            capture_output=True, text=True, timeout=60, cwd="/")
    assert signed.returncode == 0 and "-cert-v01@openssh.com " in signed.stdout, signed.stderr[-2000:]
    assert (etc / "ssh-ca" / "user_ca.issued.jsonl").stat().st_size > 0

    # The guide's last step, revoking alice, as typed (from another directory): the KRL the hub
    # reads, and sshd from its copy, revokes the certificate just signed.
    certificate = etc.parent / "alice-cert.pub"
    certificate.write_text(signed.stdout)
    revoke = shell_blocks("ssh-ca.md")[-1].replace("/etc/hpchub", str(etc))
    assert "hpchub ca revoke" in revoke
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", revoke.replace("hpchub ", f"{HUB_BIN}/hpchub ", 1)],
                          capture_output=True, text=True, timeout=60, cwd=etc.parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    query = subprocess.run(["ssh-keygen", "-Q", "-f", str(etc / "revoked.krl"), str(certificate)],
                           capture_output=True, text=True, timeout=60)
    assert "REVOKED" in query.stdout, query.stdout + query.stderr
    shutil.rmtree(etc.parent)


def test_the_operations_guides_drain_step_drains_the_node():
    work = Path("/var/lib/hpchub-tests/howto-operations")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    step = shell_blocks("operations.md")[0]
    # As typed, but for the hub's URL and token (the listing of servers is tested on the site).
    step = re.sub(r"\\\n\s*--hub-url \S+ --token-file \S+", "", step).replace("/srv/jupyterhub", str(work))
    assert "--hub-url" not in step and "hpchub drain login2" in step, step
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", step.replace("hpchub ", f"{HUB_BIN}/hpchub ", 1)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    from hpchub.drain import read_drained

    drained = read_drained(work / "drained-login-nodes.json")
    assert list(drained) == ["login2"] and drained["login2"]["message"] == "kernel update on Tuesday", drained
    shutil.rmtree(work)


def test_every_configuration_block_in_the_docs_names_real_settings_with_values_they_accept():
    pages = sorted(str(p) for p in (ROOT / "docs").rglob("*.md")) + [str(ROOT / "README.md")]
    checked = subprocess.run([HUB_PYTHON, str(Path(__file__).with_name("config_blocks.py")), *pages],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert checked.returncode == 0, checked.stderr[-3000:]
    result = json.loads(checked.stdout)
    assert result["problems"] == [], "\n".join(result["problems"])
    assert result["settings"] >= 30, result  # the how-tos' blocks were found and read
