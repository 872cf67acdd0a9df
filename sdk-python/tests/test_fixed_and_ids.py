"""gov_adapter's pure parts: fixed-length records, GB18030 widths, problems, identifiers."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from gov_adapter.fixed import Field, FixedFormatError, Layout, encoded_width  # noqa: E402
from gov_adapter.ids import credit_code_check_char, credit_code_problem  # noqa: E402
from gov_adapter.problems import Problems  # noqa: E402

LAYOUT = Layout([Field("mc", 10, title="名称"), Field("rs", 4, "number", title="人数")])


class Fixed(unittest.TestCase):
    def test_widths_count_gb18030_bytes(self):
        self.assertEqual(encoded_width("社保"), 4)
        self.assertEqual(encoded_width("A社"), 3)
        # A character outside GBK takes 4 bytes in GB18030.
        self.assertEqual(encoded_width("𠀀"), 4)

    def test_text_is_right_padded_and_numbers_zero_filled(self):
        record = LAYOUT.pack({"mc": "社保局", "rs": 7})
        self.assertEqual(record, "社保局".encode("gb18030") + b"    " + b"0007")
        self.assertEqual(LAYOUT.unpack(record), {"mc": "社保局", "rs": 7})

    def test_every_field_that_does_not_fit_is_told_at_once(self):
        problems = Problems()
        record = LAYOUT.pack({"mc": "六个汉字太长", "rs": 12345}, problems)
        self.assertEqual(len(record), 14, "still a whole record")
        self.assertEqual([(p.field, p.code) for p in problems.as_list()], [("mc", "range"), ("rs", "range")])
        self.assertIn("「名称」超出10字节", problems.as_list()[0].message)
        self.assertIn("12字节", problems.as_list()[0].message)

    def test_a_negative_or_non_numeric_number_is_a_format_problem(self):
        problems = Problems()
        LAYOUT.pack({"mc": "", "rs": -1}, problems)
        self.assertEqual([p.code for p in problems.as_list()], ["format"])

    def test_without_problems_the_first_one_raises(self):
        with self.assertRaises(FixedFormatError):
            LAYOUT.pack({"mc": "x" * 11, "rs": 1})

    def test_unpack_refuses_what_is_not_the_layout(self):
        with self.assertRaises(FixedFormatError):
            LAYOUT.unpack(b"short")
        with self.assertRaises(FixedFormatError):
            LAYOUT.unpack(b"abc       00x1")
        with self.assertRaises(FixedFormatError):
            LAYOUT.unpack(b"\xff\xff        0001")

    def test_gbk_layouts_refuse_what_gbk_cannot_hold(self):
        problems = Problems()
        Layout([Field("mc", 10)], encoding="gbk").pack({"mc": "𠀀"}, problems)
        self.assertEqual([p.code for p in problems.as_list()], ["format"])


class CreditCode(unittest.TestCase):
    def test_the_check_character(self):
        self.assertEqual(credit_code_check_char("91350100M000100Y4"), "3")
        self.assertIsNone(credit_code_problem("91350100M000100Y43"))

    def test_problems_in_chinese(self):
        self.assertEqual(credit_code_problem("91350100M000100Y44"), ("checksum", "统一社会信用代码校验位错误"))
        self.assertEqual(credit_code_problem("9135")[0], "length")
        self.assertEqual(credit_code_problem("91350100M000100YI3")[0], "format")


if __name__ == "__main__":
    unittest.main()
