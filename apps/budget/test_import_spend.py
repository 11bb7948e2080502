"""`manage.py import_spend`: good, re-run (duplicates) and broken files."""

from datetime import datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.conftest import CampaignFactory
from apps.budget.models import Brand, Campaign, CampaignStatusChange, Spend

pytestmark = pytest.mark.django_db

HEADER = "campaign_id,amount,date,hour,external_id\n"


def write_csv(tmp_path: Path, lines: list[str], name: str = "spend.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_spend", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(path: Path, *args: str) -> tuple[str, str, CommandError]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_spend", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), raised.value


def test_good_file_is_stored_counted_and_crossing_a_budget_pauses(
    frozen_now: datetime, tmp_path: Path, campaign: Campaign
) -> None:
    # given: 60 + 45 = 105 today against a 100.00 daily budget, and 10 on an earlier day
    path = write_csv(
        tmp_path,
        [
            f"{campaign.pk},60.00,2026-03-18,9,row-1",
            f"{campaign.pk},45.00,2026-03-18,10,row-2",
            f"{campaign.pk},10.00,2026-03-02,10,row-3",
        ],
    )

    # when
    out, err = run(path)

    # then
    assert "3 lines, 3 created, 0 duplicates skipped, 0 failed" in out
    assert "3/3 lines" in err  # the progress bar
    assert Spend.objects.filter(campaign=campaign).count() == 3
    campaign.refresh_from_db()
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("105.00"), Decimal("115.00"))
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert CampaignStatusChange.objects.get(campaign=campaign).actor == "command:import_spend"


def test_rerun_skips_duplicates_and_counts_nothing_twice(
    frozen_now: datetime, tmp_path: Path, campaign: Campaign
) -> None:
    path = write_csv(
        tmp_path,
        [f"{campaign.pk},1.10,2026-03-18,{hour},line-{hour}" for hour in range(5)],
    )
    run(path)

    out, _err = run(path)

    assert "5 lines, 0 created, 5 duplicates skipped, 0 failed" in out
    assert Spend.objects.count() == 5
    campaign.refresh_from_db()
    assert campaign.daily_spend == Decimal("5.50")
    assert Brand.objects.get(pk=campaign.brand_id).daily_spend == Decimal("5.50")


def test_broken_lines_are_reported_by_line_and_field_and_the_rest_is_stored(
    frozen_now: datetime, tmp_path: Path, campaign: Campaign
) -> None:
    path = write_csv(
        tmp_path,
        [
            f"{campaign.pk},5.00,2026-03-18,9,ok-1",  # line 2
            f"{campaign.pk},5.001,2026-03-18,9,bad-amount",  # line 3
            f"{campaign.pk},5.00,2026-03-19,9,future-day",  # line 4
            f"{campaign.pk},5.00,2026-03-18,13,future-hour",  # line 5
            "999999,5.00,2026-03-18,9,no-campaign",  # line 6
            f"{campaign.pk},5.00,18/03/2026,nine,two-bad-fields",  # line 7
            f"{campaign.pk},6.00,2026-03-18,9,ok-1",  # line 8: same key, other amount
            f"{campaign.pk},5.00",  # line 9: short line
            f"{campaign.pk},7.00,2026-03-18,11,",  # line 10: no key is fine
        ],
    )

    out, err, error = run_failing(path)

    assert "9 lines, 2 created, 0 duplicates skipped, 7 failed" in out
    assert "7 of 9 lines failed" in str(error)
    assert "line 3: amount: amount '5.001' has more than 2 decimal places" in err
    assert "line 4: date: date 2026-03-19 is in the future" in err
    assert "line 5: hour: hour 13 of 2026-03-18 is in the future" in err
    assert "line 6: campaign_id: campaign 999999 does not exist" in err
    assert "line 7: date: date '18/03/2026' is not an ISO date" in err
    assert "line 7: hour: hour must be an integer from 0 to 23, not 'nine'" in err
    assert "line 8: external_id: external_id 'ok-1' was already used" in err
    assert "line 9: date: date is required" in err
    assert "line 9: hour: hour is required" in err
    assert set(Spend.objects.values_list("amount", flat=True)) == {Decimal("5.00"), Decimal("7.00")}
    campaign.refresh_from_db()
    assert campaign.daily_spend == Decimal("12.00")


def test_dry_run_reports_exactly_but_stores_nothing(
    frozen_now: datetime, tmp_path: Path, campaign: Campaign
) -> None:
    path = write_csv(tmp_path, [f"{campaign.pk},150.00,2026-03-18,9,dry-1", "999999,1.00,2026-03-18,9,dry-2"])

    out, err, _error = run_failing(path, "--dry-run")

    assert "2 lines, 1 would be created, 0 duplicates skipped, 1 failed" in out
    assert "line 3: campaign_id: campaign 999999 does not exist" in err
    assert not Spend.objects.exists()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.daily_spend) == (CampaignStatus.ACTIVE, Decimal("0.00"))


def test_chunks_make_the_same_result_as_one_batch(frozen_now: datetime, tmp_path: Path) -> None:
    campaigns = CampaignFactory.create_batch(3)
    lines = [f"{campaigns[n % 3].pk},0.10,2026-03-18,{n % 12},chunk-{n}" for n in range(25)]
    path = write_csv(tmp_path, lines)

    out, err = run(path, "--chunk-size", "4")

    assert "25 lines, 25 created" in out
    assert err.count("lines") == 7  # a bar step per chunk: 6 of 4 lines, then 1
    daily = sorted(
        Campaign.objects.filter(pk__in=[c.pk for c in campaigns]).values_list("daily_spend", flat=True)
    )
    assert daily == [Decimal("0.80"), Decimal("0.80"), Decimal("0.90")]


def test_quiet_run_prints_no_progress_or_summary(
    frozen_now: datetime, tmp_path: Path, campaign: Campaign
) -> None:
    path = write_csv(tmp_path, [f"{campaign.pk},1.00,2026-03-18,9,quiet-1"])

    out, err = run(path, "--verbosity", "0")

    assert (out, err) == ("", "")
    assert Spend.objects.count() == 1


def test_missing_columns_and_missing_file_fail_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("campaign,amount\n1,2.00\n", encoding="utf-8")

    _out, _err, error = run_failing(path)
    assert "lacks campaign_id, date, hour, external_id" in str(error)

    _out, _err, error = run_failing(tmp_path / "absent.csv")
    assert "cannot read" in str(error)
