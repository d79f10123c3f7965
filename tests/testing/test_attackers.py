"""The attack clients' own promises: loopback only, bounded, and attacks shaped as documented."""

from __future__ import annotations

import ipaddress
import socket
import struct

import msgpack
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from seattle.nodemgr.frames import DEFAULT_MAX_FRAME, HEADER
from seattle.overlay import messages
from seattle.testing.attackers import (
    ATTACKER_NET,
    PER_PREFIX,
    AttackReport,
    Bound,
    Target,
    attack_command,
    bad_signature_datagrams,
    bomb_frame,
    grinding_estimate,
    id_grinding,
    parse_report,
    port_zero_packet,
    source_address,
    udp_flood,
)


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.1", "::2", "8.8.8.8"])
def test_attacks_go_to_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Target(host, 1224)


@given(st.integers(min_value=0, max_value=256 * PER_PREFIX - 1))
def test_attacker_addresses_are_in_the_attacker_net_and_never_the_owners(index: int) -> None:
    address = ipaddress.ip_address(source_address(index))
    assert address in ATTACKER_NET and address != ipaddress.ip_address("127.0.0.1")
    assert str(address).split(".")[2] == str(index // PER_PREFIX)  # PER_PREFIX addresses per /24


def test_attacker_addresses_run_out_rather_than_wrap() -> None:
    with pytest.raises(ValueError):
        source_address(256 * PER_PREFIX)


def test_a_bomb_is_one_frame_the_node_accepts_of_one_byte_objects() -> None:
    frame = bomb_frame(4096)
    (length,) = HEADER.unpack_from(frame)
    assert length == len(frame) - HEADER.size and len(bomb_frame()) - HEADER.size <= DEFAULT_MAX_FRAME
    assert msgpack.unpackb(frame[HEADER.size:]) == [[]] * (4096 - 5)


def test_bad_signature_datagrams_pass_every_check_but_the_signature() -> None:
    for data in bad_signature_datagrams(4):
        with pytest.raises(messages.MessageRejected) as refused:
            messages.decode(data)
        assert refused.value.code == messages.BAD_SIGNATURE


def test_a_port_zero_packet_is_ipv4_udp_from_port_zero() -> None:
    packet = port_zero_packet("127.66.0.1", Target("127.0.0.1", 4321), b"xyz")
    assert packet[9] == socket.IPPROTO_UDP and socket.inet_ntoa(packet[12:16]) == "127.66.0.1"
    assert struct.unpack("!HHHH", packet[20:28]) == (0, 4321, 11, 0) and packet[28:] == b"xyz"


def test_grinding_stops_at_its_count_and_estimates_k_times_n() -> None:
    report = id_grinding(Bound(count=50, seconds=10.0))
    assert report.sent == 50 and report.outcomes["ids"] == 50
    assert grinding_estimate(1000.0, 9999, k=20) == pytest.approx(200.0)


def test_grinding_counts_only_ids_the_network_would_accept() -> None:
    report = id_grinding(Bound(count=20, seconds=10.0), derive=lambda identity: None)
    assert report.sent == 20 and report.outcomes["ids"] == 0


def test_a_report_survives_the_trip_through_a_process() -> None:
    report = AttackReport("x", 3, note="n")
    report.outcomes["refused"] += 2
    line = ('{"name": "x", "sent": 3, "outcomes": {"refused": 2}, "elapsed": 0.5, "note": "n"}')
    again = parse_report(b"noise\n" + line.encode())
    assert (again.name, again.sent, again.outcomes, again.note) == ("x", 3, report.outcomes, "n")
    assert attack_command("garbage", Target("127.0.0.1", 9), Bound(1, 2.0))[-4:] == ["127.0.0.1", "9", "1", "2.0"]


@pytest.mark.slow
async def test_a_udp_flood_stops_at_its_count_and_reaches_the_port() -> None:
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as receiver:
        await receiver.bind(("127.0.0.1", 0))
        target = Target("127.0.0.1", receiver.getsockname()[1])
        report = await udp_flood(target, Bound(count=20, seconds=5.0), "garbage", sources=2)
        assert report.sent == 20
        sources = set()
        with trio.move_on_after(2.0):
            while len(sources) < 2:
                _, source = await receiver.recvfrom(2048)
                sources.add(source[0])
        assert sources == {source_address(0), source_address(1)}
