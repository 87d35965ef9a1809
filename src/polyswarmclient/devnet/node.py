"""The devnet as one object: two chains, the community contracts, funded test accounts, the block ticker,
the relay daemon, the websocket hubs and the HTTP server.

    async with Devnet(DevnetConfig(port=0, block_time=0.2)) as devnet:
        print(devnet.url)            # http://127.0.0.1:<port>
        ...

``start()`` returns once the server answers; ``stop()`` cancels every background task and closes the
server. The background tasks (per-chain watchers, hubs, ticker, relay) run in one ``TaskGroup`` owned by
a supervisor task, so one failing task stops them all and the failure is logged, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from polyswarmclient.devnet.artifacts import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_STORE_SIZE, ArtifactStore
from polyswarmclient.devnet.chainnode import ChainNode
from polyswarmclient.devnet.http import ServerContext
from polyswarmclient.devnet.relay import RelayDaemon
from polyswarmclient.devnet.routes_events import EventHub
from polyswarmclient.devnet.server import create_app
from polyswarmclient.errors import ConfigError, PolyswarmError

log = logging.getLogger(__name__)

ETHER = 10**18
NCT = 10**18
PACKAGED_KEYFILES = Path(__file__).resolve().parent / "keyfiles"
ARBITER_KEYFILE = "arbiter_keyfile"
#: Where ``--chains-on`` puts the two chains: in-process py-evm, or two anvil nodes the devnet starts.
CHAIN_BACKENDS = ("embedded", "anvil")


def default_keyfiles_dir(cwd: Path | None = None) -> Path:
    """``./keyfiles-testing`` when it exists (a repository checkout), else the copy inside the package."""
    local = (cwd or Path.cwd()) / "keyfiles-testing"
    if local.is_dir() and any(local.glob("*_keyfile")):
        return local
    return PACKAGED_KEYFILES


def keystore_addresses(directory: Path) -> dict[str, str]:
    """``{file name: checksummed address}`` of every geth keystore in ``directory`` (no password needed)."""
    from eth_utils import is_address, to_checksum_address

    out: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix in (".md", ".txt"):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        address = data.get("address") if isinstance(data, dict) else None
        if isinstance(address, str):
            address = address if address.startswith("0x") else "0x" + address
            if is_address(address):
                out[path.name] = to_checksum_address(address)
    return out


@dataclass(frozen=True)
class DevnetConfig:
    """Everything ``polyswarmd-devnet`` can be told. ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 31337
    block_time: float = 1.0
    relay_confirmations: int = 3
    api_keys: tuple[str, ...] = ()
    keyfiles_dir: Path | None = None
    extra_accounts: tuple[str, ...] = ()
    home_rpc: str | None = None
    side_rpc: str | None = None
    #: A community name: the ``home_rpc`` node is shared with other devnets; this one uses the NectarToken
    #: there and deploys its own home ERC20Relay and relay verifier (``deploy_community(shared_home=...)``).
    shared_home: str | None = None
    #: ``embedded`` (py-evm in this process) or ``anvil`` (two anvil nodes started and stopped with the devnet).
    chains_on: str = "embedded"
    #: The anvil binary for ``chains_on="anvil"``; None: ``$DEVNET_ANVIL``, PATH, then ``./.tools/npm``.
    anvil: Path | None = None
    home_chain_id: int = 1337
    side_chain_id: int = 1338
    community: str = "devnet"
    fund_eth: int = 100 * ETHER
    fund_nct_home: int = 1_000_000 * NCT
    fund_nct_side: int = 10_000 * NCT
    max_artifact_size: int = DEFAULT_MAX_FILE_SIZE
    artifact_limit: int = 256
    receipt_timeout_side: float = 10.0
    receipt_timeout_home: float = 60.0
    poll_interval: float = 0.5
    #: Seconds an embedded chain gathers transactions before mining them into one block (0: mine as soon
    #: as the chain is free; what arrives while a block is being mined still goes into the next one).
    batch_window: float = 0.005
    #: Blocks each embedded chain keeps receipts, logs and headers for (older state is pruned, see
    #: ``EmbeddedChain.prune``); artifacts used within that many blocks are never evicted. At least
    #: ``minimum_retention()``: twice a bounty's longest life.
    retain_blocks: int = 1_000
    #: Where each embedded chain keeps its state on disk (a sqlite file in a private subdirectory, unlinked
    #: at once, see ``statestore``); None: the system's temporary directory.
    state_dir: Path | None = None
    #: Bytes of file content the artifact store holds before it evicts the least recently used.
    artifact_store_size: int = DEFAULT_MAX_STORE_SIZE
    #: ArbiterStaking's MINIMUM_STAKE. The contracts' default is 1.6's 10,000,000 NCT; the devnet lowers it
    #: to 1,000 NCT because it gives each keystore 10,000 NCT on the sidechain (``fund_nct_side``), so that
    #: ``arbiter_keyfile`` can stake and vote. ``community_overrides["minimum_stake"]`` wins over it.
    minimum_stake: int = 1_000 * NCT
    #: Build transactions as polyswarmd 2.2.0 does, with eth-abi 1.x: an empty ``string``/``bytes`` argument
    #: (bounty or reveal metadata) is followed by one extra zero word. Clients must accept both forms.
    eth_abi_v1: bool = False
    #: When set, write polyswarmd's configuration for this devnet's chains there on start (see
    #: :mod:`polyswarmclient.devnet.polyswarmd_config`).
    export_polyswarmd_config: Path | None = None
    #: ``CommunityConfig`` field overrides (``assertion_reveal_window``, ``arbiter_vote_window``, fees…)
    community_overrides: dict[str, Any] = field(default_factory=dict)


def minimum_retention(config: DevnetConfig) -> int:
    """The fewest blocks ``retain_blocks`` may be: twice a bounty's longest life (the longest duration plus
    the reveal and vote windows), so that nothing an open bounty still needs is forgotten."""
    from polyswarmclient.devnet.deploy import CommunityConfig

    community = replace(CommunityConfig(), **config.community_overrides)
    life = community.max_duration + community.assertion_reveal_window + community.arbiter_vote_window
    return 2 * (life + config.relay_confirmations)


class Devnet:
    """A running devnet. See the module docstring."""

    def __init__(self, config: DevnetConfig | None = None) -> None:
        self.config = config or DevnetConfig()
        self.artifacts = ArtifactStore(
            max_file_size=self.config.max_artifact_size,
            max_files=self.config.artifact_limit,
            max_store_size=self.config.artifact_store_size,
            min_age_blocks=self.config.retain_blocks,
        )
        self.home: ChainNode
        self.side: ChainNode
        self.community: Any = None
        self.accounts: dict[str, str] = {}
        self.arbiter: str | None = None
        self.relay: RelayDaemon | None = None
        self.context: ServerContext | None = None
        self.port: int = self.config.port
        self._runner: web.AppRunner | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._failure_told = False
        #: JSON-RPC URL of each chain on a node (``--home-rpc``/``--side-rpc`` or a started anvil), else None.
        self.rpc_urls: dict[str, str | None] = {"home": self.config.home_rpc, "side": self.config.side_rpc}
        self._anvils: list[Any] = []
        self._chains: list[Any] = []
        self._mined: list[ChainNode] = []

    # --- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> Devnet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the chains, deploy, serve; on any failure, stop what was started and re-raise."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        started = time.monotonic()
        cfg = self.config
        if cfg.chains_on not in CHAIN_BACKENDS:
            raise ConfigError(f"--chains-on {cfg.chains_on!r}: choose one of {', '.join(CHAIN_BACKENDS)}")
        if cfg.chains_on == "anvil":
            if cfg.home_rpc or cfg.side_rpc:
                raise ConfigError(
                    "--chains-on anvil starts its own nodes; drop --home-rpc/--side-rpc, or use --chains-on embedded"
                )
            # on this thread, not a worker's: anvil's PR_SET_PDEATHSIG follows the thread that started it
            self._start_anvils()
        if cfg.shared_home and not cfg.home_rpc:
            raise ConfigError(
                f"--shared-home {cfg.shared_home} shares a homechain node with other devnets; give that node "
                "with --home-rpc"
            )
        home_chain, side_chain = await asyncio.to_thread(self._make_chains)
        try:
            self.community = await asyncio.to_thread(self._deploy_and_fund, home_chain, side_chain)
        except Exception as exc:
            from polyswarmclient.devnet.deploy import ContractsMismatch

            if not isinstance(exc, ContractsMismatch):
                raise
            chain = "home" if exc.chain_id == home_chain.chain_id else "side"
            where = f"--{chain}-rpc {self.rpc_urls[chain]}" if self.rpc_urls[chain] else "the node"
            raise ConfigError(f"{where}: {exc}; give a fresh node, or the settings it was deployed with") from None
        self.home = ChainNode(
            "home", home_chain, self.community.home, poll_interval=cfg.poll_interval, batch_window=cfg.batch_window
        )
        self.side = ChainNode(
            "side", side_chain, self.community.side, poll_interval=cfg.poll_interval, batch_window=cfg.batch_window
        )
        mined = await asyncio.gather(*(asyncio.to_thread(self._mines, n.chain, n.name) for n in (self.home, self.side)))
        self._mined = [n for n, yes in zip((self.home, self.side), mined, strict=True) if yes]
        self.artifacts.clock = lambda: (self.home.head, self.side.head)
        hubs = {"home": EventHub(self.home, self.artifacts), "side": EventHub(self.side, self.artifacts)}
        self.context = ServerContext(
            home=self.home,
            side=self.side,
            artifacts=self.artifacts,
            community=cfg.community,
            api_keys=frozenset(cfg.api_keys),
            hubs=hubs,
            max_artifact_size=cfg.max_artifact_size,
            receipt_timeouts={"home": cfg.receipt_timeout_home, "side": cfg.receipt_timeout_side},
            eth_abi_v1=cfg.eth_abi_v1,
        )
        from polyswarmclient.devnet.deploy import relay_key

        self.relay = RelayDaemon(
            self.home,
            self.side,
            relay_key(cfg.shared_home),
            confirmations=cfg.relay_confirmations,
            ignore_senders=tuple(a for a in (getattr(self.community, "deployer", ""),) if a),
        )
        ready = asyncio.Event()
        self._supervisor = asyncio.create_task(self._supervise(hubs, ready), name="devnet-supervisor")
        await ready.wait()
        if cfg.export_polyswarmd_config is not None:
            await asyncio.to_thread(self.export_polyswarmd_config, cfg.export_polyswarmd_config)
        app = create_app(self.context)
        app.on_shutdown.append(self._close_sockets)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("devnet ready on %s in %.1f s", self.url, time.monotonic() - started)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._supervisor is not None:
            self._supervisor.cancel()
            # a failure ``failed()`` already handed out is not raised again here
            with contextlib.suppress(BaseException if self._failure_told else asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        for node in (getattr(self, "home", None), getattr(self, "side", None)):
            if node is not None:
                node.close()
        chains, self._chains = self._chains, []
        anvils, self._anvils = self._anvils, []
        for chain in chains:
            close = getattr(chain, "close", None)
            if close is not None:
                await asyncio.to_thread(close)
        for anvil in anvils:
            await asyncio.to_thread(anvil.stop)

    async def _close_sockets(self, app: web.Application) -> None:
        if self.context is not None:
            for hub in self.context.hubs.values():
                hub.close_all()

    async def _supervise(self, hubs: dict[str, EventHub], ready: asyncio.Event) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.home.watch(), name="watch-home")
                group.create_task(self.side.watch(), name="watch-side")
                for name, hub in hubs.items():
                    group.create_task(hub.run(), name=f"hub-{name}")
                assert self.relay is not None
                group.create_task(self.relay.run(), name="relay")
                group.create_task(self._tick(), name="ticker")
                if self._anvils:
                    group.create_task(self._watch_anvils(), name="anvils")
                await asyncio.sleep(0)  # let the watchers create their conditions
                ready.set()
        except asyncio.CancelledError:
            raise
        except BaseExceptionGroup as group:
            if all(isinstance(exc, PolyswarmError) for exc in group.exceptions):
                raise  # said in one line by whoever waits on failed() (the CLI), no traceback
            log.exception("devnet background tasks failed")
            raise
        except BaseException:
            log.exception("devnet background tasks failed")
            raise

    async def _watch_anvils(self, interval: float = 0.5) -> None:
        """Fail the background tasks (and so the devnet, see ``failed``) when one of its anvil nodes exits."""
        while True:
            await asyncio.sleep(interval)
            for name, anvil in zip(("home", "side"), self._anvils, strict=True):
                code = anvil.process.poll() if anvil.process is not None else None
                if code is not None:
                    raise PolyswarmError(
                        f"the {name}chain's anvil ({anvil.url}) exited with code {code}; the devnet cannot go on"
                    )

    async def failed(self) -> BaseException:
        """Wait until the background tasks fail and return why (waits forever while they run well)."""
        assert self._supervisor is not None, "the devnet is not started"
        try:
            await asyncio.shield(self._supervisor)
        except BaseExceptionGroup as group:
            self._failure_told = True
            return group.exceptions[0]
        except Exception as exc:
            self._failure_told = True
            return exc
        return RuntimeError("the devnet's background tasks ended")

    async def _tick(self) -> None:
        """Wall-clock blocks: an empty block every ``block_time`` on each chain the devnet mines.

        That is every embedded chain, every anvil it started, and every ``--home-rpc``/``--side-rpc`` node
        that answered ``evm_mine`` at start (a dev node); other nodes make their own blocks.
        """
        nodes = self._mined
        if not nodes or self.config.block_time <= 0:
            return
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.config.block_time
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + self.config.block_time, loop.time())
            for node in nodes:
                try:
                    await node.mine_block()
                except Exception:
                    log.exception("%s chain: mining a block failed", node.name)

    # --- setup (runs in a worker thread) -------------------------------------------------------------

    def _start_anvils(self) -> None:
        from polyswarmclient.devnet.anvil import AnvilError, AnvilMissing, start_anvils

        try:
            chain_ids = (self.config.home_chain_id, self.config.side_chain_id)
            self._anvils = start_anvils(chain_ids, binary=self.config.anvil, retain_blocks=self.config.retain_blocks)
        except AnvilMissing as exc:
            raise ConfigError(str(exc)) from None
        except AnvilError as exc:
            raise PolyswarmError(str(exc)) from None
        self.rpc_urls = {"home": self._anvils[0].url, "side": self._anvils[1].url}

    def _make_chains(self) -> tuple[Any, Any]:
        cfg = self.config
        if self.rpc_urls["home"] and self.rpc_urls["home"] == self.rpc_urls["side"]:
            raise ConfigError(f"--home-rpc and --side-rpc are the same node ({self.rpc_urls['home']}); give two nodes")

        def make(name: str, chain_id: int) -> Any:
            url = self.rpc_urls[name]
            if url:
                from polyswarmclient.devnet.web3chain import MinedWeb3Chain, NodeUnreachable, Web3Chain

                timeout = getattr(cfg, f"receipt_timeout_{name}")
                try:
                    if self._anvils:  # ours: the devnet mines them, batching as on the embedded chain
                        from polyswarmclient.devnet.anvil import TX_GAS

                        chain: Web3Chain = MinedWeb3Chain(url, tx_gas=TX_GAS, receipt_timeout=timeout)
                    else:
                        chain = Web3Chain(url, receipt_timeout=timeout)
                except NodeUnreachable as exc:
                    raise ConfigError(f"--{name}-rpc {url}: {exc.message}; give the URL of a running node") from None
                self._chains.append(chain)
                if chain.chain_id != chain_id:
                    raise ConfigError(
                        f"--{name}-rpc {url}: the node's chain id is {chain.chain_id}, "
                        f"the {name}chain's is {chain_id}; "
                        f"start the node with chain id {chain_id} (anvil --chain-id {chain_id})"
                    )
                return chain
            from polyswarmclient.devnet.evm import EmbeddedChain

            try:
                embedded = EmbeddedChain(chain_id, retain_blocks=cfg.retain_blocks, state_dir=cfg.state_dir)
            except OSError as exc:
                where = cfg.state_dir or "the temporary directory"
                raise ConfigError(
                    f"--state-dir {where}: cannot keep the chain state there ({exc.strerror or exc}); "
                    "give a writable directory (DEVNET_STATE_DIR)"
                ) from None
            self._chains.append(embedded)
            return embedded

        return make("home", cfg.home_chain_id), make("side", cfg.side_chain_id)

    def _mines(self, chain: Any, name: str) -> bool:
        """Whether the ticker mines this chain: embedded and started anvils always, a given node if it can."""
        if not self.config.home_rpc and name == "home" or not self.config.side_rpc and name == "side":
            return True
        try:
            chain.mine_block()
        except Exception:
            log.info("%s chain: the node does not answer evm_mine; it makes its own blocks", name)
            return False
        return True

    def community_config(self) -> Any:
        from polyswarmclient.devnet.deploy import CommunityConfig

        known = {f.name for f in fields(CommunityConfig)}
        unknown = set(self.config.community_overrides) - known
        if unknown:
            raise ValueError(f"unknown community settings: {', '.join(sorted(unknown))}")
        settings = {"minimum_stake": self.config.minimum_stake, **self.config.community_overrides}
        return replace(CommunityConfig(), **settings)

    def _deploy_and_fund(self, home_chain: Any, side_chain: Any) -> Any:
        from polyswarmclient.devnet.deploy import deploy_community, fund_account, register_arbiter

        cfg = self.config
        community = deploy_community(home_chain, side_chain, self.community_config(), shared_home=cfg.shared_home)
        directory = cfg.keyfiles_dir or default_keyfiles_dir()
        self.accounts = keystore_addresses(directory) if directory.is_dir() else {}
        for i, extra in enumerate(cfg.extra_accounts):
            self.accounts[f"extra{i}"] = extra
        for address in self.accounts.values():
            fund_account(
                home_chain,
                side_chain,
                community,
                address,
                eth=cfg.fund_eth,
                nct_home=cfg.fund_nct_home,
                nct_side=cfg.fund_nct_side,
            )
        self.arbiter = self.accounts.get(ARBITER_KEYFILE)
        if self.arbiter:
            register_arbiter(side_chain, community.side, self.arbiter, side_chain.block_number())
        return community

    # --- conveniences for tests and the CLI ----------------------------------------------------------

    def export_polyswarmd_config(self, directory: Path) -> list[Path]:
        """Write polyswarmd's chain directory for this devnet (:mod:`.polyswarmd_config`) into ``directory``."""
        from polyswarmclient.devnet.polyswarmd_config import ChainConfig, unreachable_chains, write_config

        def chain(node: ChainNode, rpc: str | None) -> ChainConfig:
            a = node.addresses
            addresses = {
                "nectar_token": a.nectar_token,
                "bounty_registry": a.bounty_registry,
                "erc20_relay": a.erc20_relay,
                "arbiter_staking": a.arbiter_staking,
            }
            return ChainConfig(node.name, rpc, node.chain_id, free=True, addresses=addresses)

        home, side = chain(self.home, self.rpc_urls["home"]), chain(self.side, self.rpc_urls["side"])
        written = write_config(directory, home, side)
        for name in unreachable_chains(home, side):
            log.warning(
                "polyswarmd config: the %schain is embedded and has no JSON-RPC URL (eth_uri is null); "
                "give --%s-rpc a node for polyswarmd to reach it",
                name,
                name,
            )
        return written

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def ws_url(self, chain: str = "side") -> str:
        return f"ws://{self.config.host}:{self.port}/events?chain={chain}"

    def node(self, chain: str) -> ChainNode:
        return self.home if chain == "home" else self.side

    async def mine(self, chain: str = "side", blocks: int = 1) -> int:
        """Mine ``blocks`` empty blocks now; returns the new head."""
        node = self.node(chain)
        head = 0
        for _ in range(blocks):
            head = await node.mine_block()
        return int(head)

    async def fund(self, address: str, *, eth: int = 0, nct_home: int = 0, nct_side: int = 0) -> None:
        from polyswarmclient.devnet.deploy import fund_account

        def work() -> None:
            fund_account(
                self.home.chain,
                self.side.chain,
                self.community,
                address,
                eth=eth,
                nct_home=nct_home,
                nct_side=nct_side,
            )

        await asyncio.to_thread(work)  # the chains lock themselves
        self.home.kick()
        self.side.kick()

    def describe(self) -> str:
        """The start-up banner: address, chain ids and contract addresses."""
        lines = [
            f"polyswarmd-devnet listening on {self.url}",
            f"  websocket      {self.ws_url('side')}  (and ?chain=home)",
            f"  community      {self.config.community}",
        ]
        for node in (self.home, self.side):
            a = node.addresses
            url = self.rpc_urls[node.name]
            where = f"on {url}" + (" (anvil)" if self._anvils else "") if url else "embedded"
            lines += [
                f"  {node.name}chain      chain id {node.chain_id}, block {node.head}, {where}",
                f"    NectarToken    {a.nectar_token}",
                f"    BountyRegistry {a.bounty_registry}",
                f"    ERC20Relay     {a.erc20_relay}",
                f"    ArbiterStaking {a.arbiter_staking}",
            ]
        lines.append(
            f"  relay          verifier {self.community.relay_verifier}, "
            f"{self.config.relay_confirmations} confirmations"
        )
        lines.append(f"  block time     {self.config.block_time} s")
        if self.config.export_polyswarmd_config is not None:
            lines.append(f"  polyswarmd     configuration in {self.config.export_polyswarmd_config}")
        lines.append(f"  api keys       {'enforced' if self.config.api_keys else 'not required'}")
        if self.arbiter:
            lines.append(f"  arbiter        {self.arbiter}")
        lines.append(f"  funded         {len(self.accounts)} accounts")
        for name, address in self.accounts.items():
            lines.append(f"    {address}  {name}")
        return "\n".join(lines)
