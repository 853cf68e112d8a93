"""Steps are timed only while someone collects them, and their Server-Timing header reads
back as written."""

from __future__ import annotations

import asyncio

from client.timings import collecting, parse_server_timing, server_timing, step


def test_steps_outside_a_collection_are_not_recorded_anywhere() -> None:
    with step("order"):
        pass
    with collecting() as collected:
        with step("hold"):
            pass
    assert [name for name, _ in collected.steps] == ["hold"]
    assert not collected.shown  # until the caller is one who may see them


async def test_a_step_in_an_awaited_task_is_recorded_and_one_that_raises_too() -> None:
    async def start() -> None:
        with step("start"):
            await asyncio.sleep(0.01)

    with collecting() as collected:
        await asyncio.create_task(start())
        try:
            with step("opening"):
                raise OSError("the store is down")
        except OSError:
            pass
    assert [name for name, _ in collected.steps] == ["start", "opening"]
    assert collected.steps[0][1] >= 9.5  # the sleep, give or take the timer's resolution


def test_the_header_reads_back_as_written_and_ignores_what_is_not_a_duration() -> None:
    header = server_timing([("auth", 0.44), ("start", 21.73)])
    assert header == "auth;dur=0.4, start;dur=21.7"
    assert parse_server_timing(header) == {"auth": 0.4, "start": 21.7}
    assert parse_server_timing('cache;desc="hit", db;dur=abc, x;dur=2') == {"x": 2.0}
    assert parse_server_timing("") == {}
