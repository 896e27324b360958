"""Running packr guests under wasmtime with packr's host ABI (the only layer that
imports wasmtime)."""

from ..errors import (
    ExportNotFound,
    GuestError,
    GuestMemoryError,
    GuestTimeout,
    GuestTrap,
    HostFunctionError,
    InvalidGuestOutput,
    LinkError,
)
from .demo import DemoHost
from .engine import DEFAULT_FUEL, ExternInfo, Module, Runtime
from .host import (
    AsyncCtx,
    Ctx,
    DefaultHostProvider,
    HostErr,
    HostFunctionProvider,
    HostLinkerBuilder,
    InterfaceBuilder,
    ReplyMode,
)
from .instance import Instance
from .interceptor import CallInterceptor, ExportCall, ImportCall, ImportReply
from .interface import InterfaceFunction, InterfaceImpl, interface_from_impl, type_desc_of
from .memory import GuestMemory

__all__ = [
    "DEFAULT_FUEL",
    "AsyncCtx",
    "CallInterceptor",
    "Ctx",
    "DefaultHostProvider",
    "DemoHost",
    "ExportCall",
    "ExportNotFound",
    "ExternInfo",
    "GuestError",
    "GuestMemory",
    "GuestMemoryError",
    "GuestTimeout",
    "GuestTrap",
    "HostErr",
    "HostFunctionError",
    "HostFunctionProvider",
    "HostLinkerBuilder",
    "ImportCall",
    "ImportReply",
    "Instance",
    "InterfaceBuilder",
    "InterfaceFunction",
    "InterfaceImpl",
    "InvalidGuestOutput",
    "LinkError",
    "Module",
    "ReplyMode",
    "Runtime",
    "interface_from_impl",
    "type_desc_of",
]
