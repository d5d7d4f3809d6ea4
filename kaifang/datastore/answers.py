"""Answers of the data API kept in memory, for the questions asked again.

A published version never changes (an update is a new version), so the answer to the same
question of the same version is the same bytes for as long as the version exists: the first page
of a popular dataset, the same filter asked by many clients. The answer is keyed by the version's
id and SHA-256 and the request's query parameters exactly as sent; permission, rate limits and
the audit record are done for every call before the cache is looked at, so a hit only skips the
query and the JSON encoding. Bounded by bytes (setting `data_cache_mb`, 0 turns it off); only
answers up to 1 MiB are kept; the least recently used go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

MAX_ANSWER = 1024 * 1024

# resource id, version id, version number, SHA-256 of its file, the query parameters in order
Key = tuple[int, int, int, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Answer:
    body: bytes
    rows: int  # records in the answer, for the audit record


class AnswerCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self._answers: OrderedDict[Key, Answer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Key) -> Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: Key, answer: Answer) -> None:
        size = len(answer.body)
        if size > min(MAX_ANSWER, self.budget):
            return
        with self._lock:
            old = self._answers.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._answers[key] = answer
            self._bytes += size
            while self._bytes > self.budget:
                _, dropped = self._answers.popitem(last=False)
                self._bytes -= len(dropped.body)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._bytes = 0

    def resize(self, budget_bytes: int) -> None:
        with self._lock:
            self.budget = budget_bytes
            while self._answers and self._bytes > self.budget:
                _, dropped = self._answers.popitem(last=False)
                self._bytes -= len(dropped.body)

    @property
    def size(self) -> int:
        return self._bytes


answers = AnswerCache(64 * 1024 * 1024)


def configure(budget_mb: int) -> None:
    """Setting `data_cache_mb` (called when the platform is built)."""
    answers.resize(budget_mb * 1024 * 1024)
