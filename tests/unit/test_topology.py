"""The simulated world's planning: delays and latency order."""

import pytest

from local.topology import REGIONS, Topology


def test_published_round_trips_and_scale():
    world = Topology()
    assert world.rtt_ms("eu-west-1", "us-west-2") == 118
    assert world.rtt_ms("ap-southeast-1", "eu-west-1") == 182
    assert world.rtt_ms("us-west-2", "ap-southeast-1") == 160
    assert world.rtt_ms("us-west-2", "us-west-2") == 2
    assert Topology(scale=0.1).one_way_s("eu-west-1", "us-west-2") == pytest.approx(0.0059)


@pytest.mark.parametrize(
    ("client", "order"),
    [
        ("eu-west-1", ["eu-west-1", "us-west-2", "ap-southeast-1"]),
        ("us-west-2", ["us-west-2", "eu-west-1", "ap-southeast-1"]),
        ("ap-southeast-1", ["ap-southeast-1", "us-west-2", "eu-west-1"]),
    ],
)
def test_clients_try_regions_nearest_first(client, order):
    assert Topology().by_latency(client) == order


def test_a_smaller_stack_steers_among_its_own_regions():
    dev = Topology(regions=("eu-west-1", "us-west-2"))
    assert dev.primary == "eu-west-1"
    assert dev.by_latency("ap-southeast-1") == ["us-west-2", "eu-west-1"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"regions": ()},
        {"regions": ("eu-west-1", "eu-west-1")},
        {"regions": ("mars-1",)},
        {"scale": 0},
        {"scale": 2},
    ],
)
def test_bad_worlds_are_refused(kwargs):
    with pytest.raises(ValueError):
        Topology(**kwargs)


def test_default_regions_are_the_three_of_the_design():
    assert REGIONS == ("eu-west-1", "us-west-2", "ap-southeast-1")
