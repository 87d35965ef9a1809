"""The ``balancemanager`` command line: options, env vars, amount checks, bounds and exit codes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import Result

from polyswarmclient.amounts import nct
from polyswarmclient.cli.balancemanager import cli
from polyswarmclient.eth.keys import load_keyfile
from polyswarmclient.services.balancemanager.journal import TransferJournal
from tests.helpers import KEYFILES, cli_invoker, unused_port

KEYFILE = KEYFILES / "balancemanager_keyfile"
SUBCOMMANDS = ["deposit", "withdraw", "maintain", "view-balance"]
invoke = cli_invoker(cli, "balancemanager")


def error_line(result: Result) -> str:
    """The one ``Error:`` line on stderr (there must be exactly one, and no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


# --- help and options -----------------------------------------------------------------------------


def test_maintain_help_shows_every_option_with_its_env_var() -> None:
    """``maintain --help`` lists the bounds, connection, logging, testing and denomination env vars."""
    result = invoke("maintain", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for flag, env in [
        ("--maximum", "MAXIMUM"),
        ("--withdraw-target", "WITHDRAW_TARGET"),
        ("--confirmations", "CONFIRMATIONS"),
        ("--polyswarmd-addr", "POLYSWARMD_ADDR"),
        ("--keyfile", "KEYFILE"),
        ("--password", "PASSWORD"),
        ("--password-file", "PASSWORD_FILE"),
        ("--api-key", "API_KEY"),
        ("--insecure-transport", "INSECURE_TRANSPORT"),
        ("--allow-key-over-http", "ALLOW_KEY_OVER_HTTP"),
        ("--state-dir", "STATE_DIR"),
        ("--log", "LOG_LEVEL"),
        ("--log-format", "LOG_FORMAT"),
        ("--testing", "TESTING"),
        ("--denomination", "DENOMINATION"),
    ]:
        assert flag in text, flag
        assert f"env var: {env}" in text, env
    assert "MINIMUM REFILL_AMOUNT" in text
    assert "default: 20" in text


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_takes_the_common_options_after_its_name(command: str) -> None:
    """Connection, logging, --testing and --denomination are accepted after any sub-command."""
    result = invoke(command, "--help")
    assert result.exit_code == 0
    for flag in ("--polyswarmd-addr", "--keyfile", "--log", "--log-format", "--testing", "--denomination"):
        assert flag in result.output, (command, flag)


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_transfer_help_offers_all(command: str) -> None:
    """deposit and withdraw offer --all as the alternative to AMOUNT."""
    result = invoke(command, "--help")
    assert "--all" in result.output and "[AMOUNT]" in result.output


# --- amounts --------------------------------------------------------------------------------------

BAD_AMOUNTS = [
    ("0", "greater than 0"),
    ("-1", "-1 is negative"),
    ("-0.5", "-0.5 is negative"),
    ("1.0000000000000000001", "more than 18 decimal places"),
    ("abc", "'abc' is not a number"),
    ("nan", "not a number"),
    ("1e999", "no exponent"),
]


@pytest.mark.parametrize(("amount", "message"), BAD_AMOUNTS)
@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_bad_transfer_amounts_are_usage_errors(command: str, amount: str, message: str) -> None:
    """A zero, negative, over-precise or non-numeric AMOUNT exits 2 saying what is wrong, before any I/O."""
    result = invoke(command, amount, "--keyfile", str(KEYFILE), "--password", "password")
    assert result.exit_code == 2
    assert message in error_line(result)


@pytest.mark.parametrize(("amount", "message"), BAD_AMOUNTS)
def test_bad_maintain_amounts_are_usage_errors(amount: str, message: str) -> None:
    """Bad MINIMUM / REFILL_AMOUNT / --maximum values exit 2 with the reason and the argument's name."""
    result = invoke("maintain", "10", amount)
    assert result.exit_code == 2
    assert message in error_line(result)
    result = invoke("maintain", "10", "5", "--maximum", amount, "--withdraw-target", "20")
    assert result.exit_code == 2
    assert message in error_line(result)


def test_precision_follows_the_denomination() -> None:
    """In nct-gwei nine decimals are allowed and ten are not; in nct-wei no decimals at all."""
    result = invoke("deposit", "1.0000000001", "--denomination", "nct-gwei")
    assert result.exit_code == 2 and "more than 9 decimal places" in error_line(result)
    result = invoke("deposit", "1.5", "--denomination", "nct-wei")
    assert result.exit_code == 2 and "more than 0 decimal places" in error_line(result)


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_amount_or_all_is_required(command: str) -> None:
    """Neither AMOUNT nor --all is a usage error (exit 2), and so is both."""
    result = invoke(command)
    assert result.exit_code == 2 and "--all" in error_line(result)
    result = invoke(command, "5", "--all")
    assert result.exit_code == 2 and "not both" in error_line(result)


def test_all_cannot_be_repeated_with_testing() -> None:
    """--all with --testing 2 is refused: the second transfer would have nothing to move."""
    result = invoke("withdraw", "--all", "--testing", "2")
    assert result.exit_code == 2 and "--testing" in error_line(result)


# --- maintain bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--maximum", "200"], "--maximum needs --withdraw-target"),
        (["--withdraw-target", "150"], "--withdraw-target needs --maximum"),
        (
            ["--maximum", "200", "--withdraw-target", "50"],
            "--withdraw-target 50 NCT is below MINIMUM 100 NCT",
        ),
        (["--maximum", "90", "--withdraw-target", "100"], "--maximum 90 NCT is below MINIMUM 100 NCT"),
        (["--maximum", "150", "--withdraw-target", "150"], "must be greater than --withdraw-target"),
    ],
)
def test_invalid_bounds_exit_2_before_connecting(args: list[str], message: str) -> None:
    """Bounds that cannot work exit 2 with a message naming the flags (they used to exit 0 with a warning)."""
    result = invoke("maintain", "100", "12", *args, "--polyswarmd-addr", "127.0.0.1:1")
    assert result.exit_code == 2
    assert message in error_line(result)


def test_bounds_from_env_vars() -> None:
    """MAXIMUM from the environment is checked like the flag."""
    result = invoke("maintain", "100", "12", env={"MAXIMUM": "200"})
    assert result.exit_code == 2 and "--maximum needs --withdraw-target" in error_line(result)


def test_negative_confirmations_are_refused() -> None:
    """--confirmations must be 0 or more."""
    result = invoke("maintain", "100", "12", "--confirmations", "-3")
    assert result.exit_code == 2


# --- keyfile --------------------------------------------------------------------------------------


def test_missing_keyfile_exits_2(tmp_path: Path) -> None:
    """A keyfile path that does not exist exits 2 naming the path."""
    result = invoke("view-balance", "--keyfile", str(tmp_path / "nope"), "--password", "password")
    assert result.exit_code == 2
    assert "does not exist" in error_line(result)


def test_no_keyfile_exits_2() -> None:
    """No --keyfile at all exits 2 saying how to give one."""
    result = invoke("view-balance", "--password", "password", env={"KEYFILE": ""})
    assert result.exit_code == 2
    assert "--keyfile" in error_line(result)


def test_wrong_password_exits_2() -> None:
    """A password that does not open the keystore exits 2 and the password never appears."""
    result = invoke("view-balance", "--keyfile", str(KEYFILE), "--password", "not-the-password")
    assert result.exit_code == 2
    line = error_line(result)
    assert "not-the-password" not in result.stderr
    assert "password" in line.lower() or "keyfile" in line.lower()


# --- against a fake polyswarmd --------------------------------------------------------------------


@dataclass
class FakePolyswarmd:
    """Just enough polyswarmd for everything that happens before a transaction is built: status,
    balances, relay fees and a home-chain block stream."""

    balances: dict[tuple[str, str], int] = field(default_factory=dict)  # (chain, kind) -> wei
    fees: dict[str, int] = field(default_factory=lambda: {"home": 0, "side": 0})
    posted: list[str] = field(default_factory=list)
    block: int = 1
    streaming: threading.Event = field(default_factory=threading.Event)
    balance_reads: int = 0
    relay_reply: Any = None  # a result for POST /relay/*: unsigned transactions built by this "server"
    raw_balance: bytes | None = None  # a non-JSON body for every balance read
    signed: list[Any] = field(default_factory=list)  # whatever reached POST /transactions
    mined: set[str] = field(default_factory=set)  # hashes GET /transactions reports as mined

    def app(self) -> web.Application:
        def ok(result: Any) -> web.Response:
            return web.json_response({"status": "OK", "result": result})

        async def status(request: web.Request) -> web.Response:
            return ok(
                {
                    "community": "test",
                    "home": {"reachable": True, "syncing": False, "block": 1},
                    "side": {"reachable": True, "syncing": False, "block": 1},
                }
            )

        async def balance(request: web.Request) -> web.Response:
            self.balance_reads += 1
            if self.raw_balance is not None:
                return web.Response(body=self.raw_balance, content_type="text/html")
            chain = request.query.get("chain", "side")
            return ok(str(self.balances.get((chain, request.match_info["kind"]), 0)))

        async def fees(request: web.Request) -> web.Response:
            return ok({"fees": self.fees[request.query.get("chain", "side")]})

        async def relay(request: web.Request) -> web.Response:
            self.posted.append(request.path)
            if self.relay_reply is not None:
                return ok(self.relay_reply)
            return web.json_response({"status": "FAIL", "errors": "not in this fake"}, status=400)

        async def transactions(request: web.Request) -> web.Response:
            if request.method == "GET":
                hashes = (await request.json())["transactions"]
                if all(h in self.mined for h in hashes):
                    return ok({"transfers": [], "errors": []})
                errors = [f"transaction {h}: timeout during wait for receipt" for h in hashes]
                return web.json_response({"status": "FAIL", "errors": {"errors": errors}}, status=400)
            self.signed.append(await request.json())
            return web.json_response({"status": "FAIL", "errors": "not in this fake"}, status=400)

        async def events(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_json({"event": "connected", "data": {"start_time": "0"}})
            self.streaming.set()

            async def blocks() -> None:
                for _ in range(2000):
                    self.block += 1
                    await ws.send_json({"event": "block", "data": {"number": self.block}})
                    await asyncio.sleep(0.02)

            sender = asyncio.create_task(blocks())
            async for _ in ws:  # reading is what answers the client's close frame
                pass
            sender.cancel()
            return ws

        app = web.Application()
        app.router.add_get("/events/", events)
        app.router.add_get("/status", status)
        app.router.add_get("/balances/{address}/{kind}", balance)
        app.router.add_get("/relay/fees", fees)
        app.router.add_post("/relay/deposit", relay)
        app.router.add_post("/relay/withdrawal", relay)
        app.router.add_route("*", "/transactions", transactions)
        return app


@pytest.fixture
def polyswarmd() -> Iterator[tuple[FakePolyswarmd, str]]:
    """A fake polyswarmd on an ephemeral port, in its own thread (the CLI runs its own event loop)."""
    fake = FakePolyswarmd()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(5)
    yield fake, f"127.0.0.1:{holder['port']}"
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def connect_args(addr: str) -> list[str]:
    return [
        "--polyswarmd-addr",
        addr,
        "--insecure-transport",
        "--keyfile",
        str(KEYFILE),
        "--password",
        "password",
    ]


def test_withdraw_not_above_the_home_relay_fee_is_refused(polyswarmd: tuple[FakePolyswarmd, str]) -> None:
    """A withdrawal not above the homechain relay fee is refused (exit 2), saying why and the fee."""
    fake, addr = polyswarmd
    fake.fees["home"] = nct("314.5")
    fake.balances[("side", "nct")] = nct(10_000)
    result = invoke("withdraw", "314.5", *connect_args(addr))
    assert result.exit_code == 2
    line = error_line(result)
    assert "314.5 NCT" in line and "fee" in line and "never pay it out" in line
    assert fake.signed == []  # first contact builds the relay transfers, but nothing is signed


def test_deposit_with_too_little_home_nct_exits_1(polyswarmd: tuple[FakePolyswarmd, str]) -> None:
    """A deposit larger than the home balance is one line naming both amounts, exit 1, nothing sent."""
    fake, addr = polyswarmd
    fake.balances[("home", "nct")] = nct("2.5")
    result = invoke("deposit", "3", *connect_args(addr))
    assert result.exit_code == 1
    assert "insufficient NCT on home: have 2.5 NCT, need 3 NCT" in error_line(result)
    assert fake.signed == []  # first contact builds the relay transfers, but nothing is signed


def test_view_balance_prints_exact_amounts(polyswarmd: tuple[FakePolyswarmd, str]) -> None:
    """view-balance prints NCT and ETH for both chains exactly, in the chosen denomination."""
    fake, addr = polyswarmd
    fake.balances.update(
        {("home", "nct"): nct("0.5"), ("home", "eth"): 1, ("side", "nct"): nct("1234.000000000000000001")}
    )
    result = invoke("view-balance", *connect_args(addr))
    assert result.exit_code == 0, result.stderr
    assert "home: 0.5 NCT, 0.000000000000000001 ETH" in result.output
    assert "side: 1234.000000000000000001 NCT, 0 ETH" in result.output
    result = invoke("view-balance", "home", "--denomination", "nct-gwei", *connect_args(addr))
    assert "home: 500000000 NCT-gwei, 0.000000001 gwei" in result.output
    assert "side:" not in result.output


def test_maintain_refuses_withdrawals_the_relay_would_not_pay(polyswarmd: tuple[FakePolyswarmd, str]) -> None:
    """maintain exits 2 at start when --maximum minus --withdraw-target cannot exceed the home relay fee."""
    fake, addr = polyswarmd
    fake.fees["home"] = nct(314)
    result = invoke("maintain", "100", "12", "--maximum", "400", "--withdraw-target", "100", *connect_args(addr))
    assert result.exit_code == 2
    assert "homechain relay fee 314 NCT" in error_line(result)


def test_unreachable_polyswarmd_exits_1_with_one_line() -> None:
    """Nothing listening at --polyswarmd-addr is one error line and exit 1."""
    port = unused_port()
    result = invoke("view-balance", *connect_args(f"127.0.0.1:{port}"))
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in error_line(result)


def test_maintain_testing_mode_stops_when_home_cannot_refill(polyswarmd: tuple[FakePolyswarmd, str]) -> None:
    """maintain --testing exits 1 with one line naming both balances when home cannot cover a refill."""
    fake, addr = polyswarmd
    fake.balances.update({("side", "nct"): nct(5), ("home", "nct"): nct("7.5")})
    result = invoke("maintain", "10", "8", "--testing", "1", *connect_args(addr))
    assert result.exit_code == 1
    line = error_line(result)
    assert "side balance 5 NCT" in line and "home balance 7.5 NCT" in line and "REFILL_AMOUNT 8 NCT" in line
    assert fake.signed == []  # first contact builds the relay transfers, but nothing is signed


def test_sigterm_stops_maintain_with_exit_0(polyswarmd: tuple[FakePolyswarmd, str], tmp_path: Path) -> None:
    """SIGTERM lets maintain finish its current step and exit 0."""
    fake, addr = polyswarmd
    fake.balances.update({("side", "nct"): nct(50), ("home", "nct"): nct(1000)})
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "STATE_DIR": str(tmp_path / "state")}
    code = "from polyswarmclient.cli.balancemanager import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "maintain", "10", "8", *connect_args(addr)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while fake.balance_reads < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Error" not in stderr and "Traceback" not in stderr


# --- a polyswarmd that lies -------------------------------------------------------------------------

TOKEN = "0x" + "11" * 20
HOME_RELAY = "0x" + "22" * 20


def _transfer_tx(recipient: str, amount: int, **changes: Any) -> dict[str, Any]:
    from polyswarmclient.eth.abi import TRANSFER

    tx = {
        "to": TOKEN,
        "data": "0x" + TRANSFER.encode(recipient, amount).hex(),
        "value": 0,
        "gas": 5_000_000,
        "gasPrice": 0,
        "nonce": 0,
        "chainId": 1337,
    }
    tx.update(changes)
    return tx


@pytest.mark.parametrize(
    ("transactions", "why"),
    [
        ([_transfer_tx(HOME_RELAY, nct(11))], "got 11000000000000000000"),  # asked for 10, built for 11
        ([_transfer_tx(HOME_RELAY, nct(10), value=1)], "1 wei of ether"),  # would also send ETH
        ([_transfer_tx(HOME_RELAY, nct(10)), _transfer_tx(HOME_RELAY, nct(10))], "built 2"),  # extra tx
        ([{**_transfer_tx(HOME_RELAY, nct(10)), "data": "0x095ea7b3" + "00" * 64}], "not transfer"),
    ],
    ids=["amount", "eth-value", "extra-tx", "wrong-function"],
)
def test_a_tampered_deposit_is_never_signed(
    polyswarmd: tuple[FakePolyswarmd, str], tmp_path: Path, transactions: list[Any], why: str
) -> None:
    """A deposit transaction that differs from the request ends in one error line, exit 1, nothing posted."""
    fake, addr = polyswarmd
    fake.balances[("home", "nct")] = nct(100)
    fake.relay_reply = {"transactions": transactions}
    result = invoke("deposit", "10", *connect_args(addr), "--state-dir", str(tmp_path))
    assert result.exit_code == 1, result.output
    line = error_line(result)
    # Refused at first contact, where the deposit is first built (never posted) to learn the relay.
    assert line.startswith("Error: first contact (relay deposit):") and line.endswith("refusing to sign"), line
    assert why in line, line
    assert fake.posted == ["/relay/deposit"]
    assert fake.signed == []  # nothing reached POST /transactions


def test_a_malformed_reply_is_one_clear_line(polyswarmd: tuple[FakePolyswarmd, str]) -> None:
    """A polyswarmd answering HTML instead of JSON gives one error line naming the request, exit 1."""
    fake, addr = polyswarmd
    fake.raw_balance = b"<html>502 Bad Gateway</html>"
    result = invoke("view-balance", *connect_args(addr))
    assert result.exit_code == 1
    line = error_line(result)
    assert "not JSON" in line and "/balances/" in line


# --- reruns after a crash -------------------------------------------------------------------------

TX = "0x" + "ab" * 32


def interrupted(state_dir: Path, direction: str, *hashes: str) -> None:
    """The journal an interrupted one-shot ``direction`` of 10 NCT leaves: recorded, signed, never answered."""
    address = load_keyfile(KEYFILE, "password").address
    journal = TransferJournal.open(state_dir, address)
    record = journal.begin(direction, nct(10), origin="once", home_block=7, side_block=9, side_before=nct(1))  # type: ignore[arg-type]
    for tx_hash in hashes:
        journal.add_hash(record.seq, tx_hash)


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_a_rerun_reports_the_mined_transfer_and_does_not_repeat_it(
    polyswarmd: tuple[FakePolyswarmd, str], tmp_path: Path, command: str
) -> None:
    """After a crash, the same command says in one line that the transfer already went out, and sends nothing."""
    fake, addr = polyswarmd
    fake.balances.update({("home", "nct"): nct(100), ("side", "nct"): nct(100)})
    fake.mined.add(TX)
    interrupted(tmp_path, command, TX)

    result = invoke(command, "10", *connect_args(addr), "--state-dir", str(tmp_path))

    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line]
    assert len(lines) == 1, result.stdout
    assert "already mined" in lines[0] and TX in lines[0] and "--again" in lines[0]
    assert fake.signed == []  # nothing signed, nothing posted


def test_a_rerun_sends_when_the_earlier_transfer_never_went_out(
    polyswarmd: tuple[FakePolyswarmd, str], tmp_path: Path
) -> None:
    """A recorded deposit the chain never saw is not "in flight": the rerun goes on to send the deposit."""
    fake, addr = polyswarmd
    fake.balances.update({("home", "nct"): nct(100), ("side", "nct"): nct(100)})
    interrupted(tmp_path, "deposit", TX)  # not in fake.mined: no receipt

    result = invoke("deposit", "10", *connect_args(addr), "--state-dir", str(tmp_path))

    assert "/relay/deposit" in fake.posted  # it tried to build a new one (this fake builds nothing)
    assert "already mined" not in result.stdout


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_again_is_an_option_with_an_env_var(command: str) -> None:
    """--again (env AGAIN) is offered to repeat a transfer an interrupted run already sent."""
    text = " ".join(invoke(command, "--help").output.split())
    assert "--again" in text and "env var: AGAIN" in text
