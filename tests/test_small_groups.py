"""Small groups pooled for roles without personal data (cx360.privacy.small_groups): groups of fewer
than k go into `other`, smaller counts show as `< k`, and the rates of a withheld count go with it."""

from __future__ import annotations

from cx360.funnels.compute import Report, Step
from cx360.privacy.small_groups import Few, pooled


def test_small_districts_pool_into_other_and_stay_withheld_while_small():
    report = {
        "visitors": 14,
        "catchment": [
            {"district": "Centre", "visitors": 9, "share": 0.64},
            {"district": "Village", "visitors": 1, "share": 0.07},
            {"district": "Hamlet", "visitors": 2, "share": 0.14},
            {"district": "Suburb", "visitors": 2, "share": 0.14},
        ],
        "dwell": {"visits_with_dwell": 3, "minutes": {"p50": 40.0}, "histogram": [{"bucket": "<15", "visits": 0}]},
    }
    shown = pooled(report, 5)
    assert shown["visitors"] == 14
    assert shown["catchment"] == [
        {"district": "Centre", "visitors": 9, "share": 0.64},
        {"district": "other", "visitors": 5, "share": None},
    ]
    assert shown["dwell"] == {
        "visits_with_dwell": Few(5),
        "minutes": {"p50": None},
        "histogram": [{"bucket": "<15", "visits": 0}],
    }
    assert str(Few(5)) == "< 5"
    assert pooled(report, 6)["catchment"][1] == {"district": "other", "visitors": Few(6), "share": None}


def test_a_funnels_small_breakdown_groups_pool_and_its_small_steps_are_withheld():
    def steps(*entered):
        return [Step(i + 1, "c", n, n, None, 60.0) for i, n in enumerate(entered)]

    report = Report(
        "f", "7d", steps(20, 12, 3), "channel", {"web": steps(17, 10, 2), "app": steps(2, 1, 1), "sms": steps(1, 1, 0)}
    )
    shown = pooled(report, 5)
    assert [s.entered for s in shown.steps] == [20, 12, Few(5)]
    assert shown.steps[2].median_seconds_from_previous is None and shown.steps[1].median_seconds_from_previous == 60.0
    assert list(shown.groups) == ["web", "other"]
    assert [s.entered for s in shown.groups["other"]] == [Few(5)] * 3  # 3, 2 and 1 people
    assert pooled(report, 1) == report
