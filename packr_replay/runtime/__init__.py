"""Running packr guests under wasmtime with packr's host ABI (the only layer that
imports wasmtime)."""

from ..errors import (
    ExportNotFound,
    GuestError,
    GuestMemoryError,
    GuestTimeout,
    GuestTrap,
    HostFunctionError,
    InterfaceError,
    InvalidGuestOutput,
    LinkError,
    PackageNotFound,
)
from .composition import BuiltComposition, CompositionBuilder, HostFn, Wire
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
    log_host_error,
)
from .instance import Instance
from .interceptor import (
    CallInterceptor,
    ExportCall,
    ImportCall,
    ImportReply,
    MemoryOp,
    RawCall,
    RawReply,
    RoutedInterceptor,
)
from .interface import InterfaceFunction, InterfaceImpl, interface_from_impl, type_desc_of
from .interface_check import ExpectedSignature, validate_instance_implements_interface
from .layout import (
    INPUT_BUFFER_OFFSET,
    OUTPUT_BUFFER_CAPACITY,
    OUTPUT_BUFFER_OFFSET,
    RESULT_LEN_OFFSET,
    RESULT_PTR_OFFSET,
)
from .memory import GuestMemory

__all__ = [
    "DEFAULT_FUEL",
    "INPUT_BUFFER_OFFSET",
    "OUTPUT_BUFFER_CAPACITY",
    "OUTPUT_BUFFER_OFFSET",
    "RESULT_LEN_OFFSET",
    "RESULT_PTR_OFFSET",
    "AsyncCtx",
    "BuiltComposition",
    "CallInterceptor",
    "CompositionBuilder",
    "Ctx",
    "DefaultHostProvider",
    "DemoHost",
    "ExpectedSignature",
    "ExportCall",
    "ExportNotFound",
    "ExternInfo",
    "GuestError",
    "GuestMemory",
    "GuestMemoryError",
    "GuestTimeout",
    "GuestTrap",
    "HostErr",
    "HostFn",
    "HostFunctionError",
    "HostFunctionProvider",
    "HostLinkerBuilder",
    "ImportCall",
    "ImportReply",
    "Instance",
    "InterfaceBuilder",
    "InterfaceError",
    "InterfaceFunction",
    "InterfaceImpl",
    "InvalidGuestOutput",
    "LinkError",
    "MemoryOp",
    "Module",
    "PackageNotFound",
    "RawCall",
    "RawReply",
    "ReplyMode",
    "RoutedInterceptor",
    "Runtime",
    "Wire",
    "interface_from_impl",
    "log_host_error",
    "type_desc_of",
    "validate_instance_implements_interface",
]
