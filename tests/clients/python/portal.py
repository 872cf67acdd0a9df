"""A portal written against the client openapi-python-client generates from /openapi.json.

Run by `cargo xtask clients` with the generated package on PYTHONPATH and the gateway's URLs in
GATEWAY_URL and GATEWAY_ADMIN_URL. It does what a service hall's portal does, through the
generated functions and models only (the admin API, which is not the portal's, is read with
httpx to check what the gateway recorded): the catalogue, a form and its materials (材料清单), a
lookup with a Chinese purpose and clerk, pre-review with problems (a required material missing
among them), a draft holding the two required materials (the demo's sample PDFs in
config/samples, uploaded as `application/octet-stream`) and its pre-review, an application from
that draft with an Idempotency-Key (and its repeat), the case followed to `completed` through its
event stream, a typed 404 and a typed 422.
Any surprise is an AssertionError or an exception: a non-zero exit.
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from integration_gateway_portal_api_client import AuthenticatedClient
from integration_gateway_portal_api_client.api.applications import case, case_events, pre_review
from integration_gateway_portal_api_client.api.catalogue import catalogue, form
from integration_gateway_portal_api_client.api.licences import licence
from integration_gateway_portal_api_client.api.lookups import lookup_public_security_identity
from integration_gateway_portal_api_client.api.materials import create, to_draft
from integration_gateway_portal_api_client.api.services import (
    apply_market_regulation_business_licence,
    pre_review_market_regulation_business_licence,
)
from integration_gateway_portal_api_client.models import (
    Accepted,
    Case,
    CaseStatus,
    Catalogue,
    DraftCreated,
    Error,
    ErrorCode,
    EventKind,
    Form,
    LookupAnswer,
    MarketRegulationBusinessLicenceForm,
    MarketRegulationBusinessLicenceFormLegalRepresentative,
    MaterialFormat,
    Need,
    PreReview,
    PreReviewBody,
    ProblemCode,
    PublicSecurityIdentityQuery,
    StepState,
    StoredMaterial,
)
from integration_gateway_portal_api_client.types import File

SERVICE = "market-regulation.business-licence"
CLERK = {"id": "张三", "window": "窗口 3", "hall": "鼓楼区政务服务中心"}
PURPOSE = "企业开办受理：核验法定代表人身份"
# What 营业执照设立登记 on its own needs uploaded (股东身份证明 is obtained only by 企业开办's
# identity check); 住所使用证明 may come later. The demo's sample PDF of each is in config/samples.
REQUIRED = ["articles-of-association", "shareholder-id"]
DEFERRABLE = "premises-proof"
SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"


def encoded(text: str) -> str:
    """A header value as `encodeURIComponent` makes it: UTF-8, percent-encoded."""
    return quote(text, safe="")


def clerk_headers() -> dict[str, str]:
    return {
        "x_clerk_id": encoded(CLERK["id"]),
        "x_clerk_window": encoded(CLERK["window"]),
        "x_clerk_hall": encoded(CLERK["hall"]),
    }


def chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def step(what: str) -> None:
    print(f"python portal: {what}", flush=True)


def main() -> None:
    url = os.environ["GATEWAY_URL"]
    admin_url = os.environ["GATEWAY_ADMIN_URL"]
    client = AuthenticatedClient(
        base_url=url,
        token="demo-portal-key",
        prefix="",
        auth_header_name="X-Api-Key",
        timeout=httpx.Timeout(60.0),
    )

    step("catalogue")
    found = catalogue.sync(client=client)
    assert isinstance(found, Catalogue), found
    assert SERVICE in [s.code for s in found.services]
    assert "public-security.identity" in [lookup.name for lookup in found.lookups]

    step("form")
    the_form = form.sync(code=SERVICE, client=client)
    assert isinstance(the_form, Form), the_form
    schema = the_form.schema.to_dict()
    assert "enterprise_name" in schema["properties"], schema
    assert schema["properties"]["enterprise_name"]["title"] == "企业名称"
    materials = {m.code: m for m in the_form.materials}
    assert sorted(materials) == sorted([*REQUIRED, DEFERRABLE]), materials
    articles = materials["articles-of-association"]
    assert (articles.name, articles.need) == ("公司章程", Need.REQUIRED), articles
    assert set(articles.formats) == {MaterialFormat.PDF, MaterialFormat.OFD}, articles
    assert articles.matters == [SERVICE], articles
    assert materials[DEFERRABLE].need == Need.DEFERRABLE, materials[DEFERRABLE]

    step("lookup with a Chinese purpose and clerk (percent-encoded headers)")
    answer = lookup_public_security_identity.sync(
        client=client,
        body=PublicSecurityIdentityQuery(name="李四", id_number="34052419800101001X"),
        x_lookup_purpose=encoded(PURPOSE),
        **clerk_headers(),
    )
    assert isinstance(answer, LookupAnswer), answer
    assert answer.department == "public-security"
    assert answer.result["result"] == "match", answer.result.to_dict()
    records = httpx.get(
        f"{admin_url}/admin/v1/lookups",
        headers={"Authorization": "Bearer demo-operator-token"},
    ).json()["lookups"]
    mine = [r for r in records if r["lookup"] == "public-security.identity"]
    assert mine and mine[0]["purpose"] == PURPOSE, mine
    assert mine[0]["clerk"]["id"] == CLERK["id"], mine
    assert mine[0]["clerk"]["hall"] == CLERK["hall"], mine

    step("pre-review with problems: typed form, one problem per field, in Chinese")
    bad = MarketRegulationBusinessLicenceForm(
        enterprise_name="",
        address="福州市鼓楼区五四路2号",
        legal_representative=MarketRegulationBusinessLicenceFormLegalRepresentative(
            name="李四", id_number="340524198001010010"
        ),
        registered_capital=100,
        business_scope="餐饮服务",
    )
    review = pre_review_market_regulation_business_licence.sync(client=client, body=bad)
    assert isinstance(review, PreReview), review
    assert review.ok is False
    problems = {p.field: p for p in review.problems}
    assert len(problems) == len(review.problems), "one problem per field"
    assert problems["legal_representative.id_number"].code == ProblemCode.CHECKSUM
    assert problems["enterprise_name"].code == ProblemCode.LENGTH
    for code in REQUIRED:
        assert problems[f"materials.{code}"].code == ProblemCode.REQUIRED, problems
    assert f"materials.{DEFERRABLE}" not in problems, "a deferrable material may come later"
    for p in review.problems:
        assert chinese(p.message) and "line" not in p.message, p
        assert "340524198001010010" not in p.message, "identity numbers never echo back"

    step("pre-review through the {code} route: a wrong type is one problem, in Chinese")
    loose = PreReviewBody.from_dict({**bad.to_dict(), "enterprise_name": "福州演示餐饮有限公司",
                                     "registered_capital": "lots"})
    review = pre_review.sync(code=SERVICE, client=client, body=loose)
    assert isinstance(review, PreReview), review
    on_capital = [p for p in review.problems if p.field == "registered_capital"]
    assert [(p.code, p.message) for p in on_capital] == [(ProblemCode.TYPE, "应为数字")], review
    assert all(p.field for p in review.problems), review.problems
    assert all(chinese(p.message) and "invalid type" not in p.message for p in review.problems)

    step("a draft holding the required materials, uploaded as the files' bytes")
    opened = create.sync_detailed(code=SERVICE, client=client)
    assert opened.status_code == 201, opened
    draft = opened.parsed
    assert isinstance(draft, DraftCreated) and draft.service == SERVICE, draft
    for code in REQUIRED:
        sample = SAMPLES / f"{code}.pdf"
        with sample.open("rb") as pdf:
            uploaded = to_draft.sync_detailed(
                id=draft.draft_id,
                material=code,
                client=client,
                body=File(payload=pdf, file_name=sample.name, mime_type="application/pdf"),
            )
        assert uploaded.status_code == 201, uploaded
        stored = uploaded.parsed
        assert isinstance(stored, StoredMaterial), stored
        assert (stored.code, stored.media_type) == (code, "application/pdf"), stored
        assert stored.size == sample.stat().st_size, stored
        # The very bytes of the file (hashlib has SM3 from OpenSSL).
        assert stored.sm3 == hashlib.new("sm3", sample.read_bytes()).hexdigest(), stored

    good = MarketRegulationBusinessLicenceForm(
        enterprise_name="福州客户端演示餐饮有限公司",
        address="福州市鼓楼区五四路2号",
        legal_representative=MarketRegulationBusinessLicenceFormLegalRepresentative(
            name="李四", id_number="34052419800101001X"
        ),
        registered_capital=100,
        business_scope="餐饮服务",
    )
    review = pre_review_market_regulation_business_licence.sync(
        client=client, body=good, draft=draft.draft_id
    )
    assert isinstance(review, PreReview), review
    assert review.ok and review.problems == [], review.problems
    assert review.materials.deferrable == [DEFERRABLE], review.materials

    step("apply from the draft with an Idempotency-Key and a clerk; the repeat is the same case")
    key = f"python-portal-{time.time_ns()}"
    first = apply_market_regulation_business_licence.sync_detailed(
        client=client, body=good, draft=draft.draft_id, idempotency_key=key, **clerk_headers()
    )
    assert first.status_code == 202, first
    accepted = first.parsed
    assert isinstance(accepted, Accepted), accepted
    assert "idempotent-replayed" not in first.headers
    again = apply_market_regulation_business_licence.sync_detailed(
        client=client, body=good, draft=draft.draft_id, idempotency_key=key, **clerk_headers()
    )
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true", again
    assert isinstance(again.parsed, Accepted) and again.parsed.case_id == accepted.case_id

    step("follow the case to completed through its event stream (it ends with the case)")
    stream = case_events.sync(id=accepted.case_id, client=client)
    assert isinstance(stream, str), stream
    events = []
    for message in stream.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in message.splitlines() if line and not line.startswith(":")
        )
        if "data" in fields:
            data = json.loads(fields["data"].strip())
            assert fields["event"].strip() == data["kind"], message
            events.append(data)
    kinds = [EventKind(e["kind"]) for e in events]
    assert kinds[0] == EventKind.RECEIVED and EventKind.SUBMITTED in kinds, kinds
    assert StepState(events[-1]["state"]) == StepState.APPROVED, events[-1]
    assert events[0]["clerk"] == CLERK, events[0]
    view = case.sync(id=accepted.case_id, client=client)
    assert isinstance(view, Case), view
    assert view.status == CaseStatus.COMPLETED, view.status
    credit_code = view.matters[0].outputs["credit_code"]
    assert isinstance(credit_code, str) and len(credit_code) == 18, view.matters[0].outputs
    assert view.timeline[0].clerk is not None and view.timeline[0].clerk.hall == CLERK["hall"]

    step("a typed 404")
    missing = case.sync_detailed(id="no-such-case", client=client)
    assert missing.status_code == 404, missing
    assert isinstance(missing.parsed, Error) and missing.parsed.error.code == ErrorCode.NOT_FOUND

    step("a typed 422")
    invalid = licence.sync_detailed(id="1.2.156.3005.2.x", client=client)
    assert invalid.status_code == 422, invalid
    assert isinstance(invalid.parsed, Error), invalid.parsed
    assert invalid.parsed.error.code == ErrorCode.INVALID_INPUT
    assert [f.field for f in invalid.parsed.error.fields] == ["id"], invalid.parsed
    assert invalid.parsed.error.fields[0].code in ProblemCode

    step("done")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failed:
        print(f"python portal: FAILED: {failed!r}", file=sys.stderr)
        raise
