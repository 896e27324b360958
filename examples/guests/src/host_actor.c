/*
 * host_actor - a fixed-base guest shaped like packr's host_actor_fixedbase.wasm
 * (spec 9): it owns no memory and no heap.
 *
 * Module surface:
 *   import env.memory                       min 128 pages (8 MiB), no max
 *   import pack:alloc.alloc(size, align) -> ptr    every allocation, align 1 or 8
 *   import pack:alloc.dealloc(ptr, size, align)    every free
 *   import theater:simple/runtime.log(msg: string)        typed, reply ignored
 *   import math.double(n: s64) -> s64                      typed
 *   export process, __pack_types, __pack_alloc, __pack_free, __heap_base, __data_end
 *   (no memory export; stack [0, 0x40000), static data from 0xD0000)
 *
 * Export:
 *   process(input: value) -> value
 *     Always logs "host-actor: processing" first. Then:
 *       S64(n) or Tuple([S64(n)])  ->  S64(double(n) + 1), i.e. S64(2n + 1)
 *       anything else              ->  returned unchanged
 *     A double reply that is not exactly S64 panics (spins), as in the real asset.
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

CGRF_IMPORT("theater:simple/runtime", "log", runtime_log);
CGRF_IMPORT("math", "double", math_double);

static cgrf_value *process(cgrf_value *input, cgrf_str *error) {
    (void)error;
    cgrf_value *msg = cgrf_string_c("host-actor: processing");
    cgrf_call(runtime_log, 0, 1, &msg);
    if (input->kind != CGRF_S64) return input; /* a 1-tuple was already unwrapped */
    int64_t doubled = cgrf_get_s64(cgrf_call(math_double, &cgrf_t_s64, 1, &input));
    return cgrf_s64((int64_t)((uint64_t)doubled + 1u));
}
CGRF_EXPORT("process", process)
