"""A marketplace on a devnet that builds transactions as polyswarmd 2.2.0 does (``--eth-abi-v1``).

polyswarmd 2.2.0 encodes an empty ``string`` with one extra zero word (eth-abi 1.x). Here the ambassador
posts without metadata and one engine reveals without metadata, so every such transaction reaches our
CLIs in that form: they must verify it, sign it and finish the bounties exactly as on the canonical devnet.
"""

from __future__ import annotations

from tests.e2e.harness import ENGINE_READY, Cli, Devnet, DevnetOptions, Process, posted_guids

DEVNET_OPTIONS = DevnetOptions(eth_abi_v1=True)
BOUNTIES = 2
PLAIN = "tests.fixtures.plain_engine:PlainScanner"


def test_marketplace_runs_on_eth_abi_v1_transactions(devnet: Devnet, arbiter: Process, cli: Cli) -> None:
    """Bounties without metadata and reveals without metadata are signed and settled; both right engines earn."""
    engines = {
        "microengine_keyfile": cli.engine("microengine_keyfile", testing=BOUNTIES, name="engine-eicar"),
        "spare1_keyfile": cli.engine("spare1_keyfile", backend=PLAIN, testing=BOUNTIES, name="engine-plain"),
    }
    for engine in engines.values():
        cli.ready(engine, ENGINE_READY)
    ambassador = cli.start(
        "ambassador", "--testing", str(BOUNTIES), "--duration", "20", "--submission-rate", "0.5", "--no-metadata",
        keystore="ambassador_keyfile",
    )  # fmt: skip

    for engine in engines.values():
        engine.expect_exit(0, timeout=150)
    ambassador.expect_exit(0, timeout=60)
    guids = posted_guids(ambassador)
    assert len(guids) == BOUNTIES, guids

    for guid in guids:
        assert devnet.bounty(guid)["metadata"] is None  # posted with an empty metadata string
        plain = devnet.assertion_of(guid, "spare1_keyfile")
        assert plain["nonce"] != "0" and plain["metadata"] == "", plain
        settlement = devnet.settlement(guid)
        for keystore in engines:
            assert settlement.net(keystore) > 0, (guid, keystore)
    for engine in engines.values():
        assert "refusing to sign" not in engine.output()
