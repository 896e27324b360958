/*
 * bench - fixed workloads for measuring the cost of host calls.
 *
 * Imports:
 *   bench:host/math.inc(i: s64) -> s64     typed (CGRF), expected to return i + 1
 *   bench:host/text.echo(s: string) -> string   typed, expected to return s
 *   bench:host/raw.noop(i32) -> i32        raw wasm signature, no CGRF at all
 *
 * Exports:
 *   calls(n: s64) -> s64       calls math.inc(i) for i in 0..n, checks every reply is
 *                              i + 1 (a wrong reply panics: spins) and returns the sum
 *                              of the replies, n(n+1)/2
 *   raw_calls(n: s64) -> s64   calls raw.noop(i) for i in 0..n, returns the sum of the
 *                              i32 results (as s64)
 *   nothing(input: value) -> ()  no import calls: the cost of an export round trip
 *   spin(k: s64) -> s64        k rounds of guest-only work (a xorshift step each), returns
 *                              the last state: what work_calls does between calls
 *   work_calls(n: s64, k: s64) -> s64   calls(n) with spin(k) before every call
 *   text_calls(n: s64, size: s64) -> s64   calls text.echo(s) n times with a string of
 *                              size bytes (its first byte varies with i), checks every
 *                              reply is s (a wrong one panics), returns n * size
 * A non-s64 n is an export error ("expected n: s64"); n <= 0 makes no calls.
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

CGRF_IMPORT("bench:host/math", "inc", math_inc);
CGRF_IMPORT("bench:host/text", "echo", text_echo);
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

static uint64_t spin_state(int64_t k, uint64_t x)
{
    for (int64_t j = 0; j < k; j++) {  /* xorshift64: no closed form to fold the loop into */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static cgrf_value *spin(cgrf_value *input, cgrf_str *error) {
    int64_t k;
    if (!count_arg(input, &k, error)) return 0;
    return cgrf_s64((int64_t)spin_state(k, 1));
}
CGRF_EXPORT("spin", spin)

/* (n: s64, m: s64) as a 2-tuple of s64. */
static bool pair_arg(const cgrf_value *input, int64_t *n, int64_t *m, cgrf_str *error) {
    if (input->kind != CGRF_TUPLE || input->count != 2 || input->kids[0]->kind != CGRF_S64 ||
        input->kids[1]->kind != CGRF_S64) {
        *error = CGRF_LIT("expected (n: s64, m: s64)");
        return false;
    }
    *n = cgrf_get_s64(input->kids[0]);
    *m = cgrf_get_s64(input->kids[1]);
    return true;
}

static cgrf_value *work_calls(cgrf_value *input, cgrf_str *error) {
    int64_t n, k, sum = 0;
    uint64_t x = 1;
    if (!pair_arg(input, &n, &k, error)) return 0;
    for (int64_t i = 0; i < n; i++) {
        x = spin_state(k, x);
        cgrf_mark m = cgrf_arena_mark();
        cgrf_value *arg = cgrf_s64(i);
        int64_t reply = cgrf_get_s64(cgrf_call(math_inc, &cgrf_t_s64, 1, &arg));
        cgrf_arena_release(m);
        if (reply != i + 1) cgrf_panic();
        sum += reply;
    }
    if (x == 0) cgrf_panic();  /* never (xorshift keeps x nonzero), but x must be computed */
    return cgrf_s64(sum);
}
CGRF_EXPORT("work_calls", work_calls)

static cgrf_value *text_calls(cgrf_value *input, cgrf_str *error) {
    int64_t n, size;
    if (!pair_arg(input, &n, &size, error)) return 0;
    if (size < 0 || size > (1 << 24)) {
        *error = CGRF_LIT("expected 0 <= size <= 16 MiB");
        return 0;
    }
    char *text = cgrf_arena_alloc((uint32_t)size + 1);  /* released when the call returns */
    if (!text) cgrf_panic();
    for (int64_t j = 0; j < size; j++) text[j] = (char)('a' + j % 26);
    for (int64_t i = 0; i < n; i++) {
        if (size) text[0] = (char)('A' + i % 26);
        cgrf_mark m = cgrf_arena_mark();
        cgrf_value *arg = cgrf_string((cgrf_str){text, (uint32_t)size});
        cgrf_value *reply = cgrf_call(text_echo, &cgrf_t_string, 1, &arg);
        if (reply->str.len != (uint32_t)size) cgrf_panic();
        for (int64_t j = 0; j < size; j++)
            if (reply->str.ptr[j] != text[j]) cgrf_panic();
        cgrf_arena_release(m);
    }
    return cgrf_s64(n * size);
}
CGRF_EXPORT("text_calls", text_calls)

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
