"""The host's imports, typed, and the contract's errors as exceptions.

An export that returns ``result<_, adapter-error>`` fails by raising
``componentize_py_types.Err(AdapterError_…)``; :class:`AdapterFailure` builds those, and every
call here already turns the host's own errors into them (a department that cannot be reached is
``unavailable``, a missing setting ``internal``), so an adapter's code reads as its protocol.

The bindings' modules are looked up at each call (``department_http.send``, not an imported
``send``): the harness in :mod:`gov_adapter.testing` replaces those functions in native tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

# Imported here, at the top, not where used: a component runs with no file system, so a module
# first imported during a call cannot be found. componentize-py snapshots the interpreter after
# the app's imports; everything a call uses must be imported by then.
from componentize_py_types import Err
from wit_world.imports import config, crypto, department_http, log, types


def _types():
    return types


class AdapterFailure:
    """Builders of the contract's ``adapter-error``, each an exception to raise."""

    @staticmethod
    def invalid_input(problems: Iterable) -> Exception:

        t = _types()
        return Err(
            t.AdapterError_InvalidInput([t.FieldError(p.field, p.code, p.message) for p in problems])
        )

    @staticmethod
    def rejected(code: str, message: str) -> Exception:

        t = _types()
        return Err(t.AdapterError_Rejected(t.Rejection(code, message)))

    @staticmethod
    def unavailable(message: str) -> Exception:

        return Err(_types().AdapterError_Unavailable(message))

    @staticmethod
    def timeout(message: str) -> Exception:

        return Err(_types().AdapterError_Timeout(message))

    @staticmethod
    def protocol(message: str) -> Exception:

        return Err(_types().AdapterError_Protocol(message))

    @staticmethod
    def internal(message: str) -> Exception:

        return Err(_types().AdapterError_Internal(message))


# ---- department HTTP ---------------------------------------------------------------------


@dataclass
class Response:
    """A department's answer; header names are lowercase (as the host gives them)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


def send(
    method: str, path: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
) -> Response:
    """One request to the adapter's own department (``path`` relative to its base URL).

    Refusals by the host become ``internal`` (the adapter asked for something it may not),
    an unreachable department ``unavailable``, no answer in time ``timeout``, an oversized
    answer ``protocol``.
    """
    h = department_http
    request = h.Request(method, path, list(headers), [h.BodyPart_Bytes(body)] if body else [])
    try:
        answer = h.send(request)
    except Err as e:
        err = e.value
        if isinstance(err, h.HttpError_Forbidden):
            raise AdapterFailure.internal(f"the host refused the request: {err.value}") from None
        if isinstance(err, h.HttpError_Unavailable):
            raise AdapterFailure.unavailable(f"department unreachable: {err.value}") from None
        if isinstance(err, h.HttpError_Timeout):
            raise AdapterFailure.timeout("department did not answer in time") from None
        raise AdapterFailure.protocol("department answer too large") from None
    return Response(answer.status, list(answer.headers), bytes(answer.body))


# ---- config and log ----------------------------------------------------------------------


def setting(key: str) -> Optional[str]:
    """A setting of this department (``[departments.<id>.settings]``), if set."""
    return config.get(key)


def require_setting(key: str) -> str:
    """A setting that must be set; its absence is the operator's mistake (``internal``)."""
    value = setting(key)
    if value is None or value == "":
        raise AdapterFailure.internal(f"setting `{key}` is not configured")
    return value


def _log(level_name: str, message: str) -> None:
    log.log(getattr(log.Level, level_name), message)


def debug(message: str) -> None:
    _log("DEBUG", message)


def info(message: str) -> None:
    _log("INFO", message)


def warn(message: str) -> None:
    _log("WARN", message)


def error(message: str) -> None:
    _log("ERROR", message)


# ---- crypto with keys the host holds ---------------------------------------------------------


def _crypto_failure(err) -> Exception:

    if isinstance(err, crypto.CryptoError_UnknownKey):
        return AdapterFailure.internal(f"key not configured for this department: {err.value}")
    return AdapterFailure.internal(f"crypto input refused: {err.value}")


def sm2_sign(key: str, data: bytes) -> bytes:
    """SM2-with-SM3 signature (DER) of ``data`` by the host's private key named ``key``."""

    try:
        return bytes(crypto.sign(key, crypto.SignatureAlgorithm.SM2_SM3, data))
    except Err as e:
        raise _crypto_failure(e.value) from None


def sm2_verify(key: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (DER) over ``data`` is valid under the key named ``key``. A
    signature that is not even DER is ``False``: to the adapter it is a bad signature."""

    try:
        return bool(crypto.verify(key, crypto.SignatureAlgorithm.SM2_SM3, data, signature))
    except Err as e:
        if isinstance(e.value, crypto.CryptoError_Invalid):
            return False
        raise _crypto_failure(e.value) from None


def sm3(data: bytes) -> bytes:
    """The SM3 digest of ``data``."""

    return bytes(crypto.sm3(data))


def unsupported(call: str) -> Exception:
    """The error of an export this adapter does not implement (its department has none)."""
    return AdapterFailure.internal(
        f"this adapter does not implement `{call}` (its department's protocol has none)"
    )
