"""`seattle installer build`: a planner signs a profile and packs it into the installer donors run."""

from __future__ import annotations

from pathlib import Path

import click

from seattle.errors import BadProfile, NoPlannerGiven
from seattle.keys import PublicKey, is_protected, list_identities, load_identity, resolve
from seattle.planner.installer import INSTALLER_NAME, build_installer
from seattle.planner.profile import TWOPERCENT, PoolShare, VesselPlan, write_profile


@click.group()
def installer() -> None:
    """Build the installer donors run: seattle plus the planner's signed profile, in one file."""


@installer.command()
@click.option("--vessel", "vessels", multiple=True, required=True, metavar="'PERCENT OWNER [USER,...]'",
              help="One vessel: its percent of the donation, its owner and optionally users (names or "
                   "ed25519: keys, users separated by commas). Repeat; the percents must total 100.")
@click.option("--bootstrap", multiple=True, metavar="HOST:PORT",
              help="An overlay node new nodes join through (repeatable; none: each node starts an overlay).")
@click.option("--as", "as_identity", metavar="IDENTITY",
              help="The planner identity that signs the profile (default: the only identity).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path(INSTALLER_NAME),
              show_default=True, help="The installer file to write.")
@click.option("--profile-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the signed profile too (default: next to the installer, .profile).")
@click.option("--pool", "pool_percent", type=click.IntRange(1, 99), metavar="PERCENT",
              help="Give PERCENT of each donation to the pool, for anyone to lease (docs/pool.md); the "
                   "vessels' percents and this total 100.")
@click.option("--pool-vessel-size", default="twopercent", show_default=True, metavar="twopercent|PERCENT",
              help="Each pool vessel's share of the donation: twopercent (2 %, the original's) or a percent.")
def build(vessels: tuple[str, ...], bootstrap: tuple[str, ...], as_identity: str | None, out: Path,
          profile_out: Path | None, pool_percent: int | None, pool_vessel_size: str) -> None:
    """Validate the vessels, write the signed profile and the installer."""
    plans = [parse_vessel(text) for text in vessels]
    pool = None if pool_percent is None else PoolShare(pool_percent, parse_pool_vessel_size(pool_vessel_size))
    name = as_identity or _only_identity()
    passphrase = click.prompt(f"Passphrase for {name}", hide_input=True) if is_protected(name) else None
    planner = load_identity(name, passphrase=passphrase)
    profile_path = profile_out or out.with_suffix(".profile")
    profile = write_profile(profile_path, plans, bootstrap, planner, pool)
    build_installer(out, profile_path)
    click.echo(f"wrote {profile_path} (signed by {planner.public_key.fingerprint()}) and {out}")
    for number, plan in enumerate(profile.vessels, start=1):
        users = f", users {', '.join(u.fingerprint() for u in plan.users)}" if plan.users else ""
        click.echo(f"  v{number}: {plan.percent}% owned by {plan.owner.fingerprint()}{users}")
    if profile.pool is not None:
        click.echo(f"  pool: {profile.pool.percent}% as {profile.pool.count} vessel(s) of "
                   f"{profile.pool.vessel_percent}% each, owned by each node's own key")
    click.echo(f"  bootstrap: {', '.join(profile.bootstrap) or 'none (each node starts an overlay)'}")
    click.echo(f"donors run: python3 {out.name} [--percent N] [--start]")


def parse_vessel(text: str) -> VesselPlan:
    """`PERCENT OWNER [USER,USER...]` → a VesselPlan (keys by name or ed25519: text)."""
    words = text.split()
    if len(words) not in (2, 3) or not words[0].isdigit():
        raise BadProfile("--vessel", f"{text!r:.80} is not 'PERCENT OWNER [USER,...]', e.g. '50 alice bob,carol'")
    users: tuple[PublicKey, ...] = tuple(resolve(u) for u in words[2].split(",") if u) if len(words) == 3 else ()
    return VesselPlan(int(words[0]), resolve(words[1]), users)


def parse_pool_vessel_size(text: str) -> int:
    """`twopercent` or a whole percent → the percent of the donation each pool vessel gets."""
    if text == "twopercent":
        return TWOPERCENT
    if not text.isdigit():
        raise BadProfile("--pool-vessel-size", f"{text!r:.40} is neither 'twopercent' nor a whole percent")
    return int(text)


def _only_identity() -> str:
    identities = list_identities()
    if len(identities) != 1:
        raise NoPlannerGiven(identities)
    return identities[0]
