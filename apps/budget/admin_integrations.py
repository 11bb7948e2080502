"""Admin for the integrations: API keys, webhook endpoints, webhook deliveries.

Thin: keys are made and revoked by `api_keys`, failed deliveries re-sent by `webhooks`. A new
key is shown once, in the confirmation message after saving; only its hash is stored.
Registered from `BudgetConfig.ready()`.
"""

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Field, QuerySet
from django.http import HttpRequest

from apps.budget import api_keys, webhooks
from apps.budget.models import ApiKey, DeliveryState, WebhookDelivery, WebhookEndpoint


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ["name", "prefix", "brand_list", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    filter_horizontal = ["brands"]
    readonly_fields = ["prefix", "created_at", "revoked_at"]
    actions = ["revoke_keys"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).prefetch_related("brands")

    @admin.display(description="Brands")
    def brand_list(self, api_key: ApiKey) -> str:
        return ", ".join(brand.name for brand in api_key.brands.all()) or "all brands"

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm[ApiKey], change: bool
    ) -> None:
        raw_key = None if change else api_keys.assign_new_key(obj)
        super().save_model(request, obj, form, change)
        if raw_key is not None:
            messages.success(
                request,
                f"API key {obj.name!r} created. Copy it now, it is not shown again: {raw_key}",
            )

    @admin.action(description="Revoke selected API keys (they stop working at once)")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = api_keys.revoke(queryset)
        messages.success(request, f"{revoked} API key(s) revoked.")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    list_display = ["url", "is_active", "created_at"]
    list_filter = ["is_active"]
    fields = ["url", "secret", "is_active", "created_at"]
    readonly_fields = ["created_at"]

    def formfield_for_dbfield(self, db_field: Field[Any, Any], request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "url":
            # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # A strong shared secret by default; the receiver needs it to verify the signature.
        return {**super().get_changeform_initial_data(request), "secret": secrets.token_urlsafe(32)}


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    list_display = [
        "status_change",
        "endpoint",
        "state",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    ]
    list_filter = ["state", "endpoint"]
    list_select_related = ["endpoint", "status_change"]
    readonly_fields = [
        "endpoint",
        "status_change",
        "payload",
        "state",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "delivered_at",
    ]
    actions = ["send_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("budget.change_webhookdelivery")

    @admin.action(description="Send failed deliveries again", permissions=["resend"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        ids = list(queryset.filter(state=DeliveryState.FAILED).values_list("pk", flat=True))
        requeued = webhooks.requeue_deliveries(ids)
        messages.success(request, f"{requeued} failed delivery(ies) queued to be sent again.")
