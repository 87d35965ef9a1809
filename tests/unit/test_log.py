"""Log set-up: polyswarm-client's LOG_FORMAT=datadog and CLIENT_LOG_LEVEL, JSON lines with guid/chain/block."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from polyswarmclient.log import LOGGER_NAMES, JsonFormatter, fields, set_fields, setup_logging
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.supervision import Supervisor
from polyswarmclient.wire.events import Block, Event, QuorumReached


@pytest.fixture(autouse=True)
def restore_loggers() -> Iterator[None]:
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in LOGGER_NAMES}
    saved_propagate = {name: logging.getLogger(name).propagate for name in LOGGER_NAMES}
    yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = handlers
        logger.propagate = saved_propagate[name]


def _line(logger: str = "microengine", message: str = "hello") -> dict[str, object]:
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, message, None, None)
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def test_datadog_is_accepted_as_json() -> None:
    """LOG_FORMAT=datadog, as polyswarm-client deployments set it, writes JSON lines."""
    setup_logging("INFO", "datadog")
    handler = logging.getLogger("microengine").handlers[-1]
    assert isinstance(handler.formatter, JsonFormatter)


def test_client_log_level_sets_only_the_library_s_loggers() -> None:
    """CLIENT_LOG_LEVEL quiets (or opens up) polyswarmclient.* while --log keeps the command's own level."""
    setup_logging("INFO", "text", "ERROR")
    assert logging.getLogger("microengine").level == logging.INFO
    assert logging.getLogger("polyswarmclient").level == logging.ERROR
    assert not logging.getLogger("polyswarmclient.transport.stream").isEnabledFor(logging.WARNING)
    setup_logging("WARNING", "text")  # not given: the library follows --log, as before
    assert logging.getLogger("polyswarmclient").level == logging.WARNING


def test_json_lines_carry_the_fields_of_the_work_under_way() -> None:
    """Inside ``fields(...)`` every JSON line says which bounty, chain and block it is about; outside, none."""
    assert "guid" not in _line()
    with fields(guid="g-1", chain="side"):
        with fields(block=12, guid=None):
            line = _line()
    assert (line["guid"], line["chain"], line["block"]) == ("g-1", "side", 12)
    assert "chain" not in _line()


async def test_a_task_keeps_the_fields_it_set_and_its_children_inherit_them() -> None:
    """set_fields in a bounty's task tags its lines and those of the tasks it starts, not its siblings'."""
    seen: dict[str, dict[str, object]] = {}

    async def child() -> None:
        seen["child"] = _line()

    async def bounty() -> None:
        set_fields(guid="g-2", chain="home")
        await asyncio.create_task(child())
        seen["bounty"] = _line()

    async def sibling() -> None:
        await asyncio.sleep(0)
        seen["sibling"] = _line()

    await asyncio.gather(bounty(), sibling())
    assert seen["bounty"]["guid"] == seen["child"]["guid"] == "g-2"
    assert "guid" not in seen["sibling"]


async def test_the_supervisor_tags_each_event_s_handling_with_chain_block_and_guid() -> None:
    """A block's handling logs its chain and number, a bounty event's its guid."""
    lines: list[dict[str, object]] = []

    class Client:
        def events(self, chain: str) -> AsyncIterator[Event]:
            async def stream() -> AsyncIterator[Event]:
                yield Block(number=5, chain=chain)
                yield QuorumReached(bounty_guid="g-3", chain=chain)

            return stream()

    shutdown = Shutdown(grace=1)

    def dispatch(event: Event) -> None:
        lines.append(_line())
        if len(lines) == 2:
            shutdown.request()

    async with Supervisor(logging.getLogger("tests.log"), shutdown) as supervisor:
        supervisor.consume(Client(), ["side"], dispatch)
        await supervisor.serve()
    assert (lines[0]["chain"], lines[0]["block"]) == ("side", 5)
    assert (lines[1]["chain"], lines[1]["guid"]) == ("side", "g-3")
    assert "block" not in lines[1]
