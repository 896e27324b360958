"""Build the example guests: C sources in ``src/`` -> ``<name>.wasm`` beside this file.

    python examples/guests/build.py              # rebuild every guest in place
    python examples/guests/build.py echo sexpr   # only these
    python examples/guests/build.py --out DIR    # write the .wasm files elsewhere
    python examples/guests/build.py --check      # rebuild in a temp dir, compare bytes

Each guest's ``__pack_types`` blob (spec §6.1-6.2) is generated here from the
declarations in ``GUESTS``: the package-metadata record is built as a packr Value,
encoded with ``packr_replay.abi.encode`` and written into a generated C header
(``pack_types.h``, in a scratch directory) that the guest includes.

Builds are reproducible: the compiler is pinned (ziglang 0.17.1, checked), sources are
compiled in a fixed order with fixed flags, and the output is stripped, so it holds no
paths, timestamps or build ids. The same inputs give byte-identical ``.wasm`` files.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import importlib.metadata
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
INCLUDE = HERE / "include"

ZIG_VERSION = "0.17.1"

# --------------------------------------------------------------------- type-desc

#: A type-desc (spec §6.2) in a small tuple language:
#: a name ("s64", "string", "value", ...), ("list", T), ("option", T), ("result", O, E),
#: ("tuple", (T, ...)), ("record", name, ((field, T), ...)),
#: ("variant", name, ((case, T | None), ...)).
TypeDesc = Union[str, tuple]  # noqa: UP007 - a recursive alias reads better this way

#: type-desc variant tags by primitive name; 14-19 are the compound cases, 20 is value.
PRIMITIVE_TAGS = {
    name: tag
    for tag, name in enumerate(
        ["bool", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "f32", "f64", "char", "string", "flags"]
    )
}
VALUE_TAG = 20


@dataclass(frozen=True)
class Func:
    """One declared import or export: ``interface.name(params) -> results``."""

    interface: str
    name: str
    params: tuple[tuple[str, TypeDesc], ...] = ()
    results: tuple[TypeDesc, ...] = ()


@dataclass(frozen=True)
class Guest:
    """A guest module: its sources, declared interface and link layout."""

    name: str
    imports: tuple[Func, ...] = ()
    exports: tuple[Func, ...] = ()
    #: "package": v0.7-style (exports memory, 1 MiB stack first, heap in own memory).
    #: "fixed-base": spec §9 (imports env.memory and pack:alloc, data at 0xD0000).
    layout: str = "package"
    #: Wasm exports the module has beyond the declared ones (e.g. raw helpers).
    extra_exports: tuple[str, ...] = field(default=())

    @property
    def sources(self) -> list[Path]:
        return [SRC / f"{self.name}.c", SRC / "cgrf.c"]


def _sexpr_type() -> TypeDesc:
    # The recursive reference inside lst(list<sexpr>) is `self`, which packr's
    # metadata writes as `value` (spec §6.2).
    return (
        "variant",
        "sexpr",
        (
            ("sym", "string"),
            ("num", "s64"),
            ("float", "f64"),
            ("str", "string"),
            ("lst", ("list", "value")),
            ("bool", "bool"),
            ("nil", None),
            ("err", "string"),
        ),
    )


_REPORT = (
    "record",
    "report",
    (
        ("greeting", "string"),
        ("time", "u64"),
        ("roll", "u64"),
        ("user", ("option", "string")),
        ("lucky", "bool"),
    ),
)
_REQUEST = (
    "variant",
    "request",
    (
        ("get", "string"),
        # The payload on the wire is two values (key, value); a case-desc holds one
        # type, so the pair is described as a tuple.
        ("put", ("tuple", ("string", "string"))),
        ("delete", "string"),
        ("count", None),
    ),
)
_RESPONSE = (
    "variant",
    "response",
    (("value", ("option", "string")), ("ok", None), ("count", "u64"), ("error", "string")),
)


def _values(interface: str, *names: str) -> tuple[Func, ...]:
    return tuple(Func(interface, n, (("input", "value"),), ("value",)) for n in names)


GUESTS: dict[str, Guest] = {
    g.name: g
    for g in (
        Guest(
            "clock_actor",
            imports=(
                Func("demo:host/clock", "now", (), ("u64",)),
                Func("demo:host/random", "next", (("bound", "u64"),), ("u64",)),
                Func("demo:host/env", "get", (("name", "string"),), (("option", "string"),)),
                Func("demo:host/log", "write", (("message", "string"),), ()),
            ),
            exports=(Func("", "run", (("input", "value"),), (_REPORT,)),),
        ),
        Guest(
            "sexpr",
            imports=(
                Func("sexpr:host/env", "lookup", (("name", "string"),), (("option", _sexpr_type()),)),
            ),
            exports=(Func("", "eval", (("expr", _sexpr_type()),), (_sexpr_type(),)),),
        ),
        Guest(
            "kv_actor",
            imports=(
                Func("kv:store/kv", "get", (("key", "string"),), (("option", "string"),)),
                Func("kv:store/kv", "set", (("key", "string"), ("value", "string")), ("bool",)),
                Func("kv:store/kv", "delete", (("key", "string"),), ("bool",)),
            ),
            exports=(
                Func("", "init", (("config", ("record", "config", (("namespace", "string"),))),), ()),
                Func("", "handle", (("request", _REQUEST),), (_RESPONSE,)),
            ),
        ),
        Guest(
            "hostile",
            imports=_values("hostile:host/sink", "take"),
            exports=_values(
                "",
                "trap",
                "spin",
                "fail",
                "garbage_out",
                "bad_out_ptr",
                "huge_out_len",
                "import_garbage",
                "import_oob",
                "import_bad_slots",
                "import_echo",
                "recurse",
                "grow",
            ),
        ),
        Guest("echo", exports=_values("", "echo", "transform")),
        Guest(
            "bench",
            # bench:host/raw.noop is a raw (i32)->i32 import: raw imports are not part
            # of packr metadata.
            imports=(
                Func("bench:host/math", "inc", (("i", "s64"),), ("s64",)),
                Func("bench:host/text", "echo", (("s", "string"),), ("string",)),
            ),
            exports=(
                Func("", "calls", (("n", "s64"),), ("s64",)),
                Func("", "raw_calls", (("n", "s64"),), ("s64",)),
                Func("", "nothing", (("input", "value"),), ()),
                Func("", "spin", (("k", "s64"),), ("s64",)),
                Func("", "work_calls", (("n", "s64"), ("k", "s64")), ("s64",)),
                Func("", "text_calls", (("n", "s64"), ("size", "s64")), ("s64",)),
            ),
        ),
        Guest(
            "logger",
            # host.log, host.alloc and demo:raw/entropy.fill are raw imports: raw
            # imports are not part of packr metadata.
            exports=(
                Func("", "process", (("input", "value"),), ("value",)),
                Func("", "token", (("n", "u32"),), ("string",)),
            ),
        ),
        Guest(
            "host_actor",
            imports=(
                Func("theater:simple/runtime", "log", (("msg", "string"),), ()),
                Func("math", "double", (("n", "s64"),), ("s64",)),
            ),
            exports=_values("", "process"),
            layout="fixed-base",
            extra_exports=("__heap_base", "__data_end"),
        ),
    )
}

# ------------------------------------------------------------ metadata values


def _abi():  # type: ignore[no-untyped-def]
    # Imported lazily so that `--help` works without the package installed.
    import packr_replay.abi as abi

    return abi


def _hashing():  # type: ignore[no-untyped-def]
    try:
        from packr_replay.abi import hashing
    except ImportError:
        return _LocalHashing
    return hashing


class _LocalHashing:
    """Spec §6.3 hashing, for a package without ``packr_replay.abi.hashing``."""

    PRIMITIVE_HASHES: ClassVar[dict[str, bytes]] = {
        name: bytes([0, tag + 1]) + bytes(30) for name, tag in PRIMITIVE_TAGS.items()
    }
    HASH_SELF_REF = b"\xff\xff" + bytes(30)

    @staticmethod
    def _digest(*parts: bytes) -> bytes:
        return hashlib.sha256(b"".join(parts)).digest()

    @staticmethod
    def _str(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<I", len(data)) + data

    @classmethod
    def hash_list(cls, t: bytes) -> bytes:
        return cls._digest(b"\x10", t)

    @classmethod
    def hash_option(cls, t: bytes) -> bytes:
        return cls._digest(b"\x11", t)

    @classmethod
    def hash_result(cls, ok: bytes, err: bytes) -> bytes:
        return cls._digest(b"\x12", ok, err)

    @classmethod
    def hash_tuple(cls, items: list[bytes]) -> bytes:
        return cls._digest(b"\x13", struct.pack("<I", len(items)), *items)

    @classmethod
    def hash_record(cls, fields: list[tuple[str, bytes]]) -> bytes:
        return cls._digest(b"\x14", struct.pack("<I", len(fields)), *(cls._str(n) + h for n, h in fields))

    @classmethod
    def hash_variant(cls, cases: list[tuple[str, bytes | None]]) -> bytes:
        parts = (cls._str(n) + (b"\x00" if h is None else b"\x01" + h) for n, h in cases)
        return cls._digest(b"\x15", struct.pack("<I", len(cases)), *parts)

    @classmethod
    def hash_function(cls, params: list[bytes], results: list[bytes]) -> bytes:
        n = struct.pack
        return cls._digest(b"\x16", n("<I", len(params)), *params, n("<I", len(results)), *results)

    @classmethod
    def hash_interface(cls, name: str, types: list[tuple[str, bytes]], funcs: list[tuple[str, bytes]]) -> bytes:
        parts = [cls._str(name), struct.pack("<I", len(types)), *(cls._str(n) + h for n, h in types)]
        parts += [struct.pack("<I", len(funcs)), *(cls._str(n) + h for n, h in funcs)]
        return cls._digest(b"\x17", *parts)


def _has_metadata_module() -> bool:
    try:
        import packr_replay.abi.metadata  # noqa: F401
    except ImportError:
        return False
    return True


def type_desc_value(t: TypeDesc):  # type: ignore[no-untyped-def]
    """The packr Value of a type-desc: Variant("type-desc", case, tag, payload)."""
    abi = _abi()
    record0, variant0 = abi.ValueType.record(""), abi.ValueType.variant("")

    def variant(case: str, tag: int, *payload) -> object:  # type: ignore[no-untyped-def]
        return abi.Variant("type-desc", case, tag, payload)

    if isinstance(t, str):
        if t == "value":
            return variant("value", VALUE_TAG)
        return variant(t, PRIMITIVE_TAGS[t])
    kind = t[0]
    if kind == "list":
        return variant("list", 14, type_desc_value(t[1]))
    if kind == "option":
        return variant("option", 15, type_desc_value(t[1]))
    if kind == "result":
        return variant(
            "result",
            16,
            abi.Record("result-desc", [("ok", type_desc_value(t[1])), ("err", type_desc_value(t[2]))]),
        )
    if kind == "record":
        fields = [
            abi.Record("field-desc", [("name", abi.String(n)), ("type", type_desc_value(ft))])
            for n, ft in t[2]
        ]
        return variant(
            "record",
            17,
            abi.Record("record-desc", [("name", abi.String(t[1])), ("fields", abi.List(record0, fields))]),
        )
    if kind == "variant":
        cases = [
            abi.Record(
                "case-desc",
                [
                    ("name", abi.String(n)),
                    ("payload", abi.Option(variant0, None if ct is None else type_desc_value(ct))),
                ],
            )
            for n, ct in t[2]
        ]
        return variant(
            "variant",
            18,
            abi.Record("variant-desc", [("name", abi.String(t[1])), ("cases", abi.List(record0, cases))]),
        )
    if kind == "tuple":
        return variant("tuple", 19, abi.List(variant0, [type_desc_value(x) for x in t[1]]))
    raise ValueError(f"unknown type-desc {t!r}")


def type_hash(t: TypeDesc, h: Any = None) -> bytes:
    """Structural hash of a type-desc (spec §6.3): names of types excluded, field and
    case names included and sorted, ``value`` as the self-reference constant. ``h`` is
    the hashing module (default: the package's, else the local one)."""
    h = h or _hashing()

    if isinstance(t, str):
        return h.HASH_SELF_REF if t == "value" else h.PRIMITIVE_HASHES[t]
    kind = t[0]
    if kind == "list":
        return h.hash_list(type_hash(t[1], h))
    if kind == "option":
        return h.hash_option(type_hash(t[1], h))
    if kind == "result":
        return h.hash_result(type_hash(t[1], h), type_hash(t[2], h))
    if kind == "tuple":
        return h.hash_tuple([type_hash(x, h) for x in t[1]])
    if kind == "record":
        return h.hash_record(sorted((n, type_hash(ft, h)) for n, ft in t[2]))
    if kind == "variant":
        return h.hash_variant(sorted((n, None if ct is None else type_hash(ct, h)) for n, ct in t[2]))
    raise ValueError(f"unknown type-desc {t!r}")


def interface_hashes(funcs: Iterable[Func], h: Any = None) -> list[tuple[str, bytes]]:
    """One hash per interface, sorted by interface name; functions sorted by name."""
    h = h or _hashing()

    by_iface: dict[str, list[Func]] = {}
    for f in funcs:
        by_iface.setdefault(f.interface, []).append(f)
    out = []
    for iface in sorted(by_iface):
        bindings = sorted(
            (
                f.name,
                h.hash_function([type_hash(t, h) for _, t in f.params], [type_hash(t, h) for t in f.results]),
            )
            for f in by_iface[iface]
        )
        out.append((iface, h.hash_interface(iface, [], bindings)))
    return out


def _func_value(f: Func):  # type: ignore[no-untyped-def]
    abi = _abi()
    params = [
        abi.Record("param-sig", [("name", abi.String(n)), ("type", type_desc_value(t))])
        for n, t in f.params
    ]
    return abi.Record(
        "function-sig",
        [
            ("interface", abi.String(f.interface)),
            ("name", abi.String(f.name)),
            ("params", abi.List(abi.ValueType.record(""), params)),
            ("results", abi.List(abi.ValueType.variant(""), [type_desc_value(t) for t in f.results])),
        ],
    )


def _hash_value(name: str, digest: bytes):  # type: ignore[no-untyped-def]
    abi = _abi()
    words = [int.from_bytes(digest[i : i + 8], "little") for i in range(0, 32, 8)]
    return abi.Record(
        "interface-hash", [("name", abi.String(name)), ("hash", abi.Tuple(*map(abi.U64, words)))]
    )


def independent_metadata_value(guest: Guest | str, *, local_hashing: bool = False):  # type: ignore[no-untyped-def]
    """The package-metadata record built here by hand: the fallback when the package's
    ``packr_replay.abi.metadata`` is unavailable, and an independent cross-check of it
    (``local_hashing=True`` avoids ``packr_replay.abi.hashing`` too)."""
    g = GUESTS[guest] if isinstance(guest, str) else guest
    h = _LocalHashing if local_hashing else None
    abi = _abi()
    record0 = abi.ValueType.record("")
    return abi.Record(
        "package-metadata",
        [
            ("imports", abi.List(record0, [_func_value(f) for f in g.imports])),
            ("exports", abi.List(record0, [_func_value(f) for f in g.exports])),
            ("import-hashes", abi.List(record0, [_hash_value(*x) for x in interface_hashes(g.imports, h)])),
            ("export-hashes", abi.List(record0, [_hash_value(*x) for x in interface_hashes(g.exports, h)])),
        ],
    )


def to_type_desc(t: TypeDesc):  # type: ignore[no-untyped-def]
    """Our tuple notation as a ``packr_replay.abi.metadata.TypeDesc``."""
    from packr_replay.abi.metadata import TypeDesc as Desc

    if isinstance(t, str):
        return Desc.VALUE if t == "value" else Desc.primitive(t)
    kind = t[0]
    if kind in ("list", "option"):
        return getattr(Desc, kind)(to_type_desc(t[1]))
    if kind == "result":
        return Desc.result(to_type_desc(t[1]), to_type_desc(t[2]))
    if kind == "tuple":
        return Desc.tuple(*map(to_type_desc, t[1]))
    if kind == "record":
        return Desc.record(t[1], [(n, to_type_desc(ft)) for n, ft in t[2]])
    if kind == "variant":
        return Desc.variant(t[1], [(n, None if ct is None else to_type_desc(ct)) for n, ct in t[2]])
    raise ValueError(f"unknown type-desc {t!r}")


def package_metadata(guest: Guest | str):  # type: ignore[no-untyped-def]
    """A guest's declarations as ``packr_replay.abi.metadata.PackageMetadata``, with the
    interface hashes a guest embeds."""
    from packr_replay.abi.metadata import FunctionSig, PackageMetadata, ParamSig

    g = GUESTS[guest] if isinstance(guest, str) else guest

    def sig(f: Func):  # type: ignore[no-untyped-def]
        params = tuple(ParamSig(n, to_type_desc(t)) for n, t in f.params)
        return FunctionSig(f.interface, f.name, params, tuple(map(to_type_desc, f.results)))

    return PackageMetadata.build(map(sig, g.imports), map(sig, g.exports))


def metadata_value(guest: Guest | str):  # type: ignore[no-untyped-def]
    """The guest-form ``package-metadata`` record (spec §6.2) of a guest."""
    g = GUESTS[guest] if isinstance(guest, str) else guest
    if not _has_metadata_module():
        return independent_metadata_value(g)
    return package_metadata(g).to_value()


def metadata_bytes(guest: Guest | str) -> bytes:
    """The CGRF bytes a guest's ``__pack_types`` returns."""
    return bytes(_abi().encode(metadata_value(guest)))


def pack_types_header(guest: Guest) -> str:
    blob = metadata_bytes(guest)
    lines = [
        f"/* Generated by examples/guests/build.py: the package metadata of {guest.name}",
        " * (spec 6.2) as CGRF bytes, returned by __pack_types. Do not edit. */",
        "#include <stdint.h>",
        f"static const uint8_t CGRF_PACK_TYPES_BLOB[{len(blob)}] = {{",
    ]
    for i in range(0, len(blob), 16):
        lines.append("    " + " ".join(f"0x{b:02x}," for b in blob[i : i + 16]))
    lines.append("};")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------- compile

#: Flags shared by every guest. -O2 with sanitizers off (zig cc would otherwise add
#: UBSan traps), no debug info, stripped output: nothing path- or time-dependent.
CFLAGS = (
    "-target", "wasm32-freestanding",
    "-mcpu=generic",
    "-std=c11",
    "-O2",
    "-g0",
    "-ffreestanding",
    "-fno-sanitize=all",
    "-Wall", "-Wextra", "-Werror",
)  # fmt: skip

#: v0.7 packages: own exported memory; zig's wasm-ld always lays the stack out first
#: (the equivalent of --stack-first), here 1 MiB, then data from 0x100000, then heap.
PACKAGE_LDFLAGS = (
    "-Wl,--no-entry",
    "-Wl,-z,stack-size=1048576",
    "-Wl,--strip-all",
)

#: Fixed-base guests (spec §9.1): imported memory of 8 MiB minimum, a 256 KiB stack
#: first, static data at 0xD0000 and allocation through pack:alloc.
FIXED_BASE_LDFLAGS = (
    "-DCGRF_IMPORTED_ALLOCATOR",
    "-Wl,--no-entry",
    "-Wl,--import-memory",
    "-Wl,--initial-memory=8388608",
    "-Wl,-z,stack-size=262144",
    "-Wl,--global-base=851968",
    "-Wl,--strip-all",
)


def zig_version() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ziglang", "version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def check_toolchain() -> None:
    """Refuse to build with anything but the pinned compiler."""
    try:
        pkg = importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"ziglang is not installed: pip install ziglang=={ZIG_VERSION}") from None
    if pkg != ZIG_VERSION or zig_version() != ZIG_VERSION:
        raise SystemExit(f"need ziglang=={ZIG_VERSION}, found {pkg} (zig {zig_version()})")


def compile_guest(guest: Guest, out: Path, scratch: Path) -> Path:
    """Compile one guest to ``out``; ``scratch`` holds its generated header."""
    gen = scratch / guest.name
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "pack_types.h").write_text(pack_types_header(guest))
    ldflags = FIXED_BASE_LDFLAGS if guest.layout == "fixed-base" else PACKAGE_LDFLAGS
    cmd = [
        sys.executable, "-m", "ziglang", "cc",
        *CFLAGS,
        "-I", str(INCLUDE),
        "-I", str(gen),
        *(str(s) for s in guest.sources),
        *ldflags,
        *(f"-Wl,--export={name}" for name in guest.extra_exports),
        "-o", str(out),
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building {guest.name} failed:\n{result.stderr}")
    return out


def build(names: Sequence[str] | None = None, out_dir: Path = HERE) -> dict[str, Path]:
    """Build the named guests (default: all) into ``out_dir``; returns name -> path."""
    check_toolchain()
    selected = list(names) if names else list(GUESTS)
    unknown = [n for n in selected if n not in GUESTS]
    if unknown:
        raise SystemExit(f"unknown guest(s): {', '.join(unknown)}; have {', '.join(GUESTS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="packr-guests-") as tmp:
        for name in selected:
            built[name] = compile_guest(GUESTS[name], out_dir / f"{name}.wasm", Path(tmp))
    return built


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="guests to build (default: all)")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    parser.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare with the committed files")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            built = build(args.names, Path(tmp))
            stale = [
                n
                for n, p in built.items()
                if not (HERE / f"{n}.wasm").is_file() or not filecmp.cmp(p, HERE / f"{n}.wasm", shallow=False)
            ]
        for n in stale:
            print(f"{n}.wasm differs from a fresh build")
        return 1 if stale else 0
    for name, path in build(args.names, args.out).items():
        print(f"{name}: {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
