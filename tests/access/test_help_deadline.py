"""The help centre states the Art. 10 counting rule with the worked examples the code computes, and
every application page links to it."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from kaifang.access import service as access
from kaifang.access.workdays import Calendar, due_date
from tests.access.conftest import Scene
from tests.conftest import login

EXAMPLES = [(date(2026, 9, 30), date(2026, 10, 9)), (date(2026, 10, 9), date(2026, 10, 12))]
EXAMPLES += [(date(2026, 2, 13), date(2026, 2, 24)), (date(2026, 12, 30), date(2027, 1, 4))]


@pytest.mark.parametrize(("accepted", "due"), EXAMPLES)
def test_each_worked_example_is_on_the_help_page_as_computed(
    client: TestClient, accepted: date, due: date
) -> None:
    assert due_date(Calendar(), accepted).day == due
    row = client.get("/help").text.split(f"<tr><td>{accepted:%Y-%m-%d}", 1)[1].split("</tr>", 1)[0]
    assert f"<td>{due:%Y-%m-%d}" in row


def test_the_rule_is_stated_and_linked(client: TestClient, scene: Scene) -> None:
    page = client.get("/help").text
    assert 'id="deadline"' in page and "受理之次日起的第一个工作日为第一日" in page
    assert "调休上班" in page and "chinesecalendar" in page and "按推定节假日计算" in page
    app_id = scene.apply()
    scene.call("reviewer", access.accept, app_id)
    login(client, "applicant")
    assert 'href="/help#deadline"' in client.get(f"/applications/{app_id}").text
