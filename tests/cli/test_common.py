"""The shared CLI plumbing: passwords and signers."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyswarmclient.cli.common import open_signer, read_password
from polyswarmclient.errors import ConfigError, KeyfileError
from polyswarmclient.log import redact

KEYFILE = Path(__file__).resolve().parents[2] / "keyfiles-testing" / "microengine_keyfile"


def test_password_file_first_line_is_used(tmp_path: Path) -> None:
    """--password-file reads the first line, without its newline."""
    secret = tmp_path / "pw"
    secret.write_text("password\nignored\n")
    signer = open_signer(KEYFILE, None, secret)
    assert signer.address == "0xd595c0c90498619DaeAd4Fb67886A1f06c1B3c17"


def test_both_password_sources_is_a_config_error(tmp_path: Path) -> None:
    """Giving --password and --password-file together is refused rather than guessing."""
    with pytest.raises(ConfigError, match="not both"):
        read_password("a", tmp_path / "pw", KEYFILE)


def test_a_wrong_password_reads_clearly_and_is_not_redacted_into_nonsense() -> None:
    """A wrong guess like 'wrong' leaves the message intact ('wrong password for keyfile ...')."""
    with pytest.raises(KeyfileError) as info:
        open_signer(KEYFILE, "wrong", None)
    assert redact(str(info.value)).startswith("wrong password for keyfile")


def test_missing_keyfile_names_the_flag(tmp_path: Path) -> None:
    """A missing keyfile says which flag and env var to fix."""
    with pytest.raises(KeyfileError, match="--keyfile"):
        open_signer(tmp_path / "missing", "password", None)


def test_missing_devnet_extra_is_a_config_error_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the devnet extra, devnet commands say which pip install fixes it (exit 2), not an ImportError."""
    import sys

    from polyswarmclient.cli.common import require_devnet_extra

    monkeypatch.setitem(sys.modules, "polyswarmclient.devnet.evm", None)
    hint = r"polyswarmd-devnet needs the devnet extra .*pip install 'polyswarm-kit\[devnet\]'"
    with pytest.raises(ConfigError, match=hint):
        require_devnet_extra("polyswarmd-devnet")


def test_bad_max_tx_fee_is_a_config_error() -> None:
    """--max-tx-fee must be a non-negative decimal amount of ether."""
    from polyswarmclient.cli.common import connect

    options = {
        "api_key": None,
        "max_tx_fee": "lots",
        "keyfile": KEYFILE,
        "password": "password",
        "password_file": None,
        "polyswarmd_addr": "localhost:31337",
        "insecure_transport": True,
        "allow_key_over_http": False,
        "state_dir": "state",
    }
    with pytest.raises(ConfigError, match="--max-tx-fee"):
        connect(options)
    options["max_tx_fee"] = "0.2"
    assert connect(options).address == "0xd595c0c90498619DaeAd4Fb67886A1f06c1B3c17"
