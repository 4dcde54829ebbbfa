"""The clusters of a hub as configured: checked once, with clear errors (pure)."""

from __future__ import annotations

import pytest

from hpchub.spawners.cluster_config import DEFAULT_CLUSTER, ClusterConfig, ClusterConfigError, cluster_configs

DEFAULT = ClusterConfig(DEFAULT_CLUSTER, "Cluster", "slurm", ({"name": "login1"},), 30.0)
GE = {"scheduler": "sge", "login_nodes": [{"name": "ge-login", "address": "10.0.0.11", "port": 22}]}


def test_the_default_cluster_and_the_configured_ones():
    configs = cluster_configs({"ge": GE}, DEFAULT)
    assert configs[DEFAULT_CLUSTER] is DEFAULT
    ge = configs["ge"]
    assert (ge.title, ge.scheduler, ge.status_interval, ge.scheduler_options) == ("ge", "sge", 30.0, {})
    assert ge.login_nodes == ({"name": "ge-login", "address": "10.0.0.11", "port": 22},)


@pytest.mark.parametrize("clusters,words", [
    ({"ge": {**GE, "scheduler": "pbs"}}, "scheduler 'pbs' is not one of"),
    ({"ge": {**GE, "login_nodes": []}}, "non-empty list"),
    ({"ge": {**GE, "login_nodes": [{"address": "x"}]}}, "needs a `name`"),
    ({"ge": {**GE, "login_nodes": [{"name": "a", "port": "22"}]}}, "`port` must be a TCP port"),
    ({"ge": {**GE, "status_interval": 0}}, "at least 1"),
    ({"ge": {**GE, "status_interval": True}}, "number of seconds"),
    ({"ge": {**GE, "known_host": "/x"}}, "unknown keys ['known_host']"),
    ({"ge": {**GE, "known_hosts": ["/x"]}}, "name of a known_hosts file"),
    ({"ge": {**GE, "scheduler_options": {"pe": "smp"}}}, "takes no options ['pe']"),
    ({"ge": {**GE, "service_account": "hub svc"}}, "`service_account` must be an account name"),
    ({"ge": {**GE, "service_account": ["svc"]}}, "`service_account` must be an account name"),
    ({"Big Cluster": GE}, "lower-case letters"),
    ({DEFAULT_CLUSTER: GE}, "another name"),
    ({"ge": "sge"}, "must be a dict"),
    (["ge"], "must be a dict of cluster name"),
])
def test_every_mistake_is_named(clusters, words):
    with pytest.raises(ClusterConfigError) as refused:
        cluster_configs(clusters, DEFAULT)
    assert words in str(refused.value)


def test_the_adapters_options_are_what_its_constructor_takes():
    configs = cluster_configs({"ge": {**GE, "scheduler_options": {"parallel_environment": "mpi",
                                                                  "gpu_resource": "gpu"}}}, DEFAULT)
    assert configs["ge"].options_key() == (("gpu_resource", "gpu"), ("parallel_environment", "mpi"))
    with pytest.raises(ClusterConfigError, match="it takes: none"):
        cluster_configs({"s2": {**GE, "scheduler": "slurm", "scheduler_options": {"x": 1}}}, DEFAULT)


def test_a_clusters_known_hosts_goes_with_each_of_its_login_nodes():
    configs = cluster_configs({"ge": {**GE, "known_hosts": "/etc/hpchub/ge_known_hosts",
                                      "login_nodes": [{"name": "a"}, {"name": "b", "known_hosts": "/own"}]}}, DEFAULT)
    assert [n.get("known_hosts") for n in configs["ge"].login_nodes] == ["/etc/hpchub/ge_known_hosts", "/own"]
    assert "known_hosts" not in cluster_configs({"ge": GE}, DEFAULT)["ge"].login_nodes[0]  # the hub's own


def test_a_host_travels_to_the_tunnel_service_in_a_form_an_earlier_service_reads():
    from hpchub.remote import Host

    plain, keyed = Host("login1", "10.0.0.1"), Host("ge-login", "10.0.0.11", 22, "/etc/hpchub/ge_known_hosts")
    assert plain.to_dict() == {"name": "login1", "address": "10.0.0.1"}  # (0.2's tunnel service knew no more)
    assert Host.from_dict(keyed.to_dict()) == keyed
    assert Host.from_dict({**keyed.to_dict(), "added_later": 1}) == keyed


def test_a_cluster_may_name_a_service_account_of_its_own():
    configs = cluster_configs({"ge": {**GE, "service_account": "ge-hub"}, "other": GE}, DEFAULT)
    assert configs["ge"].service_account == "ge-hub"
    assert configs["other"].service_account == "" == configs[DEFAULT_CLUSTER].service_account  # the authenticator's
