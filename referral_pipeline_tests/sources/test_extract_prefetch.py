"""``prefetched``: pages read ahead in a background thread arrive in order, a reader error is
raised to the consumer after the pages before it, and a consumer that stops early stops the
reader (the page generator is closed, no further pages are read)."""
from __future__ import annotations

import threading

import pytest

from referral_pipeline.extract.base import prefetched


def test_pages_arrive_in_order_and_are_read_in_another_thread():
    threads = []

    def pages():
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i
    assert list(prefetched(pages())) == list(range(50))
    assert set(threads) == {"extract-prefetch"}


def test_reader_error_is_raised_after_the_pages_before_it():
    def pages():
        yield 1
        yield 2
        raise RuntimeError("connection lost on page 3")
    seen = []
    with pytest.raises(RuntimeError, match="page 3"):
        for page in prefetched(pages()):
            seen.append(page)
    assert seen == [1, 2]


def test_consumer_failure_stops_the_reader():
    read, closed = [], threading.Event()

    def pages():
        try:
            for i in range(1000):
                read.append(i)
                yield i
        finally:
            closed.set()
    with pytest.raises(ValueError):
        for page in prefetched(pages(), depth=2):
            if page == 3:
                raise ValueError("commit failed")
    assert closed.is_set()
    assert len(read) <= 3 + 1 + 2 + 1   # the pages consumed, plus at most the read-ahead
