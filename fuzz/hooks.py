"""Schemathesis hooks (SCHEMATHESIS_HOOKS=fuzz/hooks.py): ids the schema alone would never generate.

The red-team pass found GET /users/<24 hex>%0A to be a 500 (`$` matches before a final newline). About a third of
the cases of an operation with path parameters get one with trailing whitespace, a newline or a NUL,
either a well-formed 24-hex id or the generated value; each must be answered with a documented 4xx.
Lone surrogates are sent by fuzz/run.py's crafted pass instead: schemathesis re-validates every case
with a validator that cannot hold them.
"""

import schemathesis
from hypothesis import strategies as st

TRAILING = st.sampled_from(["\n", "\r\n", "\r", " ", "\t", "\x00", "\u00a0", "\u2028"])
HEX_ID = st.from_regex(r"\A[0-9a-f]{24}\Z")


def _with_trailing_id(case, name: str, hex_id: str, trailing: str, keep_generated: bool):
    value = str(case.path_parameters[name]) if keep_generated else hex_id
    case.path_parameters = {**case.path_parameters, name: value + trailing}
    return case


@schemathesis.hook
def flatmap_case(context, case):
    if not case.path_parameters:
        return st.just(case)
    crafted = st.builds(
        lambda name, hex_id, trailing, keep: _with_trailing_id(case, name, hex_id, trailing, keep),
        st.sampled_from(sorted(case.path_parameters)),
        HEX_ID,
        TRAILING,
        st.booleans(),
    )
    return st.one_of(st.just(case), st.just(case), crafted)
