from __future__ import annotations

import itertools

import pytest

from hpchub.site.layout import MAX_SLOTS, SiteLayout, SiteNameError, check_name


@pytest.mark.parametrize("name", ["demo", "t", "tloop2", "abcdefgh"])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Demo", "1abc", "abcdefghi", "a-b", "a b", "../x", "a;rm"])
def test_invalid_names_are_refused_with_the_rule(name):
    with pytest.raises(SiteNameError, match="1-8 lower-case letters or digits"):
        check_name(name)


def _ports(layout: SiteLayout) -> set[int]:
    ports = {layout.mysql_port, layout.slurmctld_port, layout.slurmdbd_port, layout.hub_port,
             layout.hub_api_port, layout.proxy_api_port}
    ports |= {layout.slurmd_port(n.name) for n in layout.compute_nodes}
    ports |= {layout.ssh_port(n.name) for n in layout.login_nodes}
    ports |= set(range(layout.srun_port_range[0], layout.srun_port_range[1] + 1))
    return ports


def test_ports_within_an_instance_are_distinct():
    layout = SiteLayout("tloop", 3, isolated=False)
    singles = [layout.mysql_port, layout.slurmctld_port, layout.slurmdbd_port, layout.hub_port,
               layout.hub_api_port, layout.proxy_api_port,
               *(layout.slurmd_port(n.name) for n in layout.compute_nodes),
               *(layout.ssh_port(n.name) for n in layout.login_nodes)]
    assert len(singles) == len(set(singles))
    assert not set(singles) & set(range(layout.srun_port_range[0], layout.srun_port_range[1] + 1))


def test_instances_in_different_slots_share_no_port_or_subnet():
    layouts = [SiteLayout(f"s{i}", i, isolated=bool(i % 2)) for i in range(MAX_SLOTS)]
    for a, b in itertools.combinations(layouts, 2):
        assert not (_ports(a) - {22}) & (_ports(b) - {22})
        assert {a.public_subnet, a.internal_subnet}.isdisjoint({b.public_subnet, b.internal_subnet})
        assert a.bridge_public != b.bridge_public


def test_demo_hub_listens_on_8000():
    assert SiteLayout("demo", 5, isolated=False).hub_url == "http://127.0.0.1:8000"


def test_isolated_addresses():
    layout = SiteLayout("iso", 1, isolated=True)
    assert layout.public_subnet == "10.199.2.0/24" and layout.internal_subnet == "10.199.3.0/24"
    login1 = layout.node("login1")
    assert login1.public_address == "10.199.2.11" and login1.address == "10.199.3.11"
    assert layout.head.address == "10.199.3.2" and layout.node("c4").address == "10.199.3.24"
    assert layout.hub_address == "10.199.2.2"
    assert all(layout.ssh_port(n.name) == 22 for n in layout.login_nodes)


def test_loopback_nodes_share_127_0_0_1_with_own_ports():
    layout = SiteLayout("tloop", 2, isolated=False)
    assert {n.address for n in layout.nodes} == {"127.0.0.1"}
    assert layout.ssh_port("login1") != layout.ssh_port("login2")


def test_interface_names_fit_the_kernel_limit():
    layout = SiteLayout("abcdefgh", MAX_SLOTS - 1, isolated=True)
    names = [layout.bridge_public, layout.bridge_internal]
    names += [layout.veth(n.name, internal) for n in [*layout.nodes] for internal in (True, False)]
    names += [layout.veth("hub", False)]
    assert max(len(n) for n in names) <= 15
