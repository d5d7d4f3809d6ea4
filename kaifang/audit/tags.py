"""The fixed vocabulary of audit actions (`scope:resource:event`). Add tags here, never inline."""

from __future__ import annotations

import enum


class Tag(enum.StrEnum):
    account_user_registered = "account:user:registered"
    account_user_created = "account:user:created"
    account_user_updated = "account:user:updated"
    account_user_disabled = "account:user:disabled"
    account_user_enabled = "account:user:enabled"
    account_email_verified = "account:email:verified"
    account_login_succeeded = "account:login:succeeded"
    account_login_failed = "account:login:failed"
    account_login_locked = "account:login:locked"
    account_logout = "account:logout"
    account_password_reset_requested = "account:password:reset_requested"
    account_password_changed = "account:password:changed"
    account_api_key_created = "account:api_key:created"
    account_api_key_revoked = "account:api_key:revoked"
    org_created = "org:organisation:created"
    org_updated = "org:organisation:updated"
    org_disabled = "org:organisation:disabled"
    org_enabled = "org:organisation:enabled"
    org_member_added = "org:member:added"
    org_member_removed = "org:member:removed"
    org_staff_updated = "org:staff:updated"
    catalog_entry_created = "catalog:entry:created"
    catalog_entry_edited = "catalog:entry:edited"
    catalog_entry_submitted = "catalog:entry:submitted"
    catalog_entry_confirmed = "catalog:entry:confirmed"
    catalog_entry_returned = "catalog:entry:returned"
    catalog_entry_published = "catalog:entry:published"
    catalog_entry_retired = "catalog:entry:retired"
    catalog_taxonomy_created = "catalog:taxonomy:created"
    catalog_taxonomy_updated = "catalog:taxonomy:updated"
