"""The demo site's MyProxy set-up (pure parts): its configuration, the name mapping and the
CA it makes."""

from __future__ import annotations

import subprocess

from cryptography import x509

from hpchub.site.grid import config_text, make_ca, mapapp_text, signing_policy
from hpchub.site.layout import SiteLayout

SITE = SiteLayout("tgrid", 3, False)


def test_myproxy_is_an_online_ca_over_pam_that_stores_nothing():
    lines = config_text(SITE).splitlines()
    assert 'pam "sufficient"' in lines and 'pam_id "hpchub-myproxy"' in lines
    assert f"certificate_issuer_cert {SITE.grid_dir / 'ca.pem'}" in lines
    assert f"certificate_mapapp {SITE.grid_dir / 'mapapp'}" in lines
    assert not any(line.startswith(("accepted_credentials", "passphrase_policy_program")) for line in lines)


def test_the_mapping_gives_the_user_a_subject_of_this_site_and_runs_nothing_they_typed(tmp_path):
    script = tmp_path / "mapapp"
    script.write_text(mapapp_text(SITE))
    for user, expected in (("alice", "/O=hpchub/OU=tgrid/CN=alice"), ("$(touch x)", "/O=hpchub/OU=tgrid/CN=$(touch x)")):
        out = subprocess.run(["sh", str(script), user], capture_output=True, text=True, cwd=tmp_path, check=True)
        assert out.stdout == expected + "\n"
    assert not (tmp_path / "x").exists()


def test_the_ca_signs_the_host_certificate_for_the_name_the_hub_checks():
    _, ca_pem, _, host_pem = make_ca(SITE)
    ca, host = x509.load_pem_x509_certificate(ca_pem.encode()), x509.load_pem_x509_certificate(host_pem.encode())
    host.verify_directly_issued_by(ca)
    names = host.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "cond_subjects globus '\"/O=hpchub/OU=tgrid/*\"'" in signing_policy(SITE)
