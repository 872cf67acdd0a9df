"""A department adapter in Python: the template (copy this folder, then rename).

It serves one matter, ``example.registration``, for a department that takes JSON over HTTP POST
and signs nothing: replace the protocol in ``submit`` and ``status`` with your department's, the
schema with your matter's, and ``DEPARTMENT`` with the department id the gateway's config uses.

Rules of a component (see docs/writing-an-adapter-in-python.md):
- import at the top every module a call uses (the component has no file system at run time);
- the class is ``WitWorld``, in the module ``app``;
- fail an export with the contract's errors (``gov_adapter.host.AdapterFailure``), never a
  bare exception (that traps, and the host answers a generic failure).
"""

from __future__ import annotations

import json

from gov_adapter import host
from gov_adapter.host import AdapterFailure
from gov_adapter.ids import credit_code_problem
from gov_adapter.problems import Problems
from wit_world import WitWorld as _World
from wit_world.imports import types

DEPARTMENT = "example"
MATTER = "example.registration"

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["credit_code", "enterprise_name"],
    "properties": {
        "credit_code": {"type": "string", "title": "统一社会信用代码"},
        "enterprise_name": {"type": "string", "title": "单位名称"},
    },
}


def _problems(data: dict) -> Problems:
    problems = Problems()
    wrong = credit_code_problem(str(data.get("credit_code", "")))
    if wrong:
        problems.add("credit_code", *wrong)
    return problems


class WitWorld(_World):
    def describe(self) -> types.Description:
        return types.Description(
            DEPARTMENT,
            "0.3.0",
            "0.1.0",
            [types.MatterInfo(MATTER, "示例登记", json.dumps(SCHEMA, ensure_ascii=False))],
            [],
        )

    def validate(self, matter: str, payload: str) -> list:
        try:
            data = json.loads(payload)
        except ValueError:
            return [types.FieldError("", "format", "申请数据不是JSON")]
        return _problems(data if isinstance(data, dict) else {}).field_errors()

    def submit(self, submission: types.Submission) -> types.Receipt:
        data = json.loads(submission.payload)
        _problems(data).raise_if_any()
        body = json.dumps(
            {"requestId": submission.idempotency_key, "creditCode": data["credit_code"]},
            ensure_ascii=False,
        ).encode()
        answer = host.send("POST", "/api/registrations", [("content-type", "application/json")], body)
        if answer.status != 200:
            raise AdapterFailure.unavailable(f"department answered HTTP {answer.status}")
        try:
            reply = json.loads(answer.body)
            number = str(reply["number"])
        except (ValueError, KeyError, TypeError):
            raise AdapterFailure.protocol("department answer unreadable") from None
        return types.Receipt(number, types.StepState.ACCEPTED, None, "{}", None)

    def status(self, matter: str, reference: str) -> types.StatusReport:
        answer = host.send("GET", f"/api/registrations/{reference}")
        try:
            done = json.loads(answer.body)["done"] is True
        except (ValueError, KeyError, TypeError):
            raise AdapterFailure.protocol("department answer unreadable") from None
        state = types.StepState.APPROVED if done else types.StepState.PROCESSING
        return types.StatusReport(reference, state, None, "{}", None)

    def lookup(self, name: str, query: str) -> str:
        raise host.unsupported("lookup")

    def on_callback(self, request: types.CallbackRequest) -> types.StatusReport:
        raise host.unsupported("on-callback")

    def supplement(self, supplement: types.Supplement) -> types.Receipt:
        raise host.unsupported("supplement")

    def withdraw(self, withdrawal: types.Withdrawal) -> types.Receipt:
        raise host.unsupported("withdraw")
