"""Integration credentials: API keys, stored hashed, shown once.

A key reads `bms_<prefix>_<secret>`: the prefix (random hex) finds the row through its unique
index, and the SHA-256 of the whole key is compared in constant time. The secret has 256 bits of
entropy, so a fast hash is enough (a slow password hash protects guessable passwords, not random
tokens) and keeps every request cheap. The clear key exists only in the answer of `create_api_key`.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet

from apps.budget.clock import utc_now
from apps.budget.models import ApiKey, Brand

KEY_SCHEME = "bms"
PREFIX_BYTES = 6
SECRET_BYTES = 32


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def assign_new_key(api_key: ApiKey) -> str:
    """Give `api_key` (not yet saved) a fresh prefix and hash; the clear key, to show once."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    raw_key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    api_key.prefix = prefix
    api_key.secret_hash = hash_key(raw_key)
    return raw_key


def create_api_key(*, name: str, brands: Iterable[Brand] = ()) -> tuple[ApiKey, str]:
    """A new key (limited to `brands` when given) and its clear value, which is not stored."""
    api_key = ApiKey(name=name)
    raw_key = assign_new_key(api_key)
    api_key.full_clean()
    with transaction.atomic():
        api_key.save()
        api_key.brands.set(list(brands))
    return api_key, raw_key


def authenticate(raw_key: str) -> ApiKey | None:
    """The live key matching `raw_key`, or None (unknown, malformed or revoked)."""
    scheme, _, rest = raw_key.strip().partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not prefix or not secret:
        return None
    api_key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, hash_key(raw_key.strip())):
        return None
    return api_key


def revoke(api_keys: QuerySet[ApiKey]) -> int:
    """Revoke the keys (they stop working at once); revoking twice changes nothing."""
    return api_keys.filter(revoked_at__isnull=True).update(revoked_at=utc_now())


def actor(api_key: ApiKey) -> str:
    """The audit-trail label of what an integration does with this key."""
    return f"api:{api_key.name}"


def allowed_brand_ids(api_key: ApiKey) -> set[int] | None:
    """The brands the key may write to; None when it is not limited."""
    ids = set(api_key.brands.values_list("pk", flat=True))
    return ids or None
