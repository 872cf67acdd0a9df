"""社保's fixed-length messages (定长报文), GB18030, as PROTOCOLS.md describes them.

A message is a 32-byte header (交易码 4, 报文总长度 8, 流水号 20) and its transaction's body;
widths count GB18030 bytes. Requests and answers are signed with SM2 (``X-SB-Sign``, base64 of
the DER signature over the message's bytes): requests by the gateway's key, answers by the
department's.
"""

from __future__ import annotations

from gov_adapter.fixed import Field, Layout

HEADER = Layout(
    [
        Field("jym", 4, title="交易码"),
        Field("bwcd", 8, "number", title="报文总长度"),
        Field("lsh", 20, "number", title="流水号"),
    ]
)

#: 单位参保登记. ``path`` is the unified input's field each is about (for problems).
REGISTER = Layout(
    [
        Field("tyshxydm", 18, title="统一社会信用代码", path="credit_code"),
        Field("dwmc", 100, title="单位名称", path="enterprise_name"),
        Field("fddbr", 40, title="法定代表人", path="legal_representative.name"),
        Field("dz", 120, title="单位地址", path="address"),
        Field("zgrs", 6, "number", title="职工人数", path="employees"),
        Field("cbrq", 8, "number", title="参保开始日期", path="start_date"),
    ]
)

#: 登记状态查询.
STATUS = Layout([Field("dwbh", 20, title="单位社保编号")])

#: Every answer's body.
ANSWER = Layout(
    [
        Field("fhm", 4, title="返回码"),
        Field("fhxx", 80, title="返回信息"),
        Field("dwbh", 20, title="单位社保编号"),
        Field("zt", 2, title="状态"),
        Field("cwzd", 20, title="出错字段"),
    ]
)

#: The department's field names → the unified input's.
UNIFIED = {f.name: f.path for f in REGISTER.fields}


def message(code: str, serial: int, body: bytes) -> bytes:
    """A whole message: header and body."""
    total = HEADER.width + len(body)
    return HEADER.pack({"jym": code, "bwcd": total, "lsh": serial}) + body


def read_answer(data: bytes) -> tuple[dict, dict]:
    """``(header, body)`` of an answer; raises ``FixedFormatError`` when it is not one."""
    from gov_adapter.fixed import FixedFormatError

    if len(data) != HEADER.width + ANSWER.width:
        raise FixedFormatError(f"answer of {len(data)} bytes")
    header = HEADER.unpack(data[: HEADER.width])
    if header["bwcd"] != len(data):
        raise FixedFormatError("declared length is not the answer's")
    return header, ANSWER.unpack(data[HEADER.width :])
