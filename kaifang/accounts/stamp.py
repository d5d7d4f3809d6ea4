"""Permission facts kept in memory while the database says nothing they rest on has changed.

An API call needs its caller (the key's owner, their memberships and grants in force) and the
version it reads (resource, entry, version). Loading them took four queries, about a third of a
small call. The `auth_stamp` row counts committed changes to every row and column those facts
are read from; triggers move it whoever writes (migration 0012). A process keeps the facts with
the stamp they were read under, reads the stamp once per transaction (one primary-key lookup)
before anything else, and uses what it kept only while the stamp is the same:

- a revoked key, a suspended or deactivated user, a grant revoked, an entry withdrawn or closed,
  a new version published are seen by the next call, on every process, as before;
- what depends on the date (a grant's term) is kept with the city day it was read on;
- nothing is kept for longer than `TTL_S` in any case, a bound on the damage of a column the
  triggers should watch and do not;
- a stamp lower than one seen before (a restored backup) makes the process forget everything.

The permission checks themselves still run on every call, on the kept facts.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import date
from typing import Any, Generic, TypeVar

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from kaifang.accounts.models import AuthStamp

TTL_S = 60.0

K = TypeVar("K")
V = TypeVar("V")

_STAMP = select(AuthStamp.n).where(AuthStamp.id == 1)
_INFO = "kaifang.auth_stamp"


def stamp_of(db: Session) -> int:
    """The stamp as this transaction sees it, read once (before the facts it vouches for: facts
    read after it are at least as new, so nothing older is ever kept under a newer stamp).

    The stamp only grows. Seen lower than before, the database was restored from a backup (or
    emptied): everything kept is forgotten, or a later change could bring the stamp back to a
    value something stale was kept under."""
    stamp = db.info.get(_INFO)
    if stamp is None:
        stamp = db.info[_INFO] = int(db.execute(_STAMP).scalar() or 0)
        with _seen_lock:
            if stamp < _seen[0]:
                clear_all()
            _seen[0] = stamp
    return int(stamp)


_seen = [0]  # the highest stamp this process has read since it last forgot everything
_seen_lock = threading.Lock()


@event.listens_for(Session, "after_transaction_end")
def _forget_stamp(session: Session, transaction: SessionTransaction) -> None:
    """The next transaction of the same session reads the stamp again."""
    if transaction.parent is None:
        session.info.pop(_INFO, None)


class StampedCache(Generic[K, V]):
    """A bounded map whose entries hold while the stamp (and the day, if given) is unchanged."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, tuple[int, date | None, float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, stamp: int, day: date | None = None) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            kept_stamp, kept_day, born, value = item
            if kept_stamp != stamp or kept_day != day or time.monotonic() - born > TTL_S:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: K, stamp: int, value: V, day: date | None = None) -> None:
        with self._lock:
            self._items[key] = (stamp, day, time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_caches: list[StampedCache[Any, Any]] = []


def cache(size: int) -> StampedCache[Any, Any]:
    """A new stamped cache, emptied with the others by `clear_all`."""
    kept: StampedCache[Any, Any] = StampedCache(size)
    _caches.append(kept)
    return kept


def clear_all() -> None:
    """Forget every kept fact (a restored backup; tests that empty the database)."""
    for kept in _caches:
        kept.clear()
