"""Fixed-length records (定长报文) and GB18030 / GBK text.

Many department systems exchange records of fields at fixed byte offsets: text right-padded
with spaces, numbers left-padded with zeros, widths counted in the *encoded* bytes (in GB18030
a Chinese character is 2 bytes, a rare one 4). A :class:`Layout` names the fields in order;
``pack`` writes a record and reports every field that does not fit, at once; ``unpack`` reads
one and refuses anything that is not exactly the layout (a department's answer that does not
parse is a protocol fault, not a value to guess at).

Python's own codecs do the encoding (``gb18030``, ``gbk``): nothing to install.
"""

from __future__ import annotations

# The codecs, imported now: a component cannot import a module during a call (no file system
# at run time; see gov_adapter.host), and `str.encode("gb18030")` would import it on first use.
import encodings.gb18030  # noqa: F401
import encodings.gbk  # noqa: F401
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from .problems import Problems

#: The encoding of most Chinese fixed-length protocols; GBK is its 2-byte subset.
GB18030 = "gb18030"
GBK = "gbk"


def encode(text: str, encoding: str = GB18030) -> bytes:
    """``text`` in ``encoding``; a character it cannot hold raises ``UnicodeEncodeError``."""
    return text.encode(encoding)


def decode(data: bytes, encoding: str = GB18030) -> str:
    """``data`` read as ``encoding``; bytes that are not raise ``UnicodeDecodeError``."""
    return data.decode(encoding)


def encoded_width(text: str, encoding: str = GB18030) -> int:
    """How many bytes ``text`` takes in ``encoding``."""
    return len(text.encode(encoding))


class FixedFormatError(ValueError):
    """A record that is not its layout: wrong length, a number with a non-digit, bad text."""


@dataclass(frozen=True)
class Field:
    """One field: its key, its width in bytes and how it is padded.

    ``kind`` is ``"text"`` (right-padded with spaces, trailing spaces dropped when read) or
    ``"number"`` (digits, left-padded with zeros, read as ``int``). ``title`` names the field
    in problems (the applicant's words); ``path`` is the unified input's field those problems
    are about (defaults to ``name``).
    """

    name: str
    width: int
    kind: str = "text"
    title: str = ""
    path: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in ("text", "number"):
            raise ValueError(f"field {self.name}: kind must be text or number")
        if self.width <= 0:
            raise ValueError(f"field {self.name}: width must be positive")


class Layout:
    """Fields in order, packed back to back."""

    def __init__(self, fields: Iterable[Field], encoding: str = GB18030) -> None:
        self.fields = tuple(fields)
        self.encoding = encoding
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be distinct")

    @property
    def width(self) -> int:
        return sum(f.width for f in self.fields)

    def pack(self, values: Mapping[str, object], problems: Optional[Problems] = None) -> bytes:
        """The record of ``values`` (one per field). Every value that does not fit is added to
        ``problems`` (with the field's ``path``, code ``range`` or ``format``, a Chinese
        message); without ``problems`` the first one raises :class:`FixedFormatError`. A field
        with a problem is written blank so the other fields can still be checked."""
        found = problems if problems is not None else Problems()
        out = bytearray()
        for f in self.fields:
            out += self._field(f, values.get(f.name, ""), found)
        if problems is None and found:
            raise FixedFormatError(found.as_list()[0].message)
        return bytes(out)

    def _field(self, f: Field, value: object, problems: Problems) -> bytes:
        title = f.title or f.name
        path = f.path or f.name
        if f.kind == "number":
            text = str(value) if value not in (None, "") else "0"
            if not text.isdigit() or not text.isascii():
                problems.add(path, "format", f"「{title}」应为非负整数")
                return b"0" * f.width
            if len(text) > f.width:
                problems.add(path, "range", f"「{title}」最多{f.width}位数字")
                return b"0" * f.width
            return text.rjust(f.width, "0").encode("ascii")
        text = "" if value is None else str(value)
        try:
            data = text.encode(self.encoding)
        except UnicodeEncodeError:
            problems.add(path, "format", f"「{title}」含有无法以{self.encoding.upper()}编码的字符")
            return b" " * f.width
        if len(data) > f.width:
            problems.add(
                path,
                "range",
                f"「{title}」超出{f.width}字节（{self.encoding.upper()}编码后{len(data)}字节，汉字计2字节）",
            )
            return b" " * f.width
        return data + b" " * (f.width - len(data))

    def unpack(self, data: bytes) -> dict:
        """The values of one record that is exactly this layout."""
        if len(data) != self.width:
            raise FixedFormatError(f"record of {len(data)} bytes, the layout has {self.width}")
        values: dict = {}
        at = 0
        for f in self.fields:
            raw = data[at : at + f.width]
            at += f.width
            if f.kind == "number":
                if not raw.isdigit():
                    raise FixedFormatError(f"field {f.name}: not digits")
                values[f.name] = int(raw)
            else:
                try:
                    values[f.name] = raw.decode(self.encoding).rstrip(" ")
                except UnicodeDecodeError as e:
                    raise FixedFormatError(f"field {f.name}: not {self.encoding}") from e
        return values
