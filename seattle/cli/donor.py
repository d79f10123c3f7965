"""The donor's node commands beyond init/run: start, stop, status, top, service install, uninstall.

Each command is one function that calls the donor library (`seattle.donor.daemonctl`, `.service`,
`.uninstall`, `.donation`) and prints; `seattle/cli/node.py` attaches them to the `node` group and calls
`init_from_profile` for `seattle node init --profile`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from seattle.errors import BadPortPool, NodeControlFailed, UntrustedPlanner
from seattle.keys import PublicKey

#: How long `node stop` waits for the node to exit.
STOP_TIMEOUT = 60.0

_DIR = click.option("--dir", "node_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
                    help="The node directory made by `seattle node init`.")


def init_from_profile(node_dir: Path, profile_path: Path, planner: str | None, percent: int, host: str, port: int,
                      ports: str | None, bootstrap: tuple[str, ...], local_ips: tuple[str, ...]) -> None:
    """`seattle node init --profile`: check the planner is the one the donor trusts (`--planner`, or a
    confirmation on a terminal), then measure, divide, create the node, and tell the donor what is given."""
    from seattle.donor.donation import init_node_from_profile
    from seattle.planner.profile import check_planner, read_profile

    profile = read_profile(profile_path)
    signer = profile.planner
    click.echo(f"the profile is signed by planner {signer.fingerprint()} ({signer.to_text()})")
    if planner is not None:
        check_planner(profile, planner)
    elif not (stdin_is_terminal()
              and click.confirm(f"Is {signer.fingerprint()} the fingerprint your planner gave you?", default=False)):
        raise UntrustedPlanner(signer.fingerprint(), signer.to_text())
    if bootstrap:
        profile = dataclasses.replace(profile, bootstrap=tuple(bootstrap))
    donation = init_node_from_profile(node_dir, profile, planner=signer, percent=percent, host=host, port=port,
                                      ports=parse_ports(ports) if ports else None, local_ips=local_ips)
    click.echo(donation.summary())
    click.echo(f"profile signed by {signer.fingerprint()}; overlay bootstrap: "
               f"{', '.join(profile.bootstrap) or 'none (this node starts an overlay)'}")
    click.echo(f"created node in {node_dir}; start it with: seattle node start --dir {node_dir}")


def stdin_is_terminal() -> bool:
    """Whether a person can answer a question: a script, a pipe or a service manager cannot confirm a planner."""
    return sys.stdin.isatty()


def parse_ports(text: str) -> list[int]:
    """`LOW-HIGH` or `P,P,...` (or both, comma-separated) → the ports; BadPortPool if it is neither."""
    ports: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise BadPortPool(f"{text!r:.60} is not LOW-HIGH or a comma-separated list of ports")
        first, last = int(low), int(high) if dash else int(low)
        if last < first or last - first >= 65535:
            raise BadPortPool(f"the range {part.strip()!r} is empty or too long")
        ports.extend(range(first, last + 1))
    return ports


@click.command()
@_DIR
@click.option("--allow-unconfined", is_flag=True,
              help="Start vessels even if the host offers neither seccomp nor Landlock.")
def start(node_dir: Path, allow_unconfined: bool) -> None:
    """Start the node manager in the background and wait until it answers."""
    from seattle.donor.daemonctl import start_daemon

    status = start_daemon(node_dir, allow_unconfined=allow_unconfined)
    click.echo(f"node started (pid {status['pid']}), listening on {', '.join(status['addresses'])}")


@click.command()
@_DIR
def stop(node_dir: Path) -> None:
    """Stop the node manager (its vessels are stopped and recorded first) and wait until it has exited."""
    from seattle.donor.daemonctl import control_request, wait_until_stopped

    pid = control_request(node_dir, "stop")["pid"]
    if not wait_until_stopped(node_dir, STOP_TIMEOUT):
        raise NodeControlFailed(node_dir, f"it did not stop within {STOP_TIMEOUT:g} s (pid {pid})")
    click.echo(f"node stopped (pid {pid})")


@click.command()
@_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
def status(node_dir: Path, as_json: bool) -> None:
    """What the node's vessels use of this machine right now, against what was donated."""
    from seattle.donor.daemonctl import control_request

    answer = control_request(node_dir, "status")["status"]
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    from rich.console import Console

    Console().print(status_view(answer))


@click.command()
@_DIR
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.2, 60),
              help="Seconds between refreshes.")
@click.option("--count", type=click.IntRange(1), help="Stop after this many refreshes (default: until Ctrl-C).")
def top(node_dir: Path, interval: float, count: int | None) -> None:
    """A live view of the vessels: status and use against their shares, refreshed until Ctrl-C."""
    from rich.live import Live

    from seattle.donor.daemonctl import control_request

    refreshes = 0
    with Live(status_view(control_request(node_dir, "status")["status"]), auto_refresh=False) as live:
        try:
            while count is None or refreshes < count:
                live.update(status_view(control_request(node_dir, "status")["status"]), refresh=True)
                refreshes += 1
                if count is None or refreshes < count:
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass


def status_view(status: dict[str, Any]) -> Any:
    """A rich renderable of a control `status` answer: one row per vessel, then the node's total."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    donated = status.get("donated")
    head = Text(f"node {status['fingerprint']}  pid {status['pid']}  listening on "
                f"{', '.join(status['addresses'])}  up {_duration(time.time() - status['started'])}")
    if donated:
        head.append(f"\ndonated {status['percent']}% of this machine: {donated['cpu']:.3g} cores, "
                    f"{_bytes(donated['memory'])}B memory, {_bytes(donated['diskused'])}B disk, "
                    f"{_bytes(donated['netsend'])}B/s out, {_bytes(donated['netrecv'])}B/s in")
    table = Table(box=None, pad_edge=False, collapse_padding=True)
    for column in ("vessel", "status", "owner", "CPU", "memory", "disk", "net out", "net in"):
        table.add_column(column, no_wrap=True)
    table.add_column("ports", overflow="fold")
    for vessel in status["vessels"]:
        used, cap = vessel["usage"], vessel["allotted"]
        table.add_row(vessel["name"], vessel["status"], PublicKey.from_text(vessel["owner"]).fingerprint()[:6],
                      f"{used['cpu']:.2f}/{cap['cpu']:.3g}", f"{_bytes(used['memory'])}/{_bytes(cap['memory'])}",
                      f"{_bytes(used['diskused'])}/{_bytes(cap['diskused'])}", *_network_cells(used, cap),
                      _port_text(cap["ports"]))
    total = status["usage"]
    if donated:
        table.add_row("all", "", "", f"{total['cpu']:.2f}/{donated['cpu']:.3g}",
                      f"{_bytes(total['memory'])}/{_bytes(donated['memory'])}",
                      f"{_bytes(total['diskused'])}/{_bytes(donated['diskused'])}", *_network_cells(total, donated),
                      "", style="bold")
    note = Text("used/share; net out/in in bytes per second over the last second, loopback (127.x) traffic not "
                "included: `seattle node status --json` has it as loopsend/looprecv", style="dim")
    pool = status.get("pool") or []
    if not pool:
        return Group(head, table, note)
    leases = Table(box=None, pad_edge=False, collapse_padding=True, title="pool", title_justify="left")
    for column in ("vessel", "state", "lessee", "slot", "expires in"):
        leases.add_column(column, no_wrap=True)
    for row in pool:
        lessee = PublicKey.from_text(row["lessee"]).fingerprint() if row["lessee"] else "-"
        expires = _duration(row["expires"] - time.time()) if row["expires"] is not None else "-"
        leases.add_row(row["vessel"], row["state"], lessee, "-" if row["slot"] is None else str(row["slot"]),
                       expires)
    free = sum(1 for row in pool if row["state"] == "free")
    summary = Text(f"{free} of {len(pool)} pool vessels free; `seattle node pool evict VESSEL` ends a lease, "
                   "`seattle node pool block KEY --for 1d` refuses a key", style="dim")
    return Group(head, table, note, leases, summary)


def _network_cells(used: dict[str, Any], share: dict[str, Any]) -> tuple[str, str]:
    """net out and net in as used/share in bytes per second; a node manager started before vessels reported
    network use has no rates, which shows as 0."""
    return (f"{_bytes(used.get('netsend', 0.0))}/{_bytes(share['netsend'])}",
            f"{_bytes(used.get('netrecv', 0.0))}/{_bytes(share['netrecv'])}")


def _bytes(value: float) -> str:
    number = float(value)
    for unit in ("B", "k", "M", "G", "T"):
        if number < 1000 or unit == "T":
            return f"{number:.3g}{unit}"
        number /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(max(seconds, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _port_text(ports: list[int]) -> str:
    if not ports:
        return "-"
    return f"{ports[0]}-{ports[-1]}" if len(ports) == ports[-1] - ports[0] + 1 else ",".join(map(str, ports))


@click.group()
def service() -> None:
    """Run the node as a systemd user service."""


@service.command("install")
@_DIR
@click.option("--enable", is_flag=True, help="Also enable and start the unit with `systemctl --user`.")
def service_install(node_dir: Path, enable: bool) -> None:
    """Write a systemd user unit that runs this node, and print the commands that enable it (or run them)."""
    from seattle.donor import service as units
    from seattle.nodemgr.nodedir import NodeDir

    NodeDir(node_dir).read_config()
    path = units.install_unit(node_dir)
    click.echo(f"wrote {path}")
    problem = units.enable(path) if enable else None
    if enable and problem is None:
        click.echo(f"enabled and started {path.name}")
        return
    if problem:
        click.echo(f"could not enable it here ({problem})")
    click.echo("enable and start it (now and at every log-in) with:")
    for line in units.commands(path):
        click.echo(f"  {line}")


@click.command()
@_DIR
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall(node_dir: Path, yes: bool) -> None:
    """Stop the node and remove everything seattle created for it (its keys and vessels included)."""
    from seattle.donor.uninstall import uninstall as remove
    from seattle.nodemgr.nodedir import NodeDir

    NodeDir(node_dir).read_manifest()
    if not yes:
        click.confirm(f"Remove the node in {node_dir}, its key, its vessels and their files?", abort=True)
    result = remove(node_dir)
    if result.stopped:
        click.echo("stopped the running node manager")
    click.echo(f"removed {len(result.removed)} item{'s' if len(result.removed) != 1 else ''} seattle created")
    for kept in result.kept:
        click.echo(f"kept {kept} (seattle did not create it, or it holds files seattle did not create)")
    if not os.path.exists(node_dir):
        click.echo(f"{node_dir} is gone")


@click.group()
def pool() -> None:
    """Control what this node shares with the pool: end a lease, refuse a key."""


@pool.command()
@_DIR
@click.argument("vessel")
def evict(node_dir: Path, vessel: str) -> None:
    """End the lease of VESSEL now: its program is stopped, its files and log deleted, its lessee removed."""
    from seattle.donor.daemonctl import control_request

    answer = control_request(node_dir, "pool_evict", vessel=vessel)
    click.echo(f"evicted {PublicKey.from_text(answer['lessee']).fingerprint()} from {answer['vessel']}; "
               "the vessel is free again")


@pool.command()
@_DIR
@click.argument("key")
@click.option("--for", "duration", default="1d", show_default=True, metavar="DURATION",
              help="How long to refuse the key: seconds, or a number with s, m, h or d.")
def block(node_dir: Path, key: str, duration: str) -> None:
    """Refuse KEY (a name or ed25519: key) new leases on this node for a while; its current leases run on
    (evict them to end them now)."""
    from seattle.donor.daemonctl import control_request
    from seattle.keys import resolve

    answer = control_request(node_dir, "pool_block", key=resolve(key).to_text(), seconds=parse_duration(duration))
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(answer["until"]))
    click.echo(f"key {PublicKey.from_text(answer['key']).fingerprint()} is refused by this node until {until}")


@pool.command()
@_DIR
@click.option("--beneficiary", metavar="KEY|NAME",
              help="The researcher key this donation earns pool credit for (10 more leases once the node has "
                   "been up 24 h); 'none' removes it.")
@click.option("--country", metavar="CC", help="The two-letter country the node's offer names ('none': unsaid).")
def config(node_dir: Path, beneficiary: str | None, country: str | None) -> None:
    """Set what the node tells the pool about this donation (node.json; the node reads it when it starts)."""
    from seattle.keys import resolve
    from seattle.nodemgr.nodedir import NodeDir

    directory = NodeDir(node_dir)
    current = directory.read_config()
    if beneficiary is not None:
        current = dataclasses.replace(current, beneficiary="" if beneficiary == "none"
                                      else resolve(beneficiary).to_text())
    if country is not None:
        current = dataclasses.replace(current, country="" if country == "none" else country.upper())
    directory.write_config(current)
    who = PublicKey.from_text(current.beneficiary).fingerprint() if current.beneficiary else "nobody"
    click.echo(f"pool credit goes to {who}; country {current.country or 'unsaid'} "
               "(restart the node to apply: seattle node stop, then start)")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `4h`, `7d` → seconds; click.BadParameter otherwise."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{text!r:.40} is not a duration such as 90, 30m, 4h or 7d") from None
    if not 0 < seconds < float("inf"):
        raise click.BadParameter(f"{text!r:.40} is not a positive duration")
    return seconds


COMMANDS = (start, stop, status, top, service, uninstall, pool)
