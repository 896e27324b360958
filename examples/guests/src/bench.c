/*
 * bench - fixed workloads for measuring the cost of host calls.
 *
 * Imports:
 *   bench:host/math.inc(i: s64) -> s64     typed (CGRF), expected to return i + 1
 *   bench:host/raw.noop(i32) -> i32        raw wasm signature, no CGRF at all
 *
 * Exports:
 *   calls(n: s64) -> s64       calls math.inc(i) for i in 0..n, checks every reply is
 *                              i + 1 (a wrong reply panics: spins) and returns the sum
 *                              of the replies, n(n+1)/2
 *   raw_calls(n: s64) -> s64   calls raw.noop(i) for i in 0..n, returns the sum of the
 *                              i32 results (as s64)
 *   nothing(input: value) -> ()  no import calls: the cost of an export round trip
 * A non-s64 n is an export error ("expected n: s64"); n <= 0 makes no calls.
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

CGRF_IMPORT("bench:host/math", "inc", math_inc);
__attribute__((import_module("bench:host/raw"), import_name("noop"))) int32_t raw_noop(int32_t i);

static bool count_arg(const cgrf_value *input, int64_t *n, cgrf_str *error) {
    if (input->kind != CGRF_S64) {
        *error = CGRF_LIT("expected n: s64");
        return false;
    }
    *n = cgrf_get_s64(input);
    return true;
}

static cgrf_value *calls(cgrf_value *input, cgrf_str *error) {
    int64_t n, sum = 0;
    if (!count_arg(input, &n, error)) return 0;
    for (int64_t i = 0; i < n; i++) {
        /* Each call's values are dropped right away so memory stays flat for any n. */
        cgrf_mark m = cgrf_arena_mark();
        cgrf_value *arg = cgrf_s64(i);
        int64_t reply = cgrf_get_s64(cgrf_call(math_inc, &cgrf_t_s64, 1, &arg));
        cgrf_arena_release(m);
        if (reply != i + 1) cgrf_panic();
        sum += reply;
    }
    return cgrf_s64(sum);
}
CGRF_EXPORT("calls", calls)

static cgrf_value *raw_calls(cgrf_value *input, cgrf_str *error) {
    int64_t n, sum = 0;
    if (!count_arg(input, &n, error)) return 0;
    for (int64_t i = 0; i < n; i++) sum += raw_noop((int32_t)i);
    return cgrf_s64(sum);
}
CGRF_EXPORT("raw_calls", raw_calls)

static cgrf_value *nothing(cgrf_value *input, cgrf_str *error) {
    (void)input, (void)error;
    return cgrf_unit();
}
CGRF_EXPORT("nothing", nothing)
