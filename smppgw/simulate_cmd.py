"""`smppgw simulate`: the SMSC simulator standalone, until SIGINT or SIGTERM.

Owns the subcommand's arguments and turning them into a SimulatorConfig; the simulator itself
lives in smppgw.simulator. Prints the listen address (and certificate paths with TLS) at start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Final, TextIO

from smppgw.argtypes import non_negative_seconds, positive_seconds
from smppgw.simulator import (
    Account,
    Faults,
    IdFormat,
    ReceiptPlan,
    ReceiptRouting,
    SimulatorConfig,
    SmscSimulator,
    parse_outcomes,
)

__all__ = ["add_arguments", "config_from_args", "parse_listen", "run"]

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_START: Final = 1  # could not listen (port in use, certificate unreadable)

DEFAULT_LISTEN: Final = "127.0.0.1:2775"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw simulate`` on the parser the CLI made for it."""
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to listen on; port 0 picks a free one (default: {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--tls", action="store_true", help="SMPP over TLS (a CA and certificate are generated)"
    )
    parser.add_argument("--cert", metavar="FILE", help="server certificate (PEM) instead")
    parser.add_argument("--key", metavar="FILE", help="private key (PEM) of --cert")
    parser.add_argument("--cert-dir", metavar="DIR", help="where generated certificates go")
    parser.add_argument("--system-id", metavar="ID", help="accept binds of this system_id only")
    parser.add_argument("--password", metavar="PW", help="password of --system-id")
    parser.add_argument(
        "--style",
        choices=("wavy", "qikberry", "standard"),
        default="standard",
        help="receipt style, message ids and defaults of that provider (default: standard)",
    )
    parser.add_argument(
        "--id-format",
        choices=("uuid", "hex", "decimal"),
        help="message id format (default: the style's: wavy uuid, others hex)",
    )
    parser.add_argument(
        "--receipt-delay", type=non_negative_seconds, default=1.0, metavar="SECONDS",
        help="default: 1.0",
    )
    parser.add_argument(
        "--final-delay",
        type=non_negative_seconds,
        default=2.0,
        metavar="SECONDS",
        help="wavy: seconds between ACCEPTD and the handset stage (default: 2.0)",
    )
    parser.add_argument(
        "--single-stage", action="store_true", help="wavy: send only the final receipt"
    )
    parser.add_argument(
        "--outcomes",
        default="DELIVRD=1",
        metavar="STAT=W,...",
        help="weights of receipt outcomes, e.g. DELIVRD=0.9,UNDELIV=0.1 or REJECTD:202=1",
    )
    parser.add_argument(
        "--relay",
        choices=("round_robin", "same", "other"),
        help="which bind gets a receipt (default: qikberry other, else round_robin)",
    )
    parser.add_argument(
        "--latency", type=non_negative_seconds, default=0.0, metavar="S", help="answer delay"
    )
    parser.add_argument(
        "--throttle-above", type=float, metavar="RATE", help="ESME_RTHROTTLED above RATE msg/s"
    )
    parser.add_argument("--window", type=int, metavar="N", help="ESME_RMSGQFUL beyond N open")
    parser.add_argument(
        "--queue-full-every", type=int, metavar="N", help="every Nth submit gets ESME_RMSGQFUL"
    )
    parser.add_argument(
        "--drop-after", type=int, metavar="N", help="cut each connection at its Nth PDU"
    )
    parser.add_argument(
        "--idle-timeout", type=positive_seconds, metavar="S", help="close links idle for S seconds"
    )
    parser.add_argument(
        "--enquire-link-every",
        type=positive_seconds,
        metavar="S",
        help="send an enquire_link on every bound link each S seconds",
    )
    parser.add_argument(
        "--mo-every", type=positive_seconds, metavar="S", help="send an MO message every S seconds"
    )
    parser.add_argument("--mo-from", default="5511999990000", metavar="ADDR")
    parser.add_argument("--mo-to", default="acme", metavar="ADDR")
    parser.add_argument("--seed", type=int, help="random seed (ids, outcomes) for repeatable runs")


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port). Raises ValueError with the reason."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"--listen {value!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"--listen {value!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"--listen {value!r}: port must be 0..65535")
    return host, port


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the options describe. Raises ValueError naming the bad option."""
    host, port = parse_listen(args.listen)
    if (args.system_id is None) != (args.password is None):
        raise ValueError("--system-id and --password go together")
    if (args.cert is None) != (args.key is None):
        raise ValueError("--cert and --key go together")
    style = args.style
    outcomes = parse_outcomes(args.outcomes)
    relay: ReceiptRouting = args.relay or ("other" if style == "qikberry" else "round_robin")
    receipts = ReceiptPlan(
        style=style,
        delay=args.receipt_delay,
        outcomes=outcomes,
        two_stage=style == "wavy" and not args.single_stage,
        final_delay=args.final_delay,
        routing=relay,
    )
    faults = Faults(
        latency=args.latency,
        throttle_above=args.throttle_above,
        window=args.window,
        queue_full_every=args.queue_full_every,
        drop_after=args.drop_after,
        idle_timeout=args.idle_timeout,
    )
    accounts = (Account(args.system_id, args.password),) if args.system_id is not None else ()
    id_format: IdFormat = args.id_format or ("uuid" if style == "wavy" else "hex")
    smsc_system_id = {"wavy": "MovileSMSC", "qikberry": "qikberry"}.get(style, "smppgw-sim")
    return SimulatorConfig(
        host=host,
        port=port,
        tls=bool(args.tls or args.cert),
        cert_file=args.cert,
        key_file=args.key,
        cert_dir=args.cert_dir,
        accounts=accounts,
        smsc_system_id=smsc_system_id,
        id_format=id_format,
        receipts=receipts,
        faults=faults,
        enquire_link_interval=args.enquire_link_every,
        seed=args.seed,
        # A long-running standalone simulator must not grow without bound.
        record=False,
    )


def run(args: argparse.Namespace) -> int:
    """Run the simulator until SIGINT/SIGTERM; 2 for bad options, 1 if it cannot listen."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"smppgw simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_serve(config, args, sys.stdout))


async def _serve(config: SimulatorConfig, args: argparse.Namespace, out: TextIO) -> int:
    simulator = SmscSimulator(config)
    try:
        await simulator.start()
    except (OSError, ValueError) as exc:
        print(f"smppgw simulate: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return EXIT_START
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        out.write(f"listening on {simulator.address}{' (TLS)' if config.tls else ''}\n")
        if simulator.cert_paths is not None:
            out.write(f"certificate {simulator.cert_paths.cert}\n")
            out.write(f"ca {simulator.cert_paths.ca}\n")
        out.flush()
        async with asyncio.TaskGroup() as group:
            if args.mo_every is not None:
                group.create_task(_mo_loop(simulator, args, stop))
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await simulator.close()
    out.write(
        f"stopped: {simulator.connects_total} connections, {simulator.submits_total} submits, "
        f"{simulator.delivered_total} deliver_sm sent\n"
    )
    out.flush()
    return EXIT_OK


async def _mo_loop(simulator: SmscSimulator, args: argparse.Namespace, stop: asyncio.Event) -> None:
    """One MO every ``--mo-every`` seconds until stopped; queued while nobody is bound."""
    count = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.mo_every)
        if stop.is_set():
            return
        count += 1
        simulator.inject_mo(args.mo_from, args.mo_to, f"simulated MO {count}")
