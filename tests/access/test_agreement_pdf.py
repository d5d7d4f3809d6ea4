"""The signed usage agreement as PDF: the text as stored, the signature record with each side's
SHA-256, readable by a PDF library, and only for those who may see the agreement."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from kaifang.access import service as access
from tests.access.conftest import Scene
from tests.conftest import login


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "".join(page.extract_text() for page in reader.pages)


def test_the_signed_agreement_as_pdf(client: TestClient, scene: Scene) -> None:
    app_id = scene.granted()
    agreement = scene.call("applicant", access.get_agreement, app_id)
    login(client, "applicant")
    response = client.get(f"/applications/{app_id}/agreement.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert f'filename="agreement-KF-SQ-{app_id:06d}.pdf"' in response.headers["content-disposition"]
    text = pdf_text(response.content)
    assert "空气质量监测明细" in text and "海河市生态环境局" in text
    assert text.count(agreement.sha256) == 3  # the text's digest, and the one each side signed
    assert "数据使用方（乙方）：Applicant（账号 applicant）" in text
    assert "数据提供方（甲方）：Rev（账号 rev），代表海河市生态环境局" in text
    assert "签订时间" in text and "尚未签订" not in text
    flat = re.sub(r"\s+", "", text)
    for line in agreement.text.split("\n"):  # every line of the stored text, wrapped but unchanged
        assert re.sub(r"\s+", "", line) in flat
    assert f"/applications/{app_id}/agreement.pdf" in client.get(f"/applications/{app_id}").text


def test_an_unsigned_agreement_says_so(client: TestClient, scene: Scene) -> None:
    app_id = scene.approved()
    scene.sign("applicant", app_id)
    login(client, "rev")
    text = pdf_text(client.get(f"/applications/{app_id}/agreement.pdf").content)
    assert "数据提供方（甲方）：尚未签订" in text and "Applicant（账号 applicant）" in text


def test_a_long_agreement_runs_over_pages(client: TestClient, scene: Scene) -> None:
    long_purpose = "研究空气质量与交通出行、气象条件和城市功能区之间的关系。" * 60
    app_id = int(scene.call("applicant", access.apply, scene.entry_id, scene.form(purpose=long_purpose)).id)
    scene.call("reviewer", access.accept, app_id)
    scene.call("reviewer", access.approve, app_id)
    login(client, "applicant")
    reader = PdfReader(io.BytesIO(client.get(f"/applications/{app_id}/agreement.pdf").content))
    assert len(reader.pages) >= 2
    assert "第 2 页" in reader.pages[1].extract_text()


@pytest.mark.parametrize(
    ("who", "status"), [("citizen", 404), ("other-rev", 404), ("pub", 200), ("reg", 200)]
)
def test_who_may_download_it_as_the_page(client: TestClient, scene: Scene, who: str, status: int) -> None:
    """Others get 404 as for the page; the provider's staff and the regulator see both."""
    app_id = scene.granted()
    login(client, who)
    assert client.get(f"/applications/{app_id}/agreement").status_code == status
    assert client.get(f"/applications/{app_id}/agreement.pdf").status_code == status


def test_anonymous_and_missing(client: TestClient, scene: Scene) -> None:
    app_id = scene.apply()
    assert client.get(f"/applications/{app_id}/agreement.pdf", follow_redirects=False).status_code in (
        302,
        303,
        401,
    )
    login(client, "applicant")
    assert client.get(f"/applications/{app_id}/agreement.pdf").status_code == 404  # not approved yet
    assert client.get("/applications/999999/agreement.pdf").status_code == 404
