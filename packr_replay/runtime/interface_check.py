"""Does an instance implement an interface? (packr's ``interface_check``)

packr 0.7.0 checks that the instance exports ``memory`` and every function the
interface declares, each with the wasm signature its convention needs. Its own check
still expects the legacy ``(i32, i32) -> i64`` Graph-ABI signature (``() -> ()`` for a
function with neither parameters nor results), which no real packr guest has: the
packr ABI is ``(i32, i32, i32, i32) -> i32`` for every function. So the default here is
the real ABI, and ``legacy=True`` runs packr's check exactly.

The interface is what this project reads instead of Pact text (parsing Pact/WIT is
deliberately left out): a package's metadata (its exports), or declared
:class:`~packr_replay.abi.metadata.FunctionSig`\\ s, or bare function names. A declared
export is found under ``interface.name`` or its bare name, as real guests do both.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import wasmtime

from ..abi.metadata import FunctionSig, PackageMetadata, wasm_export_candidates
from ..errors import InterfaceError
from .base import fmt_sig

if TYPE_CHECKING:
    from .instance import Instance

__all__ = ["ExpectedSignature", "validate_instance_implements_interface"]


class ExpectedSignature(StrEnum):
    """The wasm signature a function must be exported with."""

    PACKR_ABI = "(i32, i32, i32, i32) -> (i32)"  # every packr import and export
    GRAPH_ABI = "(i32, i32) -> i64"  # packr 0.7.0's legacy check, with params or results
    NO_ARGS_NO_RESULTS = "() -> ()"  # the legacy check, with neither

    def matches(self, signature: tuple[tuple[str, ...], tuple[str, ...]]) -> bool:
        return signature == _SIGNATURES[self]


_SIGNATURES = {
    ExpectedSignature.PACKR_ABI: (("i32", "i32", "i32", "i32"), ("i32",)),
    ExpectedSignature.GRAPH_ABI: (("i32", "i32"), ("i64",)),
    ExpectedSignature.NO_ARGS_NO_RESULTS: ((), ()),
}

Interface = PackageMetadata | Iterable[FunctionSig | str]


def expected_signature_for(func: FunctionSig | str, *, legacy: bool) -> ExpectedSignature:
    if not legacy:
        return ExpectedSignature.PACKR_ABI
    if isinstance(func, FunctionSig) and not func.params and not func.results:
        return ExpectedSignature.NO_ARGS_NO_RESULTS
    return ExpectedSignature.GRAPH_ABI


def validate_instance_implements_interface(
    instance: Instance, interface: Interface | Any, *, legacy: bool = False
) -> None:
    """Raise :class:`~packr_replay.errors.InterfaceError` unless ``instance`` implements
    ``interface``: ``MissingMemory`` (no exported ``memory``), then, function by
    function in declaration order, ``MissingFunction`` or ``SignatureMismatch`` (whose
    ``actual`` is the signature found, where packr says "different signature")."""
    if not isinstance(instance._exports_get("memory"), wasmtime.Memory):
        raise InterfaceError("MissingMemory")
    funcs = interface.exports if isinstance(interface, PackageMetadata) else interface
    for func in funcs:
        if not isinstance(func, (FunctionSig, str)):
            raise TypeError(
                f"an interface lists FunctionSig or str items, got {type(func).__name__}"
            )
        expected = expected_signature_for(func, legacy=legacy)
        names = (func,) if isinstance(func, str) else wasm_export_candidates(func)
        found = [(n, instance._exports_get(n)) for n in names]
        present = [(n, f) for n, f in found if f is not None]
        name = names[0]
        if not present:
            raise InterfaceError("MissingFunction", name)
        funcs_found = [(n, f) for n, f in present if isinstance(f, wasmtime.Func)]
        # types from the module's bytes (``sig``): wasmtime-py aborts printing a v128
        if any(expected.matches(instance._signature(n)) for n, _ in funcs_found):
            continue
        actual = (
            fmt_sig(instance._signature(funcs_found[0][0]))
            if funcs_found
            else f"a {type(present[0][1]).__name__.lower()}, not a function"
        )
        raise InterfaceError("SignatureMismatch", present[0][0], str(expected), actual)
