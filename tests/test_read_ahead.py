"""ReadAhead: the video reader thread that runs decode + detect ahead of the network."""

import threading
import time

import pytest

from core.engine.read_ahead import ReadAhead


def test_items_arrive_in_order_and_all_of_them():
    with ReadAhead(iter(range(100)), depth=3) as ahead:
        assert list(ahead) == list(range(100))


def test_a_producer_error_is_raised_in_the_loop_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("frame 3 is broken")

    seen = []
    with pytest.raises(ValueError, match="frame 3"):
        with ReadAhead(items(), depth=8) as ahead:
            for item in ahead:
                seen.append(item)
    assert seen == [1, 2]


def test_leaving_early_stops_the_producer_and_joins_its_thread():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    with ReadAhead(endless(), depth=4) as ahead:
        for item in ahead:
            if item == 10:
                break
    time.sleep(0.1)
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count <= 10 + 4 + 2          # stopped, at most a queue's worth ahead
    assert threading.active_count() == before


def test_the_producer_runs_ahead_of_the_consumer():
    """While the loop works on item 0, the producer has already made the next ones (overlap)."""
    made = []

    def items():
        for i in range(5):
            made.append(i)
            yield i

    with ReadAhead(items(), depth=8) as ahead:
        for item in ahead:
            if item == 0:
                deadline = time.time() + 5
                while len(made) < 5 and time.time() < deadline:
                    time.sleep(0.01)
                assert len(made) == 5


def test_leaving_early_ends_a_read_ahead_nested_in_the_producer():
    """The video reader: decoding in a ReadAhead inside the detection generator; leaving the outer loop
    closes that generator in its thread, which leaves the inner ReadAhead and ends its thread too."""
    closed = []

    def decoded():
        i = 0
        while True:
            yield i
            i += 1

    def detected():
        try:
            with ReadAhead(decoded(), depth=2) as frames:
                for frame in frames:
                    yield frame * 10
        finally:
            closed.append(True)

    before = threading.active_count()
    with ReadAhead(detected(), depth=2) as ahead:
        for item in ahead:
            if item == 50:
                break
    assert closed == [True]
    assert threading.active_count() == before
