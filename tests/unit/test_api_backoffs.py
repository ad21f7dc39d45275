"""kopf's API retries must never run out: a watcher whose retries give up is not restarted."""

from __future__ import annotations

import collections.abc
import itertools

from tugboat.handlers.wiring import UnboundedBackoffs


def test_backoffs_never_end_and_restart_for_each_request():
    backoffs = UnboundedBackoffs()
    # kopf gives up after len(backoffs) retries when it has a length; this must have none.
    assert not isinstance(backoffs, collections.abc.Sized)
    first = list(itertools.islice(backoffs, 200))
    assert first[:8] == [1, 1, 2, 3, 5, 8, 13, 21] and set(first[8:]) == {30}
    assert list(itertools.islice(backoffs, 8)) == first[:8], "a later request starts from 1 s again"
    assert sum(first) > 3600, "an hour of outage is still retried"
