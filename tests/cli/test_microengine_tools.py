"""`microengine new` and `microengine evaluate`, the engine authors' tools, and the engine's start-up order."""

import functools
import json
import socket
import textwrap
import threading
from decimal import Decimal

from polyswarmclient.cli.microengine import MICROENGINE_OPTIONS
from polyswarmclient.samples import eicar_variant
from polyswarmclient.services.evaluation import DEVNET_PARAMETERS
from tests.helpers import KEYFILES, run_module

ENV_VARS = [o.envvar for o in MICROENGINE_OPTIONS if o.envvar]
microengine = functools.partial(run_module, "polyswarmclient.cli.microengine", clear=ENV_VARS)
NCT = Decimal(10**18)

#: Always says benign, bids with its package's strategy at 8x the minimum (an engine-template layout).
WRONG_ENGINE = textwrap.dedent(
    """
    from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
    from polyswarmclient.bidstrategy import BidStrategyBase

    class BidStrategy(BidStrategyBase):
        def __init__(self):
            super().__init__(min_bid_multiplier=8, max_bid_multiplier=8)

    class Scanner(AbstractScanner):
        async def scan_async(self, guid, artifact_type, content, metadata, chain):
            return ScanResult(bit=True, verdict=False, confidence=0.5)
    """
)
#: Refuses to start: a configuration error in setup().
BROKEN_SETUP = textwrap.dedent(
    """
    from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
    from polyswarmclient.errors import ConfigError

    class Scanner(AbstractScanner):
        async def setup(self):
            raise ConfigError("RULES_DIR /nowhere is not a directory")

        async def scan_async(self, guid, artifact_type, content, metadata, chain):
            return ScanResult()
    """
)


def one_error_line(result, code):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in result.stderr, lines
    return lines[0]


def test_help_lists_the_subcommands_and_no_subcommand_still_needs_a_backend():
    """--help names `new` and `evaluate`; without a subcommand the engine runs as before (no backend: exit 2)."""
    helped = microengine("--help")
    assert helped.returncode == 0
    commands = helped.stdout.split("Commands:")[1].split()
    assert "new" in commands and "evaluate" in commands
    assert "no backend" in one_error_line(microengine(), 2)


def test_engine_options_before_a_subcommand_are_refused():
    """`microengine --backend eicar evaluate` says the option would be ignored (exit 2) instead of dropping it."""
    line = one_error_line(microengine("--backend", "eicar", "evaluate"), 2)
    assert "--backend before 'evaluate'" in line


def test_evaluate_the_demo_corpus_with_eicar():
    """The built-in corpus with eicar: every verdict right, precision and recall 1, and what 16 won bounties
    pay under the devnet's parameters, said to be the offline devnet defaults."""
    result = microengine("evaluate", "--backend", "eicar")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "16 samples, 8 malicious, 8 benign" in lines["corpus"]
    assert lines["precision"].split()[1] == "1.000" and lines["recall"].split()[1] == "1.000"
    assert "mean" in lines["scan"] and "p99" in lines["scan"]
    assert "devnet defaults (offline)" in lines["parameters"]
    p = DEVNET_PARAMETERS
    expected = (16 * (p.bounty_amount_minimum - p.assertion_fee)) / NCT
    assert lines["NCT"].split()[1] == f"+{expected.normalize()}"


def test_evaluate_json_of_a_labelled_directory_with_a_package_bid_strategy(tmp_path):
    """--json on a labels.csv corpus: an always-benign engine misses both EICAR files (recall 0, no precision)
    and loses its package strategy's 8x-minimum bids on them; the fees are paid on all three."""
    corpus = tmp_path / "corpus"
    (corpus / "bad").mkdir(parents=True)
    (corpus / "bad" / "one").write_bytes(eicar_variant(1))
    (corpus / "bad" / "two").write_bytes(eicar_variant(2))
    (corpus / "fine.txt").write_bytes(b"hello")
    (corpus / "unlisted.txt").write_bytes(b"not in the labels: ignored")
    (corpus / "labels.csv").write_text("# path,label\nbad/one,malicious\nbad/two,MALICIOUS\n\nfine.txt,benign\n")
    (tmp_path / "wrong_engine.py").write_text(WRONG_ENGINE)
    result = microengine("evaluate", "--json", "--backend", "wrong_engine:Scanner", str(corpus), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["samples"], report["malicious"], report["right"], report["wrong"]) == (3, 2, 1, 2)
    assert report["recall"] == 0.0 and report["precision"] is None
    assert report["bids_by"] == "its package's BidStrategy"
    p = DEVNET_PARAMETERS
    lost = 2 * 8 * p.assertion_bid_minimum
    assert report["nct_wei"]["lost"] == str(lost)
    assert int(report["nct_wei"]["net"]) == p.bounty_amount_minimum - lost - 3 * p.assertion_fee
    assert report["parameters"]["source"] == "devnet defaults (offline)"


def test_an_explicit_bid_strategy_wins_over_the_package_one(tmp_path):
    """With --bid-strategy conservative the same engine loses only minimum bids."""
    (tmp_path / "wrong_engine.py").write_text(WRONG_ENGINE)
    result = microengine(
        "evaluate", "--json", "--bid-strategy", "conservative", "--backend", "wrong_engine:Scanner", cwd=tmp_path
    )
    report = json.loads(result.stdout)
    assert report["bids_by"] == "--bid-strategy conservative"
    assert report["nct_wei"]["lost"] == str(8 * DEVNET_PARAMETERS.assertion_bid_minimum)


def test_evaluate_bad_corpora_are_one_line(tmp_path):
    """A corpus without labels.csv, a bad label and a missing file: exit 2, one line naming what to fix."""
    assert "has no labels.csv" in one_error_line(microengine("evaluate", "--backend", "eicar", str(tmp_path)), 2)
    (tmp_path / "labels.csv").write_text("a.txt,malicious\nb.txt,evil\n")
    (tmp_path / "a.txt").write_bytes(b"a")
    line = one_error_line(microengine("evaluate", "--backend", "eicar", str(tmp_path)), 2)
    assert "labels.csv:2: expected PATH,malicious or PATH,benign" in line
    (tmp_path / "labels.csv").write_text("a.txt,malicious\nmissing.txt,benign\n")
    assert "labels.csv:2: cannot read missing.txt" in one_error_line(
        microengine("evaluate", "--backend", "eicar", str(tmp_path)), 2
    )


def test_new_writes_an_engine_package_and_refuses_bad_names(tmp_path):
    """`new acme-engine` writes pyproject (entry point acme_engine), scanner, devnet test and README; a bad
    name or an existing directory is exit 2."""
    result = microengine("new", "acme-engine", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    root = tmp_path / "acme-engine"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["README.md", "acme_engine/__init__.py", "pyproject.toml", "tests/test_acme_engine.py"]
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points."polyswarmclient.backends"]\nacme_engine = "acme_engine:Scanner"' in pyproject
    assert "--devnet" in (root / "tests/test_acme_engine.py").read_text()
    assert "already exists" in one_error_line(microengine("new", "acme-engine", "--directory", str(tmp_path)), 2)
    assert "engine name 'Bad Name'" in one_error_line(microengine("new", "Bad Name", "--directory", str(tmp_path)), 2)


def test_backend_configuration_error_stops_the_engine_before_polyswarmd_is_contacted(tmp_path):
    """A backend whose setup() fails is exit 2 with its one line, and polyswarmd never sees a connection."""
    (tmp_path / "broken_engine.py").write_text(BROKEN_SETUP)
    accepted = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                accepted.append(conn)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        password = tmp_path / "password"
        password.write_text("password\n")
        result = microengine(
            *("--backend", "broken_engine:Scanner", "--polyswarmd-addr", f"127.0.0.1:{port}", "--insecure-transport"),
            *("--keyfile", str(KEYFILES / "microengine_keyfile"), "--password-file", str(password)),
            *("--state-dir", str(tmp_path / "state")),
            cwd=tmp_path,
        )
        stop.set()
        watcher.join()
    for conn in accepted:
        conn.close()
    assert one_error_line(result, 2) == "Error: RULES_DIR /nowhere is not a directory"
    assert accepted == []
