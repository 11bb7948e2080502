"""The Django admin: the screen ops staff run the business from (issue 5).

The admin holds no business rule. Saving goes through `services.save_brand` / `save_campaign`,
dayparting edits are followed by `services.reevaluate_campaigns`, and the actions call
`pause_campaign`, `resume_campaign` and `reevaluate_campaigns`; every status change that results is
reported to the person as a message. Aggregates, status and pause reason are derived and shown
read-only; Spend rows and the status audit trail cannot be added, changed or deleted here.

Scale (100,000 campaigns, millions of spend rows): every list selects its foreign keys in the same
query and prefetches dayparting in one more, so a page runs a fixed number of queries; filters use
indexed columns; the paginator does not `COUNT(*)` a whole large table on PostgreSQL (it reads the
planner's estimate) and `show_full_result_count` is off, so no second count runs either.
"""

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Model, Prefetch, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.budget import services
from apps.budget.admin_display import (
    ChartBar,
    bar_chart,
    budget_bar,
    dayparting_summary,
    money,
    reason_label,
    status_badge,
    transition_text,
)
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import utc_now
from apps.budget.models import WEEKDAYS, Brand, Campaign, CampaignStatusChange, DaypartingSchedule, Spend
from apps.budget.money import ZERO
from apps.budget.rules import Moment
from apps.budget.selectors import estimated_row_count, spend_by_day, spend_by_hour, status_history
from apps.budget.services import StatusChanges, Transition

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices

admin.site.site_header = "Budget Management"
admin.site.site_title = "Budget admin"
admin.site.index_title = "Brands, campaigns and spend"

_M = TypeVar("_M", bound=Model)

# Below this many rows an exact COUNT(*) is cheap and worth its exactness.
ESTIMATE_COUNT_FROM = 10_000
# Actions hand the services ids in batches, each its own transaction, so that "select all" over
# 100,000 campaigns stays inside the database's limit on query parameters.
ACTION_BATCH = 1_000
HISTORY_ROWS = 20
DAYS_CHARTED = 30
WEEKDAY_NAMES = dict(WEEKDAYS)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- Shared list machinery -----------------------------------------------------------------------


class EstimatedCountPaginator(Paginator[Any]):
    """Counts an unfiltered large table from PostgreSQL's statistics instead of `COUNT(*)`.

    A filtered or searched list is counted exactly: its WHERE clause runs on an index (status,
    brand, campaign, date) or narrows the rows anyway. Only the plain first screen of a table with
    millions of rows would otherwise read every row just to print the page numbers.
    """

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet) and not rows.query.where:
            estimate = estimated_row_count(rows.model)
            if estimate is not None and estimate >= ESTIMATE_COUNT_FROM:
                return estimate
        exact: int = super().count
        return exact


class RelatedAutocompleteFilter(admin.SimpleListFilter):
    """Filter by one related row, picked with the admin's own autocomplete (select2, no CDN).

    A plain list of links would print every brand (or every campaign) in the sidebar and query
    them all on each page; this renders one search box and looks up only the selected row.
    """

    template = "admin/budget/autocomplete_filter.html"
    field_name: ClassVar[str]
    related_model: ClassVar[type[Model]]

    def __init__(
        self,
        request: HttpRequest,
        params: dict[str, str],
        model: type[Model],
        model_admin: admin.ModelAdmin[Any],
    ) -> None:
        super().__init__(request, params, model, model_admin)
        self.model = model
        self.admin_site = model_admin.admin_site

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def selected_id(self) -> int | None:
        value = self.value()
        if value is None or value == "":
            return None
        if not value.isdigit():
            raise IncorrectLookupParameters(f"{self.parameter_name} must be an id, not {value!r}")
        return int(value)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        selected = self.selected_id()
        if selected is None:
            return queryset
        return queryset.filter(**{f"{self.field_name}_id": selected})

    def choices(self, changelist: ChangeList) -> Iterator["_ListFilterChoices"]:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name or ""]),
            "display": "All",
        }

    def widget(self) -> SafeString:
        field = forms.ModelChoiceField(
            queryset=self.related_model._default_manager.all(),
            required=False,
            widget=AutocompleteSelect(self.model._meta.get_field(self.field_name), self.admin_site),
        )
        return format_html(
            "{}",
            field.widget.render(
                self.parameter_name or "",
                self.selected_id(),
                attrs={
                    "id": f"{self.parameter_name}-filter",
                    "class": "autocomplete-filter",
                    "data-parameter": self.parameter_name or "",
                    "data-width": "100%",  # select2 option: fill the filter column
                },
            ),
        )


class BrandFilter(RelatedAutocompleteFilter):
    title = "brand"
    parameter_name = "brand"
    field_name = "brand"
    related_model = Brand


class CampaignFilter(RelatedAutocompleteFilter):
    title = "campaign"
    parameter_name = "campaign"
    field_name = "campaign"
    related_model = Campaign


class PauseReasonFilter(admin.SimpleListFilter):
    """Pause reasons only exist on PAUSED campaigns (a check constraint says so): filtering on both
    lets the (status, pause_reason) index answer it."""

    title = "pause reason"
    parameter_name = "pause_reason"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [(reason.value, str(reason.label)) for reason in PauseReason if reason]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.value():
            return queryset
        return queryset.filter(status=CampaignStatus.PAUSED, pause_reason=self.value())


class ActiveFilter(admin.SimpleListFilter):
    """Active or inactive brands (of the brand list, or of the campaigns' brands)."""

    title = "active"
    parameter_name = "active"
    field_path: ClassVar[str] = "is_active"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("yes", "Active brands"), ("no", "Inactive brands")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() not in {"yes", "no"}:
            return queryset
        return queryset.filter(**{self.field_path: self.value() == "yes"})


class BrandActiveFilter(ActiveFilter):
    title = "brand active"
    parameter_name = "brand_active"
    field_path = "brand__is_active"


class BudgetModelAdmin(admin.ModelAdmin[_M]):
    """What every list here shares: scale-safe counting and the styles and filter scripts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    @property
    def media(self) -> forms.Media:
        # The autocomplete filter's select2 must load in the head with the admin's jQuery.
        autocomplete = AutocompleteSelect(Campaign._meta.get_field("brand"), self.admin_site).media
        # Listing jquery.init.js first orders the filter script after it (it uses django.jQuery).
        own = forms.Media(
            css={"all": ["budget/admin.css"]}, js=["admin/js/jquery.init.js", "budget/autocomplete_filter.js"]
        )
        return super().media + autocomplete + own


class ReadOnlyModelAdmin(BudgetModelAdmin[_M]):
    """Rows written only by the services (spend, the audit trail): nobody edits them here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False


def report_changes(request: HttpRequest, changes: StatusChanges, *, single: bool) -> None:
    """Tell the person what the status rule changed after their edit."""
    for transition in changes.transitions:
        prefix = "Status" if single else f"Status of {plural(transition.count, 'campaign')}"
        level = messages.WARNING if transition.new_status != CampaignStatus.ACTIVE else messages.INFO
        messages.add_message(request, level, f"{prefix}: {transition_text(transition)}")


def usage_bars(owner: Brand | Campaign) -> tuple[SafeString, SafeString]:
    """Daily and monthly bars with what the rule counts: a stale period's aggregate counts 0."""
    moment = Moment.at(utc_now())
    spending = owner.spending()
    return (
        budget_bar(spending.daily_used(moment), spending.daily_budget),
        budget_bar(spending.monthly_used(moment), spending.monthly_budget),
    )


# --- Brand ---------------------------------------------------------------------------------------


@admin.register(Brand)
class BrandAdmin(BudgetModelAdmin[Brand]):
    list_display = ("name", "active", "daily_usage", "monthly_usage", "campaigns_link")
    list_filter = (ActiveFilter,)
    search_fields = ("name",)
    readonly_fields = ("daily_usage", "monthly_usage", "created_at")

    def get_fieldsets(self, request: HttpRequest, obj: Brand | None = None) -> Any:
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ("name", "is_active")}),
            ("Budgets", {"fields": ("daily_budget", "monthly_budget")}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    "Spend today and this month (derived)",
                    {"fields": ("daily_usage", "monthly_usage", "created_at")},
                )
            )
        return fieldsets

    @admin.display(description="Active", boolean=True, ordering="is_active")
    def active(self, obj: Brand) -> bool:
        return obj.is_active

    @admin.display(description="Daily spend / budget")
    def daily_usage(self, obj: Brand) -> SafeString:
        return usage_bars(obj)[0]

    @admin.display(description="Monthly spend / budget")
    def monthly_usage(self, obj: Brand) -> SafeString:
        return usage_bars(obj)[1]

    @admin.display(description="Campaigns")
    def campaigns_link(self, obj: Brand) -> SafeString:
        url = reverse("admin:budget_campaign_changelist")
        return format_html('<a href="{}?brand={}">Campaigns</a>', url, obj.pk)

    def save_model(self, request: HttpRequest, obj: Brand, form: Any, change: bool) -> None:
        # Raising a budget resumes budget-paused campaigns; deactivating pauses them all.
        report_changes(request, services.save_brand(obj, by=request.user), single=False)


class ActionOutcome:
    """Each campaign's (status, reason) before and after an action, and the services' refusals."""

    # How many refusals are spelled out; the rest are counted.
    SHOWN_REFUSALS = 10

    def __init__(self) -> None:
        self.results: list[tuple[tuple[str, str], tuple[str, str]]] = []
        self.refusals: list[str] = []

    def report_refusals(self, request: HttpRequest) -> None:
        for refusal in self.refusals[: self.SHOWN_REFUSALS]:
            messages.error(request, refusal)
        hidden = len(self.refusals) - self.SHOWN_REFUSALS
        if hidden > 0:
            messages.error(request, f"… and {hidden} more refused.")


def batched(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


# --- Campaign ------------------------------------------------------------------------------------


class DaypartingForm(forms.ModelForm[DaypartingSchedule]):
    class Meta:
        model = DaypartingSchedule
        fields = ("day_of_week", "start_hour", "end_hour")
        widgets = {
            "start_hour": forms.NumberInput(attrs={"min": 0, "max": 23, "class": "hour-input"}),
            "end_hour": forms.NumberInput(attrs={"min": 1, "max": 24, "class": "hour-input"}),
        }
        error_messages = {
            "start_hour": {
                "min_value": "start_hour %(show_value)s is out of range: a window starts at hour 0 to 23",
                "max_value": "start_hour %(show_value)s is out of range: a window starts at hour 0 to 23",
            },
            "end_hour": {
                "min_value": "end_hour %(show_value)s is out of range: a window ends at hour 1 to 24",
                "max_value": "end_hour %(show_value)s is out of range: a window ends at hour 1 to 24",
            },
        }


class DaypartingFormSet(BaseInlineFormSet[DaypartingSchedule, Campaign, forms.ModelForm[DaypartingSchedule]]):
    """Refuses windows that overlap on one day: each must be a separate stretch of hours."""

    def clean(self) -> None:
        super().clean()
        by_day: dict[int, list[tuple[int, int]]] = {}
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or form.errors:
                continue  # blank, marked for deletion or already refused with its own error
            day, start, end = data.get("day_of_week"), data.get("start_hour"), data.get("end_hour")
            if day is None or start is None or end is None:
                continue
            by_day.setdefault(day, []).append((start, end))
        overlaps = [
            f"{WEEKDAY_NAMES[day]} {first[0]:02d}–{first[1]:02d} overlaps {WEEKDAY_NAMES[day]} "
            f"{second[0]:02d}–{second[1]:02d}: windows on one day may not overlap (merge them into one)"
            for day, windows in sorted(by_day.items())
            for first, second in zip(sorted(windows), sorted(windows)[1:], strict=False)
            if second[0] < first[1]
        ]
        if overlaps:
            raise ValidationError(overlaps)


class DaypartingInline(admin.TabularInline[DaypartingSchedule, Campaign]):
    model = DaypartingSchedule
    form = DaypartingForm
    formset = DaypartingFormSet
    extra = 0
    verbose_name = "dayparting window"
    verbose_name_plural = "Dayparting (UTC; end hour exclusive, 24 = midnight; no windows: any time)"


@admin.register(Campaign)
class CampaignAdmin(BudgetModelAdmin[Campaign]):
    list_display = (
        "name",
        "brand",
        "status_display",
        "daily_usage",
        "monthly_usage",
        "dates",
        "dayparting_display",
    )
    list_select_related = ("brand",)
    list_filter = ("status", PauseReasonFilter, BrandFilter, BrandActiveFilter)
    search_fields = ("name",)
    autocomplete_fields = ("brand",)
    readonly_fields = ("status_display", "daily_usage", "monthly_usage", "created_at")
    inlines = (DaypartingInline,)
    actions = ("pause_selected", "resume_selected", "reevaluate_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        windows = DaypartingSchedule.objects.order_by().only(
            "campaign_id", "day_of_week", "start_hour", "end_hour"
        )
        return super().get_queryset(request).prefetch_related(Prefetch("dayparting", queryset=windows))

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None) -> Any:
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ("brand", "name", ("start_date", "end_date"))}),
            ("Budgets", {"fields": ("daily_budget", "monthly_budget")}),
        ]
        if obj is not None:
            fieldsets.insert(0, ("Status (set by the rule and the actions)", {"fields": ("status_display",)}))
            fieldsets.append(
                (
                    "Spend today and this month (derived)",
                    {"fields": ("daily_usage", "monthly_usage", "created_at")},
                )
            )
        return fieldsets

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: Campaign) -> SafeString:
        return status_badge(obj.status, obj.pause_reason)

    @admin.display(description="Daily spend / budget")
    def daily_usage(self, obj: Campaign) -> SafeString:
        return usage_bars(obj)[0]

    @admin.display(description="Monthly spend / budget")
    def monthly_usage(self, obj: Campaign) -> SafeString:
        return usage_bars(obj)[1]

    @admin.display(description="Runs", ordering="start_date")
    def dates(self, obj: Campaign) -> SafeString:
        end = obj.end_date.isoformat() if obj.end_date else "open end"
        return format_html('<span class="campaign-dates">{} → {}</span>', obj.start_date.isoformat(), end)

    @admin.display(description="Dayparting (UTC)")
    def dayparting_display(self, obj: Campaign) -> str:
        # Reads the prefetched rows: no query per campaign.
        return dayparting_summary((w.day_of_week, w.start_hour, w.end_hour) for w in obj.dayparting.all())

    # Saving: the services apply the status rule at once and report what it changed.

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        report_changes(request, services.save_campaign(obj, by=request.user), single=True)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The dayparting windows are stored now: the rule may have a different answer.
        changes = services.reevaluate_campaigns([form.instance.pk], actor=services.user_actor(request.user))
        report_changes(request, changes, single=True)

    # The campaign page: spend charts and the status history.

    def render_change_form(  # noqa: PLR0917 (Django's own signature)
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Campaign | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context.update(self.campaign_panels(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def campaign_panels(self, request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
        today = utc_now().date()
        hours = spend_by_hour(campaign_id=campaign.pk, day=today)
        days = spend_by_day(campaign_id=campaign.pk, last_day=today, days=DAYS_CHARTED)
        first_day = days[0].day
        hour_bars = [
            ChartBar(f"{hour:02d}" if hour % 3 == 0 else "", f"{hour:02d}:00–{hour + 1:02d}:00 UTC", amount)
            for hour, amount in hours
        ]
        day_bars = [
            ChartBar(
                day.strftime("%d %b") if index % 5 == 4 else "",
                day.strftime("%a %d %b %Y"),
                amount,
            )
            for index, (day, amount) in enumerate(days)
        ]
        history_url = None
        if request.user.has_perm("budget.view_campaignstatuschange"):
            history_url = f"{reverse('admin:budget_campaignstatuschange_changelist')}?campaign={campaign.pk}"
        spend_url = None
        if request.user.has_perm("budget.view_spend"):
            spend_url = f"{reverse('admin:budget_spend_changelist')}?campaign={campaign.pk}"
        return {
            "today": today,
            "spend_today_total": money(sum((amount for _hour, amount in hours), ZERO)),
            "spend_today_chart": bar_chart(
                hour_bars, title=f"Spend by hour on {today.isoformat()} (UTC)", limit=None
            ),
            "spend_days_total": money(sum((amount for _day, amount in days), ZERO)),
            "spend_days_chart": bar_chart(
                day_bars,
                title=f"Spend by day, {first_day.isoformat()} to {today.isoformat()}",
                limit=campaign.daily_budget,
                limit_label="daily budget",
            ),
            "days_charted": DAYS_CHARTED,
            "status_history": [
                {
                    "changed_at": change.changed_at,
                    "old": status_badge(change.old_status, ""),
                    "new": status_badge(change.new_status, change.reason),
                    "actor": change.actor,
                }
                for change in status_history(campaign_id=campaign.pk, limit=HISTORY_ROWS)
            ],
            "history_rows": HISTORY_ROWS,
            "history_url": history_url,
            "spend_url": spend_url,
        }

    # Actions on the selected campaigns. Each campaign is its own transaction in the service, so
    # one refusal (a COMPLETED campaign) does not undo the others; the report says who and why.

    @admin.action(description="Pause selected campaigns (by a person)", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        outcome = self.run_each(request, queryset, services.pause_campaign)
        paused = already = 0
        for before, after in outcome.results:
            if before == after:
                already += 1
            else:
                paused += 1
        if paused:
            messages.success(request, f"Paused {plural(paused, 'campaign')}.")
        if already:
            verb = "was" if already == 1 else "were"
            messages.warning(request, f"{already} {verb} already paused by a person.")
        outcome.report_refusals(request)

    @admin.action(description="Resume selected campaigns (the rule still applies)", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        outcome = self.run_each(request, queryset, services.resume_campaign)
        resumed = already = 0
        still_paused: Counter[str] = Counter()
        for before, after in outcome.results:
            if after[0] == CampaignStatus.PAUSED:
                still_paused[after[1]] += 1
            elif before == after:
                already += 1
            else:
                resumed += 1
        if resumed:
            messages.success(request, f"Resumed {plural(resumed, 'campaign')}.")
        if already:
            verb = "was" if already == 1 else "were"
            messages.info(request, f"{already} {verb} already active.")
        for reason, count in sorted(still_paused.items()):
            verb = "stays" if count == 1 else "stay"
            messages.warning(request, f"{count} {verb} PAUSED: {reason_label(reason)}.")
        outcome.report_refusals(request)

    @admin.action(description="Re-evaluate selected campaigns now", permissions=["change"])
    def reevaluate_selected(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        actor = services.user_actor(request.user)
        merged: Counter[tuple[str, str, str]] = Counter()
        for batch in batched(ids, ACTION_BATCH):
            changes = services.reevaluate_campaigns(batch, actor=actor)
            for t in changes.transitions:
                merged[(t.old_status, t.new_status, t.reason)] += t.count
        changed = sum(merged.values())
        unchanged = len(ids) - changed
        messages.success(
            request, f"Re-evaluated {plural(len(ids), 'campaign')}: {changed} changed, {unchanged} unchanged."
        )
        for (old, new, reason), count in sorted(merged.items()):
            text = transition_text(Transition(old, new, reason, count))
            messages.info(request, f"{plural(count, 'campaign')}: {text}")

    def run_each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Campaign],
        act: Callable[[int, AbstractBaseUser | AnonymousUser], Campaign],
    ) -> ActionOutcome:
        outcome = ActionOutcome()
        rows = (
            queryset.order_by("pk")
            .values_list("pk", "status", "pause_reason")
            .iterator(chunk_size=ACTION_BATCH)
        )
        for pk, status, reason in rows:
            try:
                after = act(pk, request.user)
            except ValidationError as error:
                outcome.refusals.extend(error.messages)
                continue
            outcome.results.append(((status, reason), (after.status, after.pause_reason)))
        return outcome


# --- Read-only records ---------------------------------------------------------------------------


@admin.register(DaypartingSchedule)
class DaypartingScheduleAdmin(ReadOnlyModelAdmin[DaypartingSchedule]):
    """All windows at a glance. They are edited on their campaign's page, where overlaps with the
    campaign's other windows are checked and the status rule is applied after the change."""

    list_display = ("campaign_link", "day_of_week", "start_hour", "end_hour")
    list_select_related = ("campaign",)
    list_filter = ("day_of_week", CampaignFilter)

    @admin.display(description="Campaign", ordering="campaign__name")
    def campaign_link(self, obj: DaypartingSchedule) -> SafeString:
        url = reverse("admin:budget_campaign_change", args=[obj.campaign_id])
        return format_html('<a href="{}">{}</a>', url, obj.campaign.name)


@admin.register(Spend)
class SpendAdmin(ReadOnlyModelAdmin[Spend]):
    """The spend audit log, as the integrations sent it."""

    list_display = ("date", "hour", "amount", "campaign", "brand", "external_id", "created_at")
    list_select_related = ("campaign", "campaign__brand")
    list_filter = ("date", CampaignFilter)
    # Exact, case-sensitive match (as the key is unique): the unique index answers it however
    # many rows there are. "=external_id" would be iexact, UPPER(external_id), a full scan.
    search_fields = ("external_id__exact",)
    search_help_text = "Exact external_id of a spend record"

    @admin.display(description="Brand", ordering="campaign__brand__name")
    def brand(self, obj: Spend) -> str:
        return obj.campaign.brand.name


@admin.register(CampaignStatusChange)
class CampaignStatusChangeAdmin(ReadOnlyModelAdmin[CampaignStatusChange]):
    """The audit trail of status changes: who or what changed which campaign, when and why."""

    list_display = ("changed_at", "campaign", "old_status_display", "new_status_display", "actor")
    list_select_related = ("campaign",)
    list_filter = ("new_status", "reason", "changed_at", CampaignFilter)
    search_fields = ("=actor",)
    search_help_text = "Exact actor, e.g. user:alice, job:enforce_dayparting, api:<key name>"
    # Newest first by primary key, which its index serves: changed_at alone has no index.
    ordering = ("-id",)

    @admin.display(description="From", ordering="old_status")
    def old_status_display(self, obj: CampaignStatusChange) -> SafeString:
        return status_badge(obj.old_status, "")

    @admin.display(description="To", ordering="new_status")
    def new_status_display(self, obj: CampaignStatusChange) -> SafeString:
        return status_badge(obj.new_status, obj.reason)
