"""Three test hosts (network namespaces on a bridge), one Kizuna node on each: peers reach
one another over TLS at the hosts' own addresses; the tests reach each node's UI, conductor
and DHT through its Unix sockets, as a program on that machine would."""

import pytest

from tests.hosts.hostnet import HostNet, HostsUnavailable
from tests.integration.network import make_network

NAMES = ("alice", "bobby", "charlie")


@pytest.fixture(scope="module")
def hosts():
    try:
        net = HostNet(NAMES).up()
    except HostsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield net
    finally:
        net.down()


@pytest.fixture(scope="module")
def network(hosts, tmp_path_factory):
    placement = {name: {"host": hosts.address[name], "ui": "unix", "wrap": hosts.wrap(name)} for name in NAMES}
    with make_network(tmp_path_factory.mktemp("hosts"), nodes=NAMES, placement=placement) as network:
        yield network
