/*
 * echo - the value round-trip guest (spec 8, wasm_execution).
 *
 * Imports: none.
 * Exports:
 *   echo(input: value) -> value       returns its input (a 1-tuple arrives unwrapped)
 *   transform(input: value) -> value  doubles every s64 (wrapping) found by walking
 *                                     lists, tuples, options and variant payloads;
 *                                     everything else (records, results, other
 *                                     scalars, strings) passes through untouched
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

static cgrf_value *echo(cgrf_value *input, cgrf_str *error) {
    (void)error;
    return input;
}
CGRF_EXPORT("echo", echo)

/* Which nodes transform descends into. */
static bool walks_into(const cgrf_value *v) {
    return v->kind == CGRF_LIST || v->kind == CGRF_TUPLE || v->kind == CGRF_OPTION ||
           v->kind == CGRF_VARIANT;
}

typedef struct {
    cgrf_value *v;
    uint32_t next;
} walk_pos;

/* Post-order rebuild with explicit stacks, so deep values cannot overflow the stack:
 * finished children wait on `done` until their parent is copied. */
static cgrf_value *transform(cgrf_value *input, cgrf_str *error) {
    (void)error;
    cgrf_stack path = {0}, done = {0};
    walk_pos *start = cgrf_arena_must(sizeof(walk_pos));
    *start = (walk_pos){input, 0};
    cgrf_stack_push(&path, start);
    while (path.len) {
        walk_pos *top = path.items[path.len - 1];
        cgrf_value *v = top->v;
        if (walks_into(v) && top->next < v->count) {
            walk_pos *child = cgrf_arena_must(sizeof(walk_pos));
            *child = (walk_pos){v->kids[top->next++], 0};
            cgrf_stack_push(&path, child);
            continue;
        }
        path.len--;
        cgrf_value *out = v;
        if (v->kind == CGRF_S64) {
            out = cgrf_s64((int64_t)(v->bits * 2u)); /* wraps, like a release build */
        } else if (walks_into(v) && v->count) {
            out = cgrf_new(v->kind, 0);
            *out = *v; /* same names, types and tag; fresh children */
            out->kids = cgrf_arena_must(v->count * (uint32_t)sizeof(cgrf_value *));
            done.len -= v->count;
            for (uint32_t i = 0; i < v->count; i++) out->kids[i] = done.items[done.len + i];
        }
        cgrf_stack_push(&done, out);
    }
    return done.items[0];
}
CGRF_EXPORT("transform", transform)
