"""One query engine per published version, kept while used: its cached totals serve repeated queries."""

from __future__ import annotations

import threading
from collections import OrderedDict

from kaifang.datastore import service
from kaifang.datastore.models import ResourceVersion
from kaifang.datastore.query import QueryEngine
from kaifang.datastore.storage import FileStore

_engines: OrderedDict[tuple[int, str], QueryEngine] = OrderedDict()
_engines_lock = threading.Lock()


def engine_for(store: FileStore, version: ResourceVersion) -> QueryEngine:
    """One engine per published version, kept while used: its cached totals serve repeated queries."""
    key = (version.id, version.sha256)  # the file's checksum: a reused id never meets a stale engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            path = store.path(version.data_key)
            engine = _engines[key] = QueryEngine(path, service.schema_of(version))
            while len(_engines) > 64:
                _engines.popitem(last=False)
        _engines.move_to_end(key)
    return engine
