/*
 * hostile - misbehaving exports, for testing that a host survives guests.
 *
 * Import:
 *   hostile:host/sink.take(input: value) -> value
 *
 * Exports (all 4-i32, input ignored unless said otherwise):
 *   trap              executes `unreachable`
 *   spin              loops forever (only fuel or an epoch deadline ends it)
 *   fail              status -1, message "something went wrong"
 *   garbage_out       status 0, the output bytes are "this is not CGRF" (not CGRF)
 *   bad_out_ptr       status 0, out ptr/len = 0xFFFFFFF0 / 1000 (outside memory)
 *   huge_out_len      status 0, out ptr is a real static buffer, len = 0x7FFFFFFF
 *   import_garbage    calls sink.take with the 16 bytes "garbage, not CGRF" as input
 *   import_oob        calls sink.take with in_ptr/in_len = 0xFFFFFF00 / 0x1000
 *   import_bad_slots  calls sink.take with a valid input (Tuple([])) but out slots at
 *                     0xFFFFFFF0 / 0xFFFFFFF8; if the host still reports success,
 *                     returns S32(status)
 *   import_echo       calls sink.take(input) through the normal import path and
 *                     returns the reply: exercises status 0 / 1 / other / negative
 *   recurse           unbounded recursion through the shadow stack: traps when the
 *                     stack pointer runs below 0 (the stack is laid out first)
 *   grow              grows memory one step at a time until memory.grow fails, then
 *                     status -1 with "memory.grow failed after growing <n> pages"
 * The import_* exports follow packr's rules: a failed import (status < 0, an
 * undecodable reply) panics, i.e. spins forever. On success they return the reply.
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

CGRF_IMPORT("hostile:host/sink", "take", sink_take);

#define EXPORT_RAW(name)                                                               \
    __attribute__((export_name(#name))) int32_t name(int32_t in_ptr, int32_t in_len,   \
                                                     int32_t out_ptr_ptr, int32_t out_len_ptr)

/* Write a status-0 or status-(-1) answer by hand, bypassing cgrf_export. */
static int32_t answer(int32_t status, const char *bytes, uint32_t len, int32_t out_ptr_ptr,
                      int32_t out_len_ptr) {
    int32_t p = __pack_alloc((int32_t)len);
    if (p) __builtin_memcpy((void *)(uintptr_t)p, bytes, len);
    cgrf_write_slot(out_ptr_ptr, p);
    cgrf_write_slot(out_len_ptr, p ? (int32_t)len : 0);
    return status;
}

EXPORT_RAW(trap) {
    (void)in_ptr, (void)in_len, (void)out_ptr_ptr, (void)out_len_ptr;
    __builtin_trap();
}

EXPORT_RAW(spin) {
    (void)in_ptr, (void)in_len, (void)out_ptr_ptr, (void)out_len_ptr;
    cgrf_panic();
}

EXPORT_RAW(fail) {
    (void)in_ptr, (void)in_len;
    static const char msg[] = "something went wrong";
    return answer(-1, msg, sizeof msg - 1, out_ptr_ptr, out_len_ptr);
}

EXPORT_RAW(garbage_out) {
    (void)in_ptr, (void)in_len;
    static const char junk[] = "this is not CGRF";
    return answer(0, junk, sizeof junk - 1, out_ptr_ptr, out_len_ptr);
}

EXPORT_RAW(bad_out_ptr) {
    (void)in_ptr, (void)in_len;
    cgrf_write_slot(out_ptr_ptr, (int32_t)0xFFFFFFF0u);
    cgrf_write_slot(out_len_ptr, 1000);
    return 0;
}

static const char small_buffer[16] = "tiny";

EXPORT_RAW(huge_out_len) {
    (void)in_ptr, (void)in_len;
    cgrf_write_slot(out_ptr_ptr, (int32_t)(uintptr_t)small_buffer);
    cgrf_write_slot(out_len_ptr, 0x7FFFFFFF);
    return 0;
}

static cgrf_value *import_garbage(cgrf_value *input, cgrf_str *error) {
    (void)input, (void)error;
    static const char junk[] = "garbage, not CGRF";
    return cgrf_call_encoded(sink_take, 0, (uint32_t)(uintptr_t)junk, sizeof junk - 1);
}
CGRF_EXPORT("import_garbage", import_garbage)

static cgrf_value *import_oob(cgrf_value *input, cgrf_str *error) {
    (void)input, (void)error;
    return cgrf_call_encoded(sink_take, 0, 0xFFFFFF00u, 0x1000u);
}
CGRF_EXPORT("import_oob", import_oob)

static cgrf_value *import_bad_slots(cgrf_value *input, cgrf_str *error) {
    (void)input, (void)error;
    /* Encoded Tuple([]): a valid input, so only the slots are wrong. */
    static const uint8_t unit[] = {'C', 'G', 'R', 'F', 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                   CGRF_TUPLE, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0};
    int32_t status = sink_take((int32_t)(uintptr_t)unit, sizeof unit, (int32_t)0xFFFFFFF0u,
                               (int32_t)0xFFFFFFF8u);
    if (status < 0) cgrf_panic();
    return cgrf_s32(status); /* the slots cannot be read back */
}
CGRF_EXPORT("import_bad_slots", import_bad_slots)

static cgrf_value *import_echo(cgrf_value *input, cgrf_str *error) {
    (void)error;
    return cgrf_call(sink_take, 0, 1, &input);
}
CGRF_EXPORT("import_echo", import_echo)

/* Never true, but the compiler cannot know: keeps the recursion from being removed. */
static volatile int32_t recursion_floor = -1;

__attribute__((noinline)) static int32_t dive(int32_t depth) {
    volatile uint8_t frame[256]; /* lives on the shadow stack, so it moves the stack pointer */
    frame[depth & 255] = (uint8_t)depth;
    if (depth == recursion_floor) return 0;
    return dive(depth + 1) + frame[(depth + 1) & 255];
}

EXPORT_RAW(recurse) {
    (void)in_ptr, (void)in_len, (void)out_ptr_ptr, (void)out_len_ptr;
    return dive(0); /* never returns */
}

EXPORT_RAW(grow) {
    (void)in_ptr, (void)in_len;
    /* The message buffer comes first: afterwards nothing can be allocated. Our
     * allocator frees by block header, so the host's __pack_free(ptr, n) still
     * releases the whole block. */
    enum { CAP = 96 };
    char *out = (char *)(uintptr_t)__pack_alloc(CAP);
    uint64_t grown = 0;
    for (uint32_t step = 1024; step; step /= 4)
        while ((int32_t)__builtin_wasm_memory_grow(0, step) >= 0) grown += step; /* -1: refused */
    if (!out) return answer(-1, "", 0, out_ptr_ptr, out_len_ptr);
    static const char prefix[] = "memory.grow failed after growing ";
    uint32_t n = sizeof prefix - 1, k = 0;
    char digits[20];
    __builtin_memcpy(out, prefix, n);
    do { /* decimal by hand: the arena may be unable to grow now */
        digits[k++] = (char)('0' + grown % 10);
        grown /= 10;
    } while (grown);
    while (k) out[n++] = digits[--k];
    __builtin_memcpy(out + n, " pages", 6);
    n += 6;
    cgrf_write_slot(out_ptr_ptr, (int32_t)(uintptr_t)out);
    cgrf_write_slot(out_len_ptr, (int32_t)n);
    return -1;
}
