"""The 社保 (人力资源和社会保障) adapter: 单位参保登记 over fixed-length GB18030 messages signed
with SM2, written in Python and built into a component with componentize-py.

The matter ``social-security.registration`` takes an enterprise's unified data, packs the
department's ``SB01`` message, has the host sign it with the key the gateway's config names
``gateway`` (the adapter never holds it), sends it, and reads the answer only once its
signature checks out under the department's public key (``department``). ``status`` asks
``SB02`` by the department's 单位社保编号. Business refusals come inside HTTP 200 answers
(``fhm`` other than ``0000``); the field they name becomes the applicant's problem, in Chinese.

# Layout
- ``app``: the exports (this file).
- ``protocol``: the message layouts (定长报文).
- ``gov_adapter`` (sdk-python): host calls, fixed-length fields, problems, the test harness.
"""

from __future__ import annotations

import _strptime  # noqa: F401  (datetime.strptime imports it on first use: see below)
import base64
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone

import protocol
from gov_adapter import host
from gov_adapter.fixed import FixedFormatError
from gov_adapter.host import AdapterFailure
from gov_adapter.ids import credit_code_problem
from gov_adapter.problems import Problems
from wit_world import WitWorld as _World
from wit_world.imports import types

# Every module a call uses is imported above: the component has no file system at run time, so
# a module imported for the first time during a call is not found (componentize-py snapshots
# the interpreter after these imports).

DEPARTMENT = "social-security"
CONTRACT = "0.3.0"
VERSION = "0.1.0"
MATTER = "social-security.registration"
PATH = "/sbxt/jy"
#: Names of the keys in `[departments.social-security.keys]`.
SIGNING_KEY = "gateway"
DEPARTMENT_KEY = "department"

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "单位参保登记",
    "type": "object",
    "required": ["credit_code", "enterprise_name", "legal_representative", "address", "employees"],
    "properties": {
        "credit_code": {"type": "string", "title": "统一社会信用代码", "minLength": 18, "maxLength": 18},
        "enterprise_name": {"type": "string", "title": "单位名称", "minLength": 1},
        "legal_representative": {
            "type": "object",
            "title": "法定代表人",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "title": "姓名", "minLength": 1},
                "id_number": {"type": "string", "title": "公民身份号码"},
            },
        },
        "address": {"type": "string", "title": "单位地址", "minLength": 1},
        "employees": {"type": "integer", "title": "职工人数", "minimum": 0, "maximum": 999999},
        "start_date": {
            "type": "string",
            "title": "参保开始日期",
            "description": "YYYY-MM-DD；不填为受理当日（北京时间）",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        },
    },
    "examples": [
        {
            "credit_code": "91350100M000100Y43",
            "enterprise_name": "福州演示科技有限公司",
            "legal_representative": {"name": "李四"},
            "address": "福州市鼓楼区五四路2号",
            "employees": 12,
        }
    ],
}

BEIJING = timezone(timedelta(hours=8))
STATES = {
    "01": types.StepState.ACCEPTED,
    "02": types.StepState.APPROVED,
    "03": types.StepState.REJECTED,
}


def serial_of(idempotency_key: str) -> int:
    """The 20-digit 流水号 of a submission: the same for every retry of it, so the department
    (idempotent on it) sees one application."""
    return int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:9], "big") % 10**20


def _fields(payload: str, problems: Problems) -> dict:
    """The SB01 fields of a unified input, every problem with it added to ``problems``."""
    try:
        data = json.loads(payload)
    except ValueError:
        problems.add("", "format", "申请数据不是JSON")
        return {}
    code = str(data.get("credit_code", ""))
    wrong = credit_code_problem(code)
    if wrong:
        problems.add("credit_code", wrong[0], wrong[1])
    start = data.get("start_date")
    if start is None:
        start_digits = datetime.now(BEIJING).strftime("%Y%m%d")
    else:
        try:
            start_digits = datetime.strptime(str(start), "%Y-%m-%d").strftime("%Y%m%d")
        except ValueError:
            problems.add("start_date", "format", "参保开始日期应为有效日期（YYYY-MM-DD）")
            start_digits = "0"
    rep = data.get("legal_representative") or {}
    return {
        "tyshxydm": code,
        "dwmc": data.get("enterprise_name", ""),
        "fddbr": rep.get("name", "") if isinstance(rep, dict) else "",
        "dz": data.get("address", ""),
        "zgrs": data.get("employees", 0),
        "cbrq": start_digits,
    }


def _exchange(code: str, serial: int, body: bytes) -> tuple[dict, dict]:
    """Send one signed message; the answer's header and body once its signature is checked."""
    msg = protocol.message(code, serial, body)
    sign = base64.b64encode(host.sm2_sign(SIGNING_KEY, msg)).decode()
    answer = host.send(
        "POST",
        PATH,
        [("content-type", "application/octet-stream"), ("x-sb-sign", sign)],
        msg,
    )
    if answer.status >= 500:
        raise AdapterFailure.unavailable(f"社保 answered HTTP {answer.status}")
    signature = answer.header("x-sb-sign")
    try:
        der = base64.b64decode(signature or "", validate=True)
    except ValueError:
        der = b""
    if not der or not host.sm2_verify(DEPARTMENT_KEY, answer.body, der):
        # Never act on an answer the department did not sign: it may not be the department's.
        host.warn(f"社保 answer to {code} refused: its signature does not verify")
        raise AdapterFailure.protocol("社保的应答签名验证失败，应答未被采用")
    try:
        header, fields = protocol.read_answer(answer.body)
    except FixedFormatError as e:
        raise AdapterFailure.protocol(f"社保 answer unreadable: {e}") from None
    if header["lsh"] != serial:
        raise AdapterFailure.protocol("社保 answered another serial number")
    if fields["fhm"].startswith("9"):
        # The message itself was refused: our fault, not the applicant's.
        raise AdapterFailure.internal(f"社保 refused the message: {fields['fhm']} {fields['fhxx']}")
    return header, fields


class WitWorld(_World):
    def describe(self) -> types.Description:
        return types.Description(
            DEPARTMENT,
            CONTRACT,
            VERSION,
            [types.MatterInfo(MATTER, "单位参保登记", json.dumps(SCHEMA, ensure_ascii=False))],
            [],
        )

    def validate(self, matter: str, payload: str) -> list:
        if matter != MATTER:
            return [types.FieldError("", "unknown-matter", f"本部门不办理事项「{matter}」")]
        problems = Problems()
        fields = _fields(payload, problems)
        if fields:
            protocol.REGISTER.pack(fields, problems)
        return problems.field_errors()

    def submit(self, submission: types.Submission) -> types.Receipt:
        if submission.matter != MATTER:
            raise AdapterFailure.internal(f"unknown matter {submission.matter}")
        problems = Problems()
        fields = _fields(submission.payload, problems)
        body = protocol.REGISTER.pack(fields, problems) if fields else b""
        problems.raise_if_any()
        _, answer = _exchange("SB01", serial_of(submission.idempotency_key), body)
        if answer["fhm"] != "0000":
            field = protocol.UNIFIED.get(answer["cwzd"])
            if field:
                raise AdapterFailure.invalid_input(
                    Problems().add(field, "rule", answer["fhxx"]).as_list()
                )
            raise AdapterFailure.rejected(answer["fhm"], answer["fhxx"])
        return types.Receipt(
            answer["dwbh"], STATES.get(answer["zt"], types.StepState.ACCEPTED), answer["fhxx"], _outputs(answer), None
        )

    def status(self, matter: str, reference: str) -> types.StatusReport:
        if not re.fullmatch(r"[0-9A-Z]{1,20}", reference):
            raise AdapterFailure.internal("reference is not a 单位社保编号")
        body = protocol.STATUS.pack({"dwbh": reference})
        serial = serial_of(f"status:{reference}:{datetime.now(BEIJING).isoformat()}")
        _, answer = _exchange("SB02", serial, body)
        if answer["fhm"] != "0000":
            raise AdapterFailure.protocol(f"社保 does not know {reference}: {answer['fhm']}")
        state = STATES.get(answer["zt"])
        if state is None:
            raise AdapterFailure.protocol(f"社保 answered an unknown state {answer['zt']!r}")
        return types.StatusReport(reference, state, answer["fhxx"], _outputs(answer), None)

    def lookup(self, name: str, query: str) -> str:
        raise host.unsupported("lookup")

    def on_callback(self, request: types.CallbackRequest) -> types.StatusReport:
        raise host.unsupported("on-callback")

    def supplement(self, supplement: types.Supplement) -> types.Receipt:
        raise host.unsupported("supplement")

    def withdraw(self, withdrawal: types.Withdrawal) -> types.Receipt:
        raise host.unsupported("withdraw")


def _outputs(answer: dict) -> str:
    if answer["zt"] == "02":
        return json.dumps({"registration_number": answer["dwbh"]})
    return "{}"
