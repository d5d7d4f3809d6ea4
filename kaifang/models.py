"""Imports every feature's models so the metadata (and Alembic) sees all tables."""

from kaifang.access import models as access_models
from kaifang.accounts import models as accounts_models
from kaifang.audit import models as audit_models
from kaifang.catalog import models as catalog_models
from kaifang.datastore import models as datastore_models
from kaifang.desensitize import models as desensitize_models
from kaifang.notify import models as notify_models

__all__ = [
    "access_models",
    "accounts_models",
    "audit_models",
    "catalog_models",
    "datastore_models",
    "desensitize_models",
    "notify_models",
]
