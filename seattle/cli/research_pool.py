"""The pool commands: acquire, renew, release. Each calls `seattle.experiment.pool`; this module only prints.

`acquire` prints one row per node asked (the vessel it leased, or its refusal with the node's numbers) and
exits 1 when fewer vessels than asked were leased; `renew` and `release` report per vessel as every fan-out
command does. All three work in the shell too (it runs these very commands).
"""

from __future__ import annotations

import json
import time

import click

from seattle.cli.research_common import (
    Options,
    command_session,
    common_options,
    identity,
    progress_bar,
    report,
    run_async,
    targets,
)
from seattle.cli.terminal import printable
from seattle.errors import NotLeased
from seattle.experiment import pool
from seattle.experiment.session import Session
from seattle.pool.formats import DEFAULT_LEASE
from seattle.pool.refusals import when


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float:
    return DEFAULT_LEASE if value is None else pool.parse_duration(value)


def _filter(ctx: click.Context, param: click.Parameter, value: str | None) -> pool.Filter:
    return pool.parse_filter(value or "")


@click.command()
@common_options
@click.argument("count", type=click.IntRange(min=1, max=10_000), metavar="N")
@click.option("--where", "where", metavar="FILTER", callback=_filter,
              help="Only nodes whose offer matches, e.g. 'country=DE|FR,reachability=public,size.cpu>=0.02'.")
@click.option("--for", "duration", metavar="DURATION", callback=_duration,
              help="How long the leases last (90m, 4h, 7d; default 4h; nodes cap it, renew extends it).")
@click.option("--bootstrap", "bootstrap", multiple=True, metavar="HOST:PORT",
              help="An overlay node to join through (default: $SEATTLE_BOOTSTRAP, then $SEATTLE_HOME/bootstrap).")
@click.option("--node", "nodes", multiple=True, metavar="HOST:PORT",
              help="Ask these node managers for their offers instead of the overlay (repeatable).")
def acquire(opts: Options, count: int, where: pool.Filter, duration: float, bootstrap: tuple[str, ...],
            nodes: tuple[str, ...]) -> None:
    """Lease N vessels from the pool; they become %N targets in the group acquiregood.

    One row per node asked: the vessel and its expiry, or why the node refused (with its numbers)."""
    from seattle.addresses import parse_address
    from seattle.experiment.browse import bootstrap_nodes

    with command_session(opts) as session:
        signer = identity(session, opts)
        if nodes:
            addresses = [parse_address(text) for text in nodes]
            offers = run_async(lambda: pool.offers_at(addresses, timeout=session.timeout))
        else:
            overlay = bootstrap_nodes(bootstrap)
            offers = run_async(lambda: pool.find_offers(overlay, timeout=session.timeout, where=where,
                                                        want=pool.offers_wanted(count)))
        with progress_bar("acquire", count) as progress:
            result = run_async(lambda: pool.acquire(session, signer, offers, count, where=where, duration=duration,
                                                    progress=progress))
        _print_acquired(result, opts.as_json)
        if len(result.numbers) < count:
            raise click.exceptions.Exit(1)


def _print_acquired(result: pool.AcquireResult, as_json: bool) -> None:
    if as_json:
        for attempt in result.attempts:
            click.echo(json.dumps(attempt.to_json()))
    else:
        click.echo(f"{'ID':<6} {'node':<28} {'slot':>4}  result")
        for attempt in result.attempts:
            target = f"%{attempt.number}" if attempt.number is not None else "-"
            if attempt.kept:
                what = f"leased {attempt.vessel} until {when(attempt.expires)}"
            elif attempt.released:
                what = f"leased {attempt.vessel}, given back (more than asked)"
            else:
                what = f"{attempt.kind}: {attempt.message}" if attempt.message else attempt.kind
            click.echo(printable(f"{target:<6} {attempt.address:<28} {attempt.slot:>4}  {what}"))
    got = result.numbers
    names = f" ({', '.join(f'%{n}' for n in got[:12])}{' ...' if len(got) > 12 else ''}, group acquiregood)"
    click.echo(f"acquired {len(got)} of {result.wanted} vessels in {result.seconds:.1f} s"
               f"{names if got else ''}", err=as_json)


def _leased_targets(session: Session, opts: Options, target: str | None) -> list[int]:
    chosen = Options(target or opts.on, opts.as_identity, opts.timeout, opts.as_json)
    numbers = targets(session, chosen)
    if not any(pool.stored_lease(session, number) is not None for number in numbers):
        raise NotLeased(target or opts.on or session.target)
    return numbers


@click.command()
@common_options
@click.argument("target", required=False)
@click.option("--for", "duration", metavar="DURATION", callback=_duration,
              help="Extend each lease to this long from now (default 4h), never past its maximum age (7 days).")
def renew(opts: Options, target: str | None, duration: float) -> None:
    """Extend the leases of the acquired vessels in TARGET (default: --on, else the session's target)."""
    with command_session(opts) as session:
        numbers = _leased_targets(session, opts, target)
        signer = identity(session, opts)
        with progress_bar("renew", len(numbers)) as progress:
            outcomes = run_async(lambda: pool.renew(session, numbers, signer, duration=duration, progress=progress))
        report(outcomes, opts, lambda o: f"%{o.number:<5} {printable(o.ref)}  until {when(o.result['expires'])} "
                                         f"(at most until {when(o.result['max_expiry'])})")


@click.command()
@common_options
@click.argument("target", required=False)
def release(opts: Options, target: str | None) -> None:
    """End the leases of the acquired vessels in TARGET: the nodes reset them; the session forgets them."""
    with command_session(opts) as session:
        numbers = _leased_targets(session, opts, target)
        signer = identity(session, opts)
        started = time.monotonic()
        with progress_bar("release", len(numbers)) as progress:
            outcomes = run_async(lambda: pool.release(session, numbers, signer, progress=progress))
        click.echo(f"released {sum(o.ok for o in outcomes)} of {len(outcomes)} vessels in "
                   f"{time.monotonic() - started:.1f} s", err=opts.as_json)
        report(outcomes, opts)
