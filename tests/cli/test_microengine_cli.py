"""The `microengine` command as a user runs it: options, env vars, and exit codes with one-line errors."""

import functools

import pytest

from polyswarmclient.cli.microengine import MICROENGINE_OPTIONS, cli
from tests.helpers import KEYFILES, cli_invoker, run_module, unused_port

KEYFILE = KEYFILES / "microengine_keyfile"
ENV_VARS = [o.envvar for o in MICROENGINE_OPTIONS if o.envvar]

#: `python -m polyswarmclient.cli.microengine ARGS` with no TTY and none of the engine's env vars set.
microengine = functools.partial(run_module, "polyswarmclient.cli.microengine", clear=ENV_VARS)
#: The click command in this process (fast; for option-parsing behaviour).
in_process = cli_invoker(cli, "microengine", clear=ENV_VARS)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line_error(result, code, *fragments):
    lines = error_lines(result)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error:")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_every_option_with_its_env_var():
    """--help shows every option and, for each, the environment variable that sets it too."""
    result = microengine("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in MICROENGINE_OPTIONS:
        assert option.flag in text
        if option.envvar:
            assert f"env var: {option.envvar}" in text
    for required in (
        "LOG_LEVEL",
        "POLYSWARMD_ADDR",
        "KEYFILE",
        "PASSWORD",
        "API_KEY",
        "BACKEND",
        "CHAINS",
        "TESTING",
    ):
        assert f"env var: {required}" in text


def test_list_backends():
    """--list-backends prints the installed slugs and exits 0 without needing a keyfile."""
    result = microengine("--list-backends")
    assert result.returncode == 0
    assert {"eicar", "scratch"} <= set(result.stdout.split())


def test_bad_backend_slug_suggests_a_fix():
    """A mistyped --backend gets one line with 'did you mean' and exit 2, before any keyfile is opened."""
    result = microengine("--backend", "eicr")
    assert_one_line_error(result, 2, "Did you mean 'eicar'?", "scratch")


def test_backend_from_env_var():
    """BACKEND in the environment is honoured (and a bad one fails the same way)."""
    result = in_process(env={"BACKEND": "scrach"})
    assert result.exit_code == 2 and "Did you mean 'scratch'?" in result.output


def test_no_backend_is_a_usage_error():
    """Running without --backend says how to pick one (exit 2)."""
    assert_one_line_error(microengine(), 2, "--backend")


def test_wrong_password(tmp_path):
    """A wrong keystore password is one line and exit 2."""
    result = microengine("--backend", "eicar", "--keyfile", str(KEYFILE), "--password", "not-the-password")
    assert_one_line_error(result, 2, "password")


def test_missing_keyfile(tmp_path):
    """A keyfile path that does not exist is one line and exit 2."""
    result = microengine("--backend", "eicar", "--keyfile", str(tmp_path / "nope"), "--password", "password")
    assert_one_line_error(result, 2, "does not exist")


def test_corrupt_keyfile(tmp_path):
    """A keyfile that is not a keystore is one line and exit 2."""
    bad = tmp_path / "keyfile"
    bad.write_text('{"crypto": {"cipher": "broken"}')
    result = microengine("--backend", "eicar", "--keyfile", str(bad), "--password", "password")
    assert_one_line_error(result, 2, "keyfile")


def test_no_password_without_tty_never_hangs():
    """With no password and no terminal the command explains how to pass one, exit 2, instead of hanging."""
    result = microengine("--backend", "eicar", "--keyfile", str(KEYFILE), timeout=30)
    assert_one_line_error(result, 2, "--password-file")


def test_api_key_over_http_is_refused(tmp_path):
    """An API key with plain http is refused (exit 2) unless --allow-key-over-http is given."""
    result = microengine(
        "--backend",
        "eicar",
        "--keyfile",
        str(KEYFILE),
        "--password",
        "password",
        "--polyswarmd-addr",
        "localhost:31337",
        "--insecure-transport",
        "--state-dir",
        str(tmp_path),
        env={"API_KEY": "0123456789abcdef0123456789abcdef"},
    )
    assert_one_line_error(result, 2, "--allow-key-over-http")


def test_invalid_chain_is_a_usage_error():
    """--chains accepts only home and side, checked up front (exit 2)."""
    result = in_process("--chains", "main", "--backend", "eicar")
    assert result.exit_code == 2 and "'main' is not one of" in result.output
    from_env = in_process("--backend", "eicar", env={"CHAINS": "side moon"})
    assert from_env.exit_code == 2 and "'moon' is not one of" in from_env.output


def test_bad_filter_operator_is_a_usage_error():
    """A --filter with an unknown operator is rejected up front (exit 2); word operators are accepted."""
    bad = in_process("--backend", "eicar", "--filter", "accept", "filesize", "~", "10")
    assert bad.exit_code == 2 and "--filter" in bad.output
    good = in_process("--backend", "eicar", "--filter", "accept", "filesize", "gte", "10")
    assert good.exit_code == 2 and "no keyfile" in good.output  # got past option and filter parsing
    regex = in_process("--backend", "eicar", "--filter", "accept", "filename", "regex", "(")
    assert regex.exit_code == 2 and "bad regular expression" in regex.output


def engine_against(addr, tmp_path, timeout=60):
    """The eicar engine with the test keystore (password from a file), pointed at ``addr`` over plain http."""
    password = tmp_path / "password"
    password.write_text("password\n")
    return microengine(
        "--backend",
        "eicar",
        "--keyfile",
        str(KEYFILE),
        "--password-file",
        str(password),
        "--polyswarmd-addr",
        addr,
        "--insecure-transport",
        "--state-dir",
        str(tmp_path / "state"),
        timeout=timeout,
    )


def test_unreachable_polyswarmd(tmp_path):
    """polyswarmd not listening: one error line naming the address, exit 1, no traceback."""
    port = unused_port()
    result = engine_against(f"127.0.0.1:{port}", tmp_path, timeout=120)
    assert_one_line_error(result, 1, f"127.0.0.1:{port}")


def test_malformed_replies_are_one_line(tmp_path):
    """A server answering HTML where polyswarmd answers JSON: one error line naming the request, exit 1."""
    import http.server
    import threading

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = engine_against(f"127.0.0.1:{server.server_address[1]}", tmp_path)
    finally:
        server.shutdown()
    assert_one_line_error(result, 1, "GET /status", "not JSON")


@pytest.mark.parametrize("flag", ["--testing", "--max-concurrent-scans"])
def test_negative_counts_are_usage_errors(flag):
    """Counts must be sensible numbers; a negative one is a usage error (exit 2)."""
    assert in_process(flag, "-1", "--backend", "eicar").exit_code == 2
