"""gov_adapter: a thin helper library for department adapters written in Python.

What the Rust ``sdk`` crate gives Rust authors, for a component built with componentize-py from
the gateway's contract (``wit/v0.3.0``):

- typed calls to the host's imports, their errors already the contract's ``adapter-error``
  (:mod:`gov_adapter.host`: department HTTP, config, log, crypto with keys the host holds);
- field problems gathered at once (:class:`gov_adapter.problems.Problems`);
- GB18030 / GBK text and fixed-length records (定长报文) whose widths count encoded bytes
  (:mod:`gov_adapter.fixed`);
- identifier checks (:mod:`gov_adapter.ids`: the unified social credit code, GB 32100);
- a harness that runs scripted department exchanges without a gateway
  (:mod:`gov_adapter.testing`).

The library imports the generated bindings (``wit_world``) lazily, through their modules, so the
same code runs inside the component (the host's imports) and in native unit tests (the harness
replaces the imports' functions).

# Layout
- ``host``: the imports, typed, and the contract's errors as Python exceptions.
- ``problems``: field problems gathered, raised as one ``invalid-input``.
- ``fixed``: fixed-width fields, records and GB18030 text.
- ``ids``: identifier checks with Chinese messages.
- ``testing``: the harness (fake imports, scripted exchanges, fake host keys).
"""

__all__ = ["fixed", "host", "ids", "problems", "testing"]
