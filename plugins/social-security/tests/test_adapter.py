"""The 社保 adapter against scripted department exchanges (gov_adapter.testing), natively.

Run: ``cargo xtask adapters`` once (it generates the bindings under target/python), then
``python3 -m unittest discover -s plugins/social-security/tests`` from the repository root —
or ``cargo xtask python-tests``, which does both.
"""

import base64
import json
import os
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path[:0] = [
    os.path.join(ROOT, "plugins", "social-security"),
    os.path.join(ROOT, "sdk-python"),
    os.path.join(ROOT, "target", "python", "bindings", "v0.3.0"),
]

import app  # noqa: E402
import protocol  # noqa: E402
from componentize_py_types import Err  # noqa: E402
from gov_adapter.testing import Exchange, Harness  # noqa: E402
from wit_world.imports import types  # noqa: E402

PAYLOAD = {
    "credit_code": "91350100M000100Y43",
    "enterprise_name": "福州演示科技有限公司",
    "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
    "address": "福州市鼓楼区五四路2号",
    "employees": 12,
    "start_date": "2026-01-05",
}


def submission(payload=PAYLOAD, key="case-1/social"):
    return types.Submission("case-1", app.MATTER, key, json.dumps(payload, ensure_ascii=False), "", [])


def answer_to(sent, fhm="0000", fhxx="受理成功", dwbh="SB2026010500000001", zt="01", cwzd="", signer="dept"):
    header = protocol.HEADER.unpack(sent.body[:32])
    body = protocol.ANSWER.pack({"fhm": fhm, "fhxx": fhxx, "dwbh": dwbh, "zt": zt, "cwzd": cwzd})
    msg = protocol.message(header["jym"], header["lsh"], body)
    sign = base64.b64encode(Harness().sign(signer, msg)).decode()
    return 200, [("X-SB-Sign", sign)], msg


def harness():
    return Harness().private_key("gateway", identity="gw").public_key("department", identity="dept")


class Submit(unittest.TestCase):
    def test_the_message_is_fixed_length_gb18030_signed_by_the_hosts_key(self):
        h = harness()
        h.expect(Exchange.post("/sbxt/jy").respond_with(answer_to))
        with h:
            receipt = app.WitWorld().submit(submission())
        sent = h.sent[0]
        self.assertEqual(len(sent.body), 32 + 292)
        self.assertEqual(sent.body[:12], b"SB01" + b"00000324")
        body = protocol.REGISTER.unpack(sent.body[32:])
        self.assertEqual(body["dwmc"], "福州演示科技有限公司")
        # 10 characters are 20 GB18030 bytes: the rest of the 100 is spaces.
        self.assertEqual(sent.body[32 + 18 : 32 + 18 + 20].decode("gb18030"), "福州演示科技有限公司")
        self.assertEqual(sent.body[32 + 38 : 32 + 118], b" " * 80)
        self.assertEqual(body["zgrs"], 12)
        self.assertEqual(sent.body[32 + 278 : 32 + 284], b"000012")
        self.assertEqual(body["cbrq"], 20260105)
        self.assertEqual(h.signed, [("gateway", sent.body)])
        self.assertEqual(base64.b64decode(sent.header("x-sb-sign")), h.sign("gw", sent.body))
        self.assertEqual(receipt.reference, "SB2026010500000001")
        self.assertEqual(receipt.state, types.StepState.ACCEPTED)

    def test_a_retry_sends_the_same_serial(self):
        h = harness()
        h.expect(Exchange.post("/sbxt/jy").respond_with(answer_to))
        h.expect(Exchange.post("/sbxt/jy").respond_with(answer_to))
        with h:
            app.WitWorld().submit(submission())
            app.WitWorld().submit(submission())
        self.assertEqual(h.sent[0].body, h.sent[1].body)
        self.assertEqual(len(str(app.serial_of("x")).zfill(20)), 20)

    def test_an_answer_changed_after_signing_is_refused(self):
        def tampered(sent):
            status, headers, body = answer_to(sent)
            return status, headers, body.replace("受理成功".encode("gb18030"), "登记完成".encode("gb18030"))

        h = harness()
        h.expect(Exchange.post("/sbxt/jy").respond_with(tampered))
        with h, self.assertRaises(Err) as caught:
            app.WitWorld().submit(submission())
        self.assertIsInstance(caught.exception.value, types.AdapterError_Protocol)
        self.assertIn("签名验证失败", caught.exception.value.value)

    def test_an_answer_signed_by_another_key_is_refused(self):
        h = harness()
        h.expect(Exchange.post("/sbxt/jy").respond_with(lambda s: answer_to(s, signer="someone-else")))
        with h, self.assertRaises(Err) as caught:
            app.WitWorld().submit(submission())
        self.assertIsInstance(caught.exception.value, types.AdapterError_Protocol)

    def test_a_field_the_department_refuses_is_the_applicants_problem_in_chinese(self):
        h = harness()
        h.expect(
            Exchange.post("/sbxt/jy").respond_with(
                lambda s: answer_to(s, fhm="1002", fhxx="职工人数为0的单位不予参保登记", dwbh="", zt="03", cwzd="zgrs")
            )
        )
        with h, self.assertRaises(Err) as caught:
            app.WitWorld().submit(submission(dict(PAYLOAD, employees=0)))
        problems = caught.exception.value
        self.assertIsInstance(problems, types.AdapterError_InvalidInput)
        self.assertEqual(
            [(p.field, p.code, p.message) for p in problems.value],
            [("employees", "rule", "职工人数为0的单位不予参保登记")],
        )

    def test_every_problem_at_once_and_nothing_sent(self):
        h = harness()
        bad = dict(PAYLOAD, credit_code="91350100M000100Y44", address="福" * 61, start_date="2026-02-30")
        with h, self.assertRaises(Err) as caught:
            app.WitWorld().submit(submission(bad))
        fields = [p.field for p in caught.exception.value.value]
        self.assertEqual(fields, ["credit_code", "start_date", "address"])
        self.assertIn("122字节", caught.exception.value.value[2].message)
        self.assertEqual(h.sent, [])

    def test_the_department_unreachable_is_worth_retrying(self):
        h = harness()
        h.expect(Exchange.post("/sbxt/jy").fail_unavailable())
        with h, self.assertRaises(Err) as caught:
            app.WitWorld().submit(submission())
        self.assertIsInstance(caught.exception.value, types.AdapterError_Unavailable)


class Status(unittest.TestCase):
    def test_registered_gives_the_number(self):
        h = harness()
        h.expect(
            Exchange.post("/sbxt/jy")
            .body(lambda b: None if b[:4] == b"SB02" and b[32:].rstrip() == b"SB2026010500000001" else f"{b!r}")
            .respond_with(lambda s: answer_to(s, fhxx="参保登记完成", zt="02"))
        )
        with h:
            report = app.WitWorld().status(app.MATTER, "SB2026010500000001")
        self.assertEqual(report.state, types.StepState.APPROVED)
        self.assertEqual(json.loads(report.outputs), {"registration_number": "SB2026010500000001"})


class Validate(unittest.TestCase):
    def test_a_wrong_check_character(self):
        problems = app.WitWorld().validate(app.MATTER, json.dumps(dict(PAYLOAD, credit_code="91350100M000100Y44")))
        self.assertEqual([(p.field, p.code) for p in problems], [("credit_code", "checksum")])

    def test_a_good_application_has_none(self):
        self.assertEqual(app.WitWorld().validate(app.MATTER, json.dumps(PAYLOAD)), [])


if __name__ == "__main__":
    unittest.main()
