"""The marketplace with every role signing through polyswarm-signer, whose engine signer is restarted mid-run.

One signer process per key (engine, ambassador, arbiter), each pinning the devnet's contracts at first
contact; ``balancemanager maintain`` shares the engine's key and so its signer. While the engine works on
its bounties its signer is stopped until the engine has found it gone, then started again: the engine
waits, then reveals and settles everything. Finally a compromised client asks that signer directly for a
transfer to a stranger and is refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from polyswarmclient.eth.abi import TRANSFER
from polyswarmclient.transport.jsonrpc import JsonRpcClient, RpcFault, parse_endpoint
from tests.e2e.harness import (
    ARBITER_READY,
    ENGINE_READY,
    MAINTAIN_READY,
    NCT,
    PASSWORD,
    Cli,
    Devnet,
    DevnetOptions,
    Process,
    address_of,
    command,
    keyfile,
    posted_guids,
    wait_until,
)

#: A long reveal window (80 blocks, ~20 s idle) leaves room for the signer's restart inside it.
DEVNET_OPTIONS = DevnetOptions(block_time=0.25, reveal_window=80, vote_window=8, relay_confirmations=2)
BOUNTIES = 2
REFILL = 50
SIGNER_READY = "listening on unix://"
STRANGER = "0x" + "66" * 20


@dataclass
class SignerCli(Cli):
    """Starts the roles with ``--signer <socket>`` of the keystore's signer instead of ``--keyfile``."""

    sockets: dict[str, Path] = field(default_factory=dict)

    def start(
        self,
        tool: str,
        *args: str,
        keystore: str,
        name: str | None = None,
        state_dir: Path | None = None,
        log_level: str = "info",
        env: dict[str, str] | None = None,
        addr: str | None = None,
    ) -> Process:
        name = self._unique(name or f"{tool}-{keystore.removesuffix('_keyfile')}")
        argv = [
            *command(tool), *args,
            "--polyswarmd-addr", addr or self.devnet.addr, "--insecure-transport",
            "--signer", f"unix://{self.sockets[keystore]}",
            "--state-dir", str(state_dir or self.workdir / "state" / name),
            "--log", log_level,
        ]  # fmt: skip
        return self.spawn(name, argv, env=env)


@pytest.fixture
def signer_dir() -> Iterator[Path]:
    """Short paths for the signers' sockets (a unix socket path must stay under ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sge-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def start_signer(cli: SignerCli, directory: Path, keystore: str) -> Process:
    role = keystore.removesuffix("_keyfile")
    state = directory / role
    cli.sockets[keystore] = state / "signer.sock"
    return cli.spawn(
        f"signer-{role}",
        [
            *command("polyswarm-signer"),
            "--keyfile", str(keyfile(keystore)), "--password", PASSWORD,
            "--polyswarmd-addr", cli.devnet.addr, "--insecure-transport",
            "--state-dir", str(state),
            "--max-nct-per-tx", "2000", "--max-nct-per-day", "5000",
            "--log", "info",
        ],
    )  # fmt: skip


def audit(directory: Path, role: str) -> list[dict[str, str]]:
    path = directory / role / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_marketplace_signs_through_signers_and_rides_out_a_signer_restart(
    devnet: Devnet, tmp_path: Path, signer_dir: Path
) -> None:
    """Every role signs through its signer; the engine waits out its signer's restart and is paid for both
    bounties; the signer refuses a compromised client's transfer and logs it; nothing is ever refused else."""
    cli = SignerCli(devnet, tmp_path)
    try:
        keystores = ("microengine_keyfile", "ambassador_keyfile", "arbiter_keyfile")
        signers = {k: start_signer(cli, signer_dir, k) for k in keystores}
        for process in signers.values():
            cli.ready(process, SIGNER_READY)

        engine_key = "microengine_keyfile"
        before = devnet.balances(engine_key)
        arbiter = cli.arbiter(testing=0)
        maintain = cli.start(
            "balancemanager", "maintain", str(before.side // NCT), str(REFILL), "--confirmations", "4",
            keystore=engine_key, name="balancemanager-maintain",
        )  # fmt: skip
        engine = cli.engine(engine_key, testing=BOUNTIES)
        for process, marker in ((arbiter, ARBITER_READY), (maintain, MAINTAIN_READY), (engine, ENGINE_READY)):
            cli.ready(process, marker)
        ambassador = cli.ambassador(bounties=BOUNTIES, duration=20)

        # the engine's signer goes away once the engine has asserted, and stays away until the engine has
        # found it gone (its reveal is due meanwhile); then it comes back with the same state directory
        wait_until(
            lambda: any(line.get("function") == "postAssertion" for line in audit(signer_dir, "microengine")),
            timeout=60,
            what="the engine's first assertion to be signed",
            watch=[engine],
        )
        assert signers[engine_key].stop() == 0
        assert not cli.sockets[engine_key].exists(), "the stopped signer left its socket behind"
        wait_until(
            lambda: "asking again" in engine.output(),
            timeout=60,
            what="the engine to notice its signer is gone",
            watch=[engine],
        )
        signers[engine_key] = start_signer(cli, signer_dir, engine_key)
        cli.ready(signers[engine_key], SIGNER_READY)

        engine.expect_exit(0, timeout=150)
        ambassador.expect_exit(0, timeout=60)
        guids = posted_guids(ambassador)
        assert len(guids) == BOUNTIES, guids
        log = engine.output()
        for guid in guids:  # one EICAR bounty, one benign: each asserted, revealed and settled
            for step in ("asserting verdicts=", "revealed verdicts=", "settled"):
                assert f"bounty {guid}: {step}" in log, f"the engine never logged {step!r} for {guid}"
        assert sum(devnet.settlement(g).net(engine_key) for g in guids) > 0
        wait_until(
            lambda: devnet.nct(engine_key) >= before.side,
            timeout=30,
            what="the side balance to be topped up again",
            watch=[maintain],
        )
        assert maintain.stop() == 0
        assert arbiter.stop() == 0

        # what every signer signed, and nothing refused; the engine's log spans both of its signer's runs
        engine_audit = audit(signer_dir, "microengine")
        functions = {line.get("function") for line in engine_audit if line["outcome"] == "signed"}
        assert {"approve", "postAssertion", "revealAssertion", "settleBounty", "transfer"} <= functions, functions
        assert {line.get("function") for line in audit(signer_dir, "ambassador")} >= {"approve", "postBounty"}
        assert "voteOnBounty" in {line.get("function") for line in audit(signer_dir, "arbiter")}
        for role in ("microengine", "ambassador", "arbiter"):
            assert [line for line in audit(signer_dir, role) if line["outcome"] == "refused"] == [], role

        # a compromised client asks the engine's signer directly
        pins = json.loads((signer_dir / "microengine" / "known_contracts.json").read_text())
        side = next(iter(pins["servers"].values()))["side"]
        request = {
            "from": address_of(engine_key),
            "to": side["contracts"]["nectar_token"],
            "gas": hex(100_000),
            "gasPrice": "0x0",
            "nonce": "0x0",
            "data": "0x" + TRANSFER.encode(STRANGER, NCT).hex(),
            "chainId": hex(side["chain_id"]),
        }
        client = JsonRpcClient(parse_endpoint(str(cli.sockets[engine_key])), timeout=10)
        with pytest.raises(RpcFault, match="only to the pinned relay"):
            client.call("account_signTransaction", [request])
        last = audit(signer_dir, "microengine")[-1]
        assert last["outcome"] == "refused" and last["args"]["to"].lower() == STRANGER
    finally:
        cli.cleanup()
