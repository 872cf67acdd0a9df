"""Run an adapter natively against scripted department exchanges, without a gateway.

Outside a component the generated imports (``wit_world.imports.*``) only raise
``NotImplementedError``. A :class:`Harness`, used as a context manager, replaces them for the
duration of a test: ``department_http.send`` answers from the exchanges the test scripted, in
order (the request the adapter must send, the answer the department gives); ``config.get``
answers the settings given; ``log.log`` records; ``crypto`` signs and verifies with *fake*
keys named like the department's config names them. Leaving the ``with`` block (or
:meth:`Harness.finish`) fails the test with every discrepancy at once: exchanges not made,
requests not the one expected next, headers or bodies not as asked.

Like the host:

- a request nobody scripted is answered ``forbidden`` (and recorded, so the test fails);
- a path that is not relative to the department (absolute URL, ``//``, ``..``) is ``forbidden``;
- response header names are lowercase;
- ``crypto.sign`` with a public key, or an unknown key, is ``unknown-key``.

The fake signature is ``FAKE-SM2`` + SHA-256 over the key's identity and the data: not SM2
(the harness has no SM2 and needs none), but it changes with every byte signed and with the key,
so a test sees the adapter sign the exact bytes with the right key, and an answer whose bytes
were changed after the department signed them fails to verify. :meth:`Harness.sign` gives a
test the department's signature of an answer it scripts.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

Body = Union[bytes, Callable[[bytes], bytes]]


@dataclass
class Sent:
    """A request the adapter sent: method, path, headers (as written), body bytes."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class Exchange:
    """One scripted exchange: what the adapter must send, and the department's answer.

    The answer may be computed from the request (a department echoes serial numbers):
    ``respond_with(lambda sent: (200, headers, body))``.
    """

    method: str
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body_check: Optional[Callable[[bytes], Optional[str]]] = None
    answer: Optional[Callable[[Sent], tuple[int, list[tuple[str, str]], bytes]]] = None

    @staticmethod
    def post(path: str) -> "Exchange":
        return Exchange("POST", path)

    @staticmethod
    def get(path: str) -> "Exchange":
        return Exchange("GET", path)

    def header(self, name: str, value: str) -> "Exchange":
        """The request must carry this header with this value."""
        self.headers.append((name, value))
        return self

    def body(self, check: Callable[[bytes], Optional[str]]) -> "Exchange":
        """``check(body)`` returns what is wrong with the request body, or ``None``."""
        self.body_check = check
        return self

    def body_equals(self, expected: bytes) -> "Exchange":
        return self.body(lambda b: None if b == expected else f"body {b!r} is not {expected!r}")

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> "Exchange":
        self.answer = lambda _sent: (status, headers, body)
        return self

    def respond_with(
        self, answer: Callable[[Sent], tuple[int, list[tuple[str, str]], bytes]]
    ) -> "Exchange":
        self.answer = answer
        return self

    def fail_unavailable(self) -> "Exchange":
        """The department cannot be reached for this request."""
        self.answer = None
        return self


def fake_signature(identity: str, data: bytes) -> bytes:
    """The harness's stand-in for a signature by the key ``identity`` over ``data``."""
    return b"FAKE-SM2" + hashlib.sha256(identity.encode() + b"\0" + data).digest()


@dataclass
class _Key:
    kind: str  # "private" or "public"
    identity: str


class Harness:
    """Fake imports for one test; see the module's doc."""

    def __init__(self) -> None:
        self._settings: dict[str, str] = {}
        self._keys: dict[str, _Key] = {}
        self._script: deque[Exchange] = deque()
        self._problems: list[str] = []
        self.sent: list[Sent] = []
        self.logs: list[tuple[str, str]] = []
        self.signed: list[tuple[str, bytes]] = []
        self._saved: list[tuple[object, str, object]] = []

    # -- building ---------------------------------------------------------------------------

    def setting(self, key: str, value: str) -> "Harness":
        self._settings[key] = value
        return self

    def private_key(self, name: str, identity: Optional[str] = None) -> "Harness":
        """A private key the host holds under ``name`` (signs, verifies its own signatures)."""
        self._keys[name] = _Key("private", identity or name)
        return self

    def public_key(self, name: str, identity: str) -> "Harness":
        """A public key under ``name`` verifying the signatures of ``identity``."""
        self._keys[name] = _Key("public", identity)
        return self

    def expect(self, exchange: Exchange) -> "Harness":
        self._script.append(exchange)
        return self

    def sign(self, identity: str, data: bytes) -> bytes:
        """``identity``'s signature of ``data`` (for answers a test scripts)."""
        return fake_signature(identity, data)

    # -- running ----------------------------------------------------------------------------

    def __enter__(self) -> "Harness":
        from wit_world.imports import config, crypto, department_http, log

        self._replace(department_http, "send", self._send)
        self._replace(config, "get", lambda key: self._settings.get(key))
        self._replace(log, "log", lambda level, message: self.logs.append((level.name, message)))
        self._replace(crypto, "sign", self._sign)
        self._replace(crypto, "verify", self._verify)
        self._replace(crypto, "sm3", self._no_sm3)
        return self

    def __exit__(self, kind, value, tb) -> None:
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)
        self._saved.clear()
        if kind is None:
            self.finish()

    def finish(self) -> None:
        """Fail with every discrepancy: requests not as expected, exchanges not made."""
        problems = list(self._problems)
        problems += [f"expected {e.method} {e.path}, never sent" for e in self._script]
        if problems:
            raise AssertionError("department exchanges:\n- " + "\n- ".join(problems))

    def _replace(self, module, name: str, fake) -> None:
        self._saved.append((module, name, getattr(module, name)))
        setattr(module, name, fake)

    def _send(self, request):
        from componentize_py_types import Err
        from wit_world.imports import department_http as h

        body = b"".join(
            bytes(p.value) if isinstance(p, h.BodyPart_Bytes) else b"" for p in request.body
        )
        if any(isinstance(p, h.BodyPart_Material) for p in request.body):
            self._problems.append("a material slice was sent; this harness scripts bytes only")
        sent = Sent(request.method, request.path, list(request.headers), body)
        self.sent.append(sent)
        path = request.path
        if not path.startswith("/") or path.startswith("//") or "/../" in path + "/" or "://" in path:
            self._problems.append(f"path {path!r} would be refused by the host")
            raise Err(h.HttpError_Forbidden(f"path {path!r} is not relative to the department"))
        if not self._script:
            self._problems.append(f"unexpected {sent.method} {path}")
            raise Err(h.HttpError_Forbidden("no exchange scripted"))
        e = self._script.popleft()
        if (e.method, e.path) != (sent.method, path):
            self._problems.append(f"sent {sent.method} {path}, expected {e.method} {e.path}")
        for name, value in e.headers:
            got = sent.header(name)
            if got != value:
                self._problems.append(f"{sent.method} {path}: header {name} is {got!r}, expected {value!r}")
        if e.body_check is not None:
            wrong = e.body_check(body)
            if wrong:
                self._problems.append(f"{sent.method} {path}: {wrong}")
        if e.answer is None:
            raise Err(h.HttpError_Unavailable("connection refused (scripted)"))
        status, headers, answer = e.answer(sent)
        return h.Response(status, [(k.lower(), v) for k, v in headers], answer)

    def _sign(self, key, algorithm, data):
        from componentize_py_types import Err
        from wit_world.imports import crypto

        k = self._keys.get(key)
        if k is None or k.kind != "private":
            raise Err(crypto.CryptoError_UnknownKey(key))
        self.signed.append((key, bytes(data)))
        return fake_signature(k.identity, bytes(data))

    def _verify(self, key, algorithm, data, signature):
        from componentize_py_types import Err
        from wit_world.imports import crypto

        k = self._keys.get(key)
        if k is None:
            raise Err(crypto.CryptoError_UnknownKey(key))
        if not bytes(signature).startswith(b"FAKE-SM2"):
            raise Err(crypto.CryptoError_Invalid("not a signature"))
        return bytes(signature) == fake_signature(k.identity, bytes(data))

    def _no_sm3(self, data):
        raise NotImplementedError("the harness has no SM3; script the digest the test needs")
