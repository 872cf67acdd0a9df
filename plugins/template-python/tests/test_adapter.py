"""The template adapter against scripted exchanges: copy and change with the adapter."""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("GATEWAY_ROOT", os.path.join(HERE, "..", "..", ".."))
sys.path[:0] = [
    os.path.join(HERE, ".."),
    os.path.join(ROOT, "sdk-python"),
    os.path.join(ROOT, "target", "python", "bindings", "v0.3.0"),
]

import app  # noqa: E402
from componentize_py_types import Err  # noqa: E402
from gov_adapter.testing import Exchange, Harness  # noqa: E402
from wit_world.imports import types  # noqa: E402

PAYLOAD = {"credit_code": "91350100M000100Y43", "enterprise_name": "福州演示科技有限公司"}


def submission(payload=PAYLOAD):
    return types.Submission("case-1", app.MATTER, "key-1", json.dumps(payload), "", [])


class Template(unittest.TestCase):
    def test_submit_sends_the_request_id_and_reads_the_number(self):
        h = Harness().expect(
            Exchange.post("/api/registrations")
            .header("content-type", "application/json")
            .body(lambda b: None if json.loads(b)["requestId"] == "key-1" else f"{b!r}")
            .respond(200, [], b'{"number": "EX-1"}')
        )
        with h:
            receipt = app.WitWorld().submit(submission())
        self.assertEqual(receipt.reference, "EX-1")

    def test_a_bad_credit_code_is_told_in_chinese_and_nothing_is_sent(self):
        h = Harness()
        with h, self.assertRaises(Err) as caught:
            app.WitWorld().submit(submission(dict(PAYLOAD, credit_code="91350100M000100Y44")))
        self.assertEqual(caught.exception.value.value[0].message, "统一社会信用代码校验位错误")
        self.assertEqual(h.sent, [])


if __name__ == "__main__":
    unittest.main()
