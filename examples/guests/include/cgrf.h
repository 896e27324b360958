/*
 * cgrf.h - CGRF v2 ("Graph ABI") for C guests compiled to wasm32-freestanding.
 *
 * A small, self-contained re-implementation (from docs/spec/packr-abi.md) of what a
 * packr guest links in:
 *
 *   - a generic value tree (cgrf_value) with declared types (cgrf_type);
 *   - an encoder that is byte-identical with packr (post-order, root last, Array nodes
 *     for lists of fixed-width element types) and a decoder that applies packr's
 *     three validation phases with packr's error texts; neither recurses, so value
 *     depth is limited only by memory;
 *   - the allocator behind __pack_alloc / __pack_free (a first-fit free list over the
 *     module's own memory, or the host's pack:alloc imports with
 *     -DCGRF_IMPORTED_ALLOCATOR);
 *   - an arena that holds every value of one export call;
 *   - the guest half of the calling conventions: cgrf_call() for typed imports
 *     (spec 7.1) and cgrf_export() for exports (spec 7.2).
 *
 * Ownership: values, types, strings built by the constructors below live in the arena.
 * cgrf_export() marks the arena on entry and releases it on return, so a handler never
 * frees anything; state that must outlive a call goes in cgrf_alloc()'d memory.
 * Constructors panic (spin forever, like a packr guest) when memory runs out; the codec
 * reports an error instead.
 */
#ifndef CGRF_H
#define CGRF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ kinds */

/* Node-kind bytes of CGRF v2. Type tags reuse them; CGRF_ARRAY exists only as a node. */
enum {
    CGRF_BOOL = 0x01,
    CGRF_S32 = 0x02,
    CGRF_S64 = 0x03,
    CGRF_F32 = 0x04,
    CGRF_F64 = 0x05,
    CGRF_STRING = 0x06,
    CGRF_LIST = 0x07,
    CGRF_VARIANT = 0x08,
    CGRF_RECORD = 0x09,
    CGRF_OPTION = 0x0A,
    CGRF_TUPLE = 0x0B,
    CGRF_U8 = 0x0C,
    CGRF_U16 = 0x0D,
    CGRF_U32 = 0x0E,
    CGRF_U64 = 0x0F,
    CGRF_S8 = 0x10,
    CGRF_S16 = 0x11,
    CGRF_CHAR = 0x12,
    CGRF_FLAGS = 0x13,
    CGRF_RESULT = 0x14,
    CGRF_ARRAY = 0x15
};

/* --------------------------------------------------------------- strings */

/* A UTF-8 byte string; not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint32_t len;
} cgrf_str;

#define CGRF_LIT(s) ((cgrf_str){(s), (uint32_t)(sizeof(s) - 1)})

cgrf_str cgrf_cstr(const char *s);
bool cgrf_str_eq(cgrf_str a, cgrf_str b);
bool cgrf_str_is(cgrf_str a, const char *s);
cgrf_str cgrf_str_copy(cgrf_str s); /* into the arena */

/* ----------------------------------------------------------------- types */

typedef struct cgrf_type cgrf_type;
struct cgrf_type {
    uint8_t tag;                   /* a kind byte other than CGRF_ARRAY */
    uint32_t count;                /* number of items: LIST/OPTION 1, RESULT 2 (ok, err), TUPLE n */
    const cgrf_type *const *items; /* child types */
    cgrf_str name;                 /* RECORD / VARIANT name (names only: no fields, no cases) */
};

extern const cgrf_type cgrf_t_bool, cgrf_t_u8, cgrf_t_u16, cgrf_t_u32, cgrf_t_u64,
    cgrf_t_s8, cgrf_t_s16, cgrf_t_s32, cgrf_t_s64, cgrf_t_f32, cgrf_t_f64, cgrf_t_char,
    cgrf_t_string, cgrf_t_flags, cgrf_t_unit;

/* Static type literals for guests' declarations, e.g.
 *   CGRF_TYPE_DEF(opt_string, CGRF_OPTION, &cgrf_t_string);
 * defines `static const cgrf_type opt_string` = option<string>. */
#define CGRF_TYPE_DEF(id, tag_, ...)                                                     \
    static const cgrf_type *const id##_items[] = {__VA_ARGS__};                          \
    static const cgrf_type id = {(tag_), sizeof(id##_items) / sizeof(id##_items[0]),     \
                                 id##_items, {0, 0}}
#define CGRF_NAMED_TYPE_DEF(id, tag_, name_) \
    static const cgrf_type id = {(tag_), 0, 0, CGRF_LIT(name_)}

const cgrf_type *cgrf_prim_type(uint8_t tag); /* NULL unless a primitive tag */
uint32_t cgrf_fixed_width(uint8_t tag);       /* element width in an Array node, 0 if none */
const cgrf_type *cgrf_type_list(const cgrf_type *elem);
const cgrf_type *cgrf_type_option(const cgrf_type *inner);
const cgrf_type *cgrf_type_result(const cgrf_type *ok, const cgrf_type *err);
const cgrf_type *cgrf_type_named(uint8_t tag, cgrf_str name); /* RECORD or VARIANT */
bool cgrf_type_equal(const cgrf_type *a, const cgrf_type *b);

/* ---------------------------------------------------------------- values */

typedef struct cgrf_value cgrf_value;
struct cgrf_value {
    uint8_t kind;          /* a kind byte; never CGRF_ARRAY (an Array node decodes to LIST) */
    uint8_t flag;          /* BOOL: the value. OPTION: 1 = some. RESULT: 1 = err */
    uint32_t count;        /* children: LIST/TUPLE/RECORD/VARIANT items, OPTION 0/1, RESULT 1 */
    uint32_t tag;          /* VARIANT tag (a u32 on the wire) */
    uint64_t bits;         /* integers (signed ones sign-extended), CHAR, FLAGS, float bits */
    cgrf_str str;          /* STRING text; RECORD / VARIANT type name */
    cgrf_str case_name;    /* VARIANT case name */
    const cgrf_type *type; /* LIST elem type, OPTION inner type, RESULT ok type */
    const cgrf_type *err_type; /* RESULT err type */
    cgrf_value **kids;     /* children, `count` of them */
    cgrf_str *names;       /* RECORD field names, `count` of them, in order */
};

/* Constructors (arena; panic on out-of-memory). Compound ones allocate `kids` (and
 * `names`) for n children that the caller fills in. */
cgrf_value *cgrf_new(uint8_t kind, uint32_t n);
cgrf_value *cgrf_bool(bool b);
cgrf_value *cgrf_int(uint8_t kind, uint64_t bits); /* any integer kind, CHAR or FLAGS */
cgrf_value *cgrf_s64(int64_t x);
cgrf_value *cgrf_u64(uint64_t x);
cgrf_value *cgrf_s32(int32_t x);
cgrf_value *cgrf_u32(uint32_t x);
cgrf_value *cgrf_f64(double x);
cgrf_value *cgrf_string(cgrf_str s); /* references s: keep it alive (arena or static) */
cgrf_value *cgrf_string_c(const char *s);
cgrf_value *cgrf_unit(void);
cgrf_value *cgrf_tuple(uint32_t n);
cgrf_value *cgrf_tuple2(cgrf_value *a, cgrf_value *b);
cgrf_value *cgrf_list(const cgrf_type *elem, uint32_t n);
cgrf_value *cgrf_record(cgrf_str type_name, uint32_t n);
void cgrf_record_set(cgrf_value *rec, uint32_t i, const char *field, cgrf_value *v);
cgrf_value *cgrf_variant(cgrf_str type_name, cgrf_str case_name, uint32_t tag, uint32_t n);
cgrf_value *cgrf_some(const cgrf_type *inner, cgrf_value *v);
cgrf_value *cgrf_none(const cgrf_type *inner);
cgrf_value *cgrf_ok(const cgrf_type *ok, const cgrf_type *err, cgrf_value *v);
cgrf_value *cgrf_err(const cgrf_type *ok, const cgrf_type *err, cgrf_value *v);

static inline int64_t cgrf_get_s64(const cgrf_value *v) { return (int64_t)v->bits; }
/* First field called `name` of a record, or NULL. */
cgrf_value *cgrf_record_get(const cgrf_value *rec, const char *name);
/* Rust PartialEq: structural, ordered, declared types count, IEEE float ==. */
bool cgrf_equal(const cgrf_value *a, const cgrf_value *b);
/* Does v convert to the declared type t the way a packr guest's FromValue would?
 * Primitives need exactly that kind; list/option/result/tuple check their items;
 * record/variant check the kind only. t == NULL accepts anything. */
bool cgrf_conforms(const cgrf_value *v, const cgrf_type *t);

/* ----------------------------------------------------------------- codec */

enum {
    CGRF_ERR_INVALID_ENCODING = 1, /* InvalidEncoding("msg") */
    CGRF_ERR_BUFFER_TOO_SMALL = 2, /* BufferTooSmall { need, have } */
    CGRF_ERR_INVALID_TAG = 3,      /* InvalidTag(byte) */
    CGRF_ERR_OUT_OF_MEMORY = 4     /* the guest ran out of memory (packr would abort) */
};

typedef struct {
    int kind;
    uint32_t tag;
    uint64_t need, have;
    char msg[96];
} cgrf_error;

/* The error in Rust's Debug form, e.g. `InvalidEncoding("Invalid magic")`. Writes at
 * most cap bytes (no NUL) and returns the length written. */
uint32_t cgrf_error_debug(const cgrf_error *e, char *out, uint32_t cap);

/* Decode with packr's default limits. The bytes are copied into the arena first, so
 * the source buffer may be freed afterwards. Never traps on bad input. */
bool cgrf_decode(const uint8_t *data, uint32_t len, cgrf_value **out, cgrf_error *err);

/* Encode into a buffer of exactly *len bytes obtained from alloc(len). */
typedef void *(*cgrf_alloc_fn)(uint32_t size);
bool cgrf_encode(const cgrf_value *v, cgrf_alloc_fn alloc, uint8_t **out, uint32_t *len,
                 cgrf_error *err);

/* ------------------------------------------------------------- allocation */

/* The guest heap: 8-aligned blocks, not zeroed; NULL on failure. cgrf_free takes the
 * size that was asked for (the imported allocator needs it). */
void *cgrf_alloc(uint32_t size);
void cgrf_free(void *ptr, uint32_t size);

/* Exported per spec 7.3: zero-filled, alignment 1, 0 for size <= 0 or on failure. */
int32_t __pack_alloc(int32_t size);
void __pack_free(int32_t ptr, int32_t len);

/* The per-call arena. */
void *cgrf_arena_alloc(uint32_t size); /* 8-aligned, NULL on failure */
void *cgrf_arena_must(uint32_t size);  /* panics on failure */
typedef struct {
    void *chunk;
    uint32_t used;
} cgrf_mark;
cgrf_mark cgrf_arena_mark(void);
void cgrf_arena_release(cgrf_mark mark); /* frees everything allocated after the mark */

/* Is [ptr, ptr+len) inside linear memory? */
bool cgrf_in_memory(uint32_t ptr, uint32_t len);

/* A packr panic: spin forever (the host must use fuel or epochs). */
_Noreturn void cgrf_panic(void);

/* ------------------------------------------------------- string building */

typedef struct {
    char *ptr;
    uint32_t len, cap;
} cgrf_sb;

void cgrf_sb_bytes(cgrf_sb *sb, const char *p, uint32_t n);
void cgrf_sb_str(cgrf_sb *sb, cgrf_str s);
void cgrf_sb_cstr(cgrf_sb *sb, const char *s);
void cgrf_sb_u64(cgrf_sb *sb, uint64_t x);
void cgrf_sb_s64(cgrf_sb *sb, int64_t x);
cgrf_str cgrf_sb_done(cgrf_sb *sb);

/* --------------------------------------------------- a growable pointer stack */

typedef struct {
    void **items;
    uint32_t len, cap;
} cgrf_stack;

void cgrf_stack_push(cgrf_stack *s, void *p); /* arena; panics on out-of-memory */

/* ------------------------------------------------------- calling conventions */

/* Every typed import and export has this wasm signature (spec 3.2). */
typedef int32_t (*cgrf_import_fn)(int32_t in_ptr, int32_t in_len, int32_t out_ptr_ptr,
                                  int32_t out_len_ptr);

#define CGRF_IMPORT(module_, name_, cname)                                             \
    __attribute__((import_module(module_), import_name(name_))) int32_t cname(         \
        int32_t in_ptr, int32_t in_len, int32_t out_ptr_ptr, int32_t out_len_ptr)

/* Call a typed import (spec 7.1): 0 params are sent as Tuple([]), 1 param bare, 2 or
 * more as a Tuple. Status < 0 panics; status 1 means the reply buffer is ours and is
 * freed with __pack_free(ptr, len) after decoding; any other status leaves it to the
 * host. A reply that does not decode or does not conform to `result` (NULL = any
 * value) panics. Returns the decoded reply. */
cgrf_value *cgrf_call(cgrf_import_fn fn, const cgrf_type *result, uint32_t nparams,
                      cgrf_value *const *params);
/* The same, with input bytes that are already encoded (or deliberately not). */
cgrf_value *cgrf_call_encoded(cgrf_import_fn fn, const cgrf_type *result, uint32_t in_ptr,
                              uint32_t in_len);

/* An export body: returns the result, or NULL after setting *error. The input is the
 * decoded argument with a 1-tuple unwrapped (packr's Value mode). */
typedef cgrf_value *(*cgrf_handler)(cgrf_value *input, cgrf_str *error);

/* Run an export per spec 7.2: decode, unwrap a 1-tuple, run the handler, encode into a
 * buffer of exact length, write ptr/len into the two slots and return 0; on failure
 * write an allocated UTF-8 message there and return -1. */
int32_t cgrf_export(cgrf_handler handler, int32_t in_ptr, int32_t in_len, int32_t out_ptr_ptr,
                    int32_t out_len_ptr);

/* Define the wasm export `wasm_name` running `handler` through cgrf_export(). */
#define CGRF_EXPORT(wasm_name, handler)                                                \
    __attribute__((export_name(wasm_name))) int32_t handler##__export(                 \
        int32_t in_ptr, int32_t in_len, int32_t out_ptr_ptr, int32_t out_len_ptr) {    \
        return cgrf_export(handler, in_ptr, in_len, out_ptr_ptr, out_len_ptr);         \
    }

/* Store an i32 into a (possibly unaligned) slot in linear memory. */
void cgrf_write_slot(int32_t slot, int32_t value);

/* Define `__pack_types` (spec 6.1) returning a static CGRF blob. build.py generates
 * pack_types.h with `static const uint8_t CGRF_PACK_TYPES_BLOB[]`. */
#define CGRF_PACK_TYPES(blob)                                                           \
    __attribute__((export_name("__pack_types"))) int32_t cgrf__pack_types(             \
        int32_t out_ptr_ptr, int32_t out_len_ptr) {                                     \
        cgrf_write_slot(out_ptr_ptr, (int32_t)(uintptr_t)(blob));                       \
        cgrf_write_slot(out_len_ptr, (int32_t)sizeof(blob));                            \
        return 0;                                                                       \
    }

#endif /* CGRF_H */
