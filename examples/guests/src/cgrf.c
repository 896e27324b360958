/*
 * cgrf.c - see include/cgrf.h. Section numbers refer to the packr ABI spec (packr-abi.md).
 *
 * Nothing here recurses over values or types: the decoder, the encoder, equality and
 * type equality all keep explicit stacks in the arena, so a 100,000-deep value costs
 * memory, not wasm stack.
 */
#include "cgrf.h"

#define PAGE 65536u

/* Default limits of packr's decoder (2.6). */
#define MAX_BUFFER_SIZE 268435456u
#define MAX_NODE_COUNT 10000000u
#define MAX_PAYLOAD_SIZE 134217728u
#define MAX_SEQUENCE_LEN 134217728u

/* ================================================================= utilities */

static void mem_copy(void *dst, const void *src, uint32_t n) {
    if (n) __builtin_memcpy(dst, src, n);
}

static bool mem_eq(const void *a, const void *b, uint32_t n) {
    const uint8_t *x = a, *y = b;
    for (uint32_t i = 0; i < n; i++)
        if (x[i] != y[i]) return false;
    return true;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

_Noreturn void cgrf_panic(void) {
    /* packr's panic handler is an infinite loop; the volatile store keeps the loop
     * from being optimised into something else. */
    static volatile uint32_t spins;
    for (;;) spins++;
}

bool cgrf_in_memory(uint32_t ptr, uint32_t len) {
    uint64_t size = (uint64_t)__builtin_wasm_memory_size(0) * PAGE;
    return (uint64_t)ptr + len <= size;
}

void cgrf_write_slot(int32_t slot, int32_t value) {
    /* memcpy: slots need not be aligned (they are stack addresses chosen by the caller). */
    __builtin_memcpy((void *)(uintptr_t)slot, &value, 4);
}

cgrf_str cgrf_cstr(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    return (cgrf_str){s, n};
}

bool cgrf_str_eq(cgrf_str a, cgrf_str b) {
    return a.len == b.len && mem_eq(a.ptr, b.ptr, a.len);
}

bool cgrf_str_is(cgrf_str a, const char *s) { return cgrf_str_eq(a, cgrf_cstr(s)); }

/* ================================================================ allocation */

#ifdef CGRF_IMPORTED_ALLOCATOR
/* Fixed-base build (spec 9): every allocation goes to the host. */
__attribute__((import_module("pack:alloc"), import_name("alloc"))) int32_t
pack_alloc_import(int32_t size, int32_t align);
__attribute__((import_module("pack:alloc"), import_name("dealloc"))) void
pack_dealloc_import(int32_t ptr, int32_t size, int32_t align);

void *cgrf_alloc(uint32_t size) {
    if (size == 0 || size > 0x7FFFFFF0u) return 0;
    return (void *)(uintptr_t)(uint32_t)pack_alloc_import((int32_t)size, 8);
}

void cgrf_free(void *ptr, uint32_t size) {
    if (ptr && size) pack_dealloc_import((int32_t)(uintptr_t)ptr, (int32_t)size, 8);
}

/* Buffers handed to the host use alignment 1, like packr's __pack_alloc. */
static void *out_alloc(uint32_t size) {
    if (size == 0 || size > 0x7FFFFFF0u) return 0;
    return (void *)(uintptr_t)(uint32_t)pack_alloc_import((int32_t)size, 1);
}

static void out_free(void *ptr, uint32_t size) {
    pack_dealloc_import((int32_t)(uintptr_t)ptr, (int32_t)size, 1);
}

#else
/*
 * First-fit free list over the module's own memory, from __heap_base up, growing the
 * memory when no block fits. Every block starts with an 8-byte header {size including
 * the header, magic}; free blocks are kept in address order so that freeing can merge
 * a block with both neighbours. The magic lets cgrf_free ignore pointers it never
 * handed out (a hostile host may pass anything to __pack_free).
 */
extern unsigned char __heap_base;

#define HDR 8u
#define MIN_BLOCK 16u
#define MAGIC_USED 0xC6A110C8u
#define MAGIC_FREE 0xC6F4EE00u

typedef struct free_block {
    uint32_t size;
    uint32_t magic;
    struct free_block *next;
} free_block;

static uint32_t memory_bytes(void) { return (uint32_t)__builtin_wasm_memory_size(0) * PAGE; }

static free_block *free_list;
static uint32_t heap_lo, heap_hi; /* every block we own lies in [heap_lo, heap_hi) */
static bool heap_ready;

/* Put [addr, addr+size) on the free list, merging with adjacent free blocks. */
static void heap_insert(uint32_t addr, uint32_t size) {
    free_block *b = (free_block *)(uintptr_t)addr;
    b->size = size;
    b->magic = MAGIC_FREE;
    free_block *prev = 0, *cur = free_list;
    while (cur && (uint32_t)(uintptr_t)cur < addr) {
        prev = cur;
        cur = cur->next;
    }
    b->next = cur;
    if (cur && addr + b->size == (uint32_t)(uintptr_t)cur) {
        b->size += cur->size;
        b->next = cur->next;
    }
    if (prev && (uint32_t)(uintptr_t)prev + prev->size == addr) {
        prev->size += b->size;
        prev->next = b->next;
    } else if (prev) {
        prev->next = b;
    } else {
        free_list = b;
    }
}

static void heap_init(void) {
    heap_ready = true;
    heap_lo = ((uint32_t)(uintptr_t)&__heap_base + 7u) & ~7u;
    heap_hi = memory_bytes();
    if (heap_hi > heap_lo && heap_hi - heap_lo >= MIN_BLOCK) heap_insert(heap_lo, heap_hi - heap_lo);
    else heap_hi = heap_lo;
}

/* Grow memory by enough pages for a block of `need` bytes. The new pages may not
 * follow our last region (someone else may have grown the memory), so they are just
 * another free block; adjacency decides whether it merges. */
static bool heap_grow(uint32_t need) {
    uint32_t pages = (need + PAGE - 1) / PAGE;
    int32_t old = __builtin_wasm_memory_grow(0, pages);
    if (old < 0) return false;
    uint32_t start = (uint32_t)old * PAGE;
    uint64_t end = (uint64_t)start + (uint64_t)pages * PAGE;
    if (end > 0xFFFFFFF8u) end = 0xFFFFFFF8u; /* keep sizes in u32 at the 4 GiB edge */
    if (end - start < MIN_BLOCK) return false;
    heap_insert(start, (uint32_t)(end - start));
    if (end > heap_hi) heap_hi = (uint32_t)end;
    return true;
}

void *cgrf_alloc(uint32_t size) {
    if (size == 0 || size > 0x7FFF0000u) return 0;
    if (!heap_ready) heap_init();
    uint32_t need = (size + HDR + 7u) & ~7u;
    if (need < MIN_BLOCK) need = MIN_BLOCK;
    for (;;) {
        free_block *prev = 0, *b = free_list;
        while (b && b->size < need) {
            prev = b;
            b = b->next;
        }
        if (b) {
            free_block *rest = b->next;
            if (b->size - need >= MIN_BLOCK) { /* split: the tail stays free, in place */
                free_block *tail = (free_block *)((uint8_t *)b + need);
                tail->size = b->size - need;
                tail->magic = MAGIC_FREE;
                tail->next = b->next;
                rest = tail;
                b->size = need;
            }
            if (prev) prev->next = rest;
            else free_list = rest;
            b->magic = MAGIC_USED;
            return (uint8_t *)b + HDR;
        }
        if (!heap_grow(need)) return 0;
    }
}

void cgrf_free(void *ptr, uint32_t size) {
    (void)size; /* the header knows the size */
    uint32_t addr = (uint32_t)(uintptr_t)ptr;
    if (!heap_ready || addr < heap_lo + HDR || addr >= heap_hi || (addr & 7u)) return;
    free_block *b = (free_block *)(uintptr_t)(addr - HDR);
    if (b->magic != MAGIC_USED || b->size < MIN_BLOCK || (uint64_t)addr - HDR + b->size > heap_hi)
        return; /* not a live block of ours: ignore rather than corrupt the heap */
    heap_insert(addr - HDR, b->size);
}

static void *out_alloc(uint32_t size) { return cgrf_alloc(size); }
static void out_free(void *ptr, uint32_t size) { cgrf_free(ptr, size); }
#endif

__attribute__((export_name("__pack_alloc"))) int32_t __pack_alloc(int32_t size) {
    if (size <= 0) return 0;
    void *p = out_alloc((uint32_t)size);
    if (!p) return 0;
    __builtin_memset(p, 0, (uint32_t)size);
    return (int32_t)(uintptr_t)p;
}

__attribute__((export_name("__pack_free"))) void __pack_free(int32_t ptr, int32_t len) {
    if (ptr == 0 || len == 0) return;
    out_free((void *)(uintptr_t)(uint32_t)ptr, (uint32_t)len);
}

/* ===================================================================== arena */

/* Chunks are linked newest first; a mark is (chunk, bytes used in it). */
typedef struct chunk {
    struct chunk *prev;
    uint32_t size; /* usable bytes after the header */
    uint32_t used;
} chunk;

#define CHUNK_HDR ((uint32_t)((sizeof(chunk) + 7u) & ~7u))
#define CHUNK_DEFAULT (64u * 1024u - 64u)

static chunk *arena_head;

void *cgrf_arena_alloc(uint32_t size) {
    size = (size + 7u) & ~7u;
    if (size > 0x7FFF0000u) return 0;
    chunk *c = arena_head;
    if (!c || c->size - c->used < size) {
        uint32_t want = size > CHUNK_DEFAULT / 4 ? size : CHUNK_DEFAULT;
        c = cgrf_alloc(CHUNK_HDR + want);
        if (!c && want > size) c = cgrf_alloc(CHUNK_HDR + (want = size)); /* memory is tight */
        if (!c) return 0;
        c->prev = arena_head;
        c->size = want;
        c->used = 0;
        arena_head = c;
    }
    void *p = (uint8_t *)c + CHUNK_HDR + c->used;
    c->used += size;
    return p;
}

void *cgrf_arena_must(uint32_t size) {
    void *p = cgrf_arena_alloc(size);
    if (!p) cgrf_panic();
    return p;
}

cgrf_mark cgrf_arena_mark(void) {
    return (cgrf_mark){arena_head, arena_head ? arena_head->used : 0};
}

void cgrf_arena_release(cgrf_mark mark) {
    while (arena_head && arena_head != (chunk *)mark.chunk) {
        chunk *c = arena_head;
        arena_head = c->prev;
        cgrf_free(c, CHUNK_HDR + c->size);
    }
    if (arena_head) arena_head->used = mark.used;
}

cgrf_str cgrf_str_copy(cgrf_str s) {
    char *p = cgrf_arena_must(s.len ? s.len : 1);
    mem_copy(p, s.ptr, s.len);
    return (cgrf_str){p, s.len};
}

/* A growable array in the arena. Outgrown copies stay behind until the arena is
 * released, which at most doubles the space used. */
typedef struct {
    uint8_t *data;
    uint32_t len, cap, esz;
} vec;

static bool vec_grow(vec *v) {
    if (v->len < v->cap) return true;
    uint32_t cap = v->cap ? v->cap * 2 : 16;
    if (cap > 0x7FFF0000u / v->esz) return false;
    uint8_t *p = cgrf_arena_alloc(cap * v->esz);
    if (!p) return false;
    mem_copy(p, v->data, v->len * v->esz);
    v->data = p;
    v->cap = cap;
    return true;
}

#define VEC(type) ((vec){0, 0, 0, (uint32_t)sizeof(type)})
#define VEC_AT(v, type, i) (((type *)(v).data)[i])
#define VEC_TOP(v, type) (((type *)(v).data)[(v).len - 1])

void cgrf_stack_push(cgrf_stack *s, void *p) {
    if (s->len == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        void **items = cgrf_arena_must(cap * (uint32_t)sizeof(void *));
        mem_copy(items, s->items, s->len * (uint32_t)sizeof(void *));
        s->items = items;
        s->cap = cap;
    }
    s->items[s->len++] = p;
}

/* ============================================================ string builder */

void cgrf_sb_bytes(cgrf_sb *sb, const char *p, uint32_t n) {
    if (sb->len + n > sb->cap) {
        uint32_t cap = sb->cap ? sb->cap * 2 : 32;
        while (cap < sb->len + n) cap *= 2;
        char *q = cgrf_arena_must(cap);
        mem_copy(q, sb->ptr, sb->len);
        sb->ptr = q;
        sb->cap = cap;
    }
    mem_copy(sb->ptr + sb->len, p, n);
    sb->len += n;
}

void cgrf_sb_str(cgrf_sb *sb, cgrf_str s) { cgrf_sb_bytes(sb, s.ptr, s.len); }
void cgrf_sb_cstr(cgrf_sb *sb, const char *s) { cgrf_sb_str(sb, cgrf_cstr(s)); }

static uint32_t fmt_u64(char *out, uint64_t x) {
    char tmp[20];
    uint32_t n = 0;
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    for (uint32_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

void cgrf_sb_u64(cgrf_sb *sb, uint64_t x) {
    char buf[20];
    cgrf_sb_bytes(sb, buf, fmt_u64(buf, x));
}

void cgrf_sb_s64(cgrf_sb *sb, int64_t x) {
    if (x < 0) {
        cgrf_sb_bytes(sb, "-", 1);
        cgrf_sb_u64(sb, (uint64_t)0 - (uint64_t)x);
    } else {
        cgrf_sb_u64(sb, (uint64_t)x);
    }
}

cgrf_str cgrf_sb_done(cgrf_sb *sb) { return (cgrf_str){sb->ptr ? sb->ptr : "", sb->len}; }

/* ===================================================================== types */

#define PRIM(id, tag_) const cgrf_type id = {(tag_), 0, 0, {0, 0}}
PRIM(cgrf_t_bool, CGRF_BOOL);
PRIM(cgrf_t_u8, CGRF_U8);
PRIM(cgrf_t_u16, CGRF_U16);
PRIM(cgrf_t_u32, CGRF_U32);
PRIM(cgrf_t_u64, CGRF_U64);
PRIM(cgrf_t_s8, CGRF_S8);
PRIM(cgrf_t_s16, CGRF_S16);
PRIM(cgrf_t_s32, CGRF_S32);
PRIM(cgrf_t_s64, CGRF_S64);
PRIM(cgrf_t_f32, CGRF_F32);
PRIM(cgrf_t_f64, CGRF_F64);
PRIM(cgrf_t_char, CGRF_CHAR);
PRIM(cgrf_t_string, CGRF_STRING);
PRIM(cgrf_t_flags, CGRF_FLAGS);
const cgrf_type cgrf_t_unit = {CGRF_TUPLE, 0, 0, {0, 0}};

const cgrf_type *cgrf_prim_type(uint8_t tag) {
    switch (tag) {
    case CGRF_BOOL: return &cgrf_t_bool;
    case CGRF_U8: return &cgrf_t_u8;
    case CGRF_U16: return &cgrf_t_u16;
    case CGRF_U32: return &cgrf_t_u32;
    case CGRF_U64: return &cgrf_t_u64;
    case CGRF_S8: return &cgrf_t_s8;
    case CGRF_S16: return &cgrf_t_s16;
    case CGRF_S32: return &cgrf_t_s32;
    case CGRF_S64: return &cgrf_t_s64;
    case CGRF_F32: return &cgrf_t_f32;
    case CGRF_F64: return &cgrf_t_f64;
    case CGRF_CHAR: return &cgrf_t_char;
    case CGRF_STRING: return &cgrf_t_string;
    case CGRF_FLAGS: return &cgrf_t_flags;
    default: return 0;
    }
}

uint32_t cgrf_fixed_width(uint8_t tag) {
    switch (tag) {
    case CGRF_BOOL: case CGRF_U8: case CGRF_S8: return 1;
    case CGRF_U16: case CGRF_S16: return 2;
    case CGRF_U32: case CGRF_S32: case CGRF_F32: case CGRF_CHAR: return 4;
    case CGRF_U64: case CGRF_S64: case CGRF_F64: case CGRF_FLAGS: return 8;
    default: return 0;
    }
}

static const cgrf_type *type_new(uint8_t tag, uint32_t count) {
    cgrf_type *t = cgrf_arena_must(sizeof(cgrf_type));
    const cgrf_type **items = count ? cgrf_arena_must(count * (uint32_t)sizeof(void *)) : 0;
    *t = (cgrf_type){tag, count, items, {0, 0}};
    return t;
}

const cgrf_type *cgrf_type_list(const cgrf_type *elem) {
    const cgrf_type *t = type_new(CGRF_LIST, 1);
    ((const cgrf_type **)t->items)[0] = elem;
    return t;
}

const cgrf_type *cgrf_type_option(const cgrf_type *inner) {
    const cgrf_type *t = type_new(CGRF_OPTION, 1);
    ((const cgrf_type **)t->items)[0] = inner;
    return t;
}

const cgrf_type *cgrf_type_result(const cgrf_type *ok, const cgrf_type *err) {
    const cgrf_type *t = type_new(CGRF_RESULT, 2);
    ((const cgrf_type **)t->items)[0] = ok;
    ((const cgrf_type **)t->items)[1] = err;
    return t;
}

const cgrf_type *cgrf_type_named(uint8_t tag, cgrf_str name) {
    cgrf_type *t = (cgrf_type *)type_new(tag, 0);
    t->name = name;
    return t;
}

bool cgrf_type_equal(const cgrf_type *a, const cgrf_type *b) {
    cgrf_stack todo = {0};
    cgrf_mark m = cgrf_arena_mark();
    bool equal = true;
    cgrf_stack_push(&todo, (void *)a);
    cgrf_stack_push(&todo, (void *)b);
    while (equal && todo.len) {
        const cgrf_type *y = todo.items[--todo.len];
        const cgrf_type *x = todo.items[--todo.len];
        if (x == y) continue;
        if (x->tag != y->tag || x->count != y->count) equal = false;
        else if ((x->tag == CGRF_RECORD || x->tag == CGRF_VARIANT) && !cgrf_str_eq(x->name, y->name))
            equal = false;
        else
            for (uint32_t i = 0; i < x->count; i++) {
                cgrf_stack_push(&todo, (void *)x->items[i]);
                cgrf_stack_push(&todo, (void *)y->items[i]);
            }
    }
    cgrf_arena_release(m);
    return equal;
}

/* ==================================================================== values */

cgrf_value *cgrf_new(uint8_t kind, uint32_t n) {
    cgrf_value *v = cgrf_arena_must(sizeof(cgrf_value));
    __builtin_memset(v, 0, sizeof *v);
    v->kind = kind;
    v->count = n;
    if (n) v->kids = cgrf_arena_must(n * (uint32_t)sizeof(cgrf_value *));
    return v;
}

cgrf_value *cgrf_bool(bool b) {
    cgrf_value *v = cgrf_new(CGRF_BOOL, 0);
    v->flag = b;
    return v;
}

cgrf_value *cgrf_int(uint8_t kind, uint64_t bits) {
    cgrf_value *v = cgrf_new(kind, 0);
    v->bits = bits;
    return v;
}

cgrf_value *cgrf_s64(int64_t x) { return cgrf_int(CGRF_S64, (uint64_t)x); }
cgrf_value *cgrf_u64(uint64_t x) { return cgrf_int(CGRF_U64, x); }
cgrf_value *cgrf_s32(int32_t x) { return cgrf_int(CGRF_S32, (uint64_t)(int64_t)x); }
cgrf_value *cgrf_u32(uint32_t x) { return cgrf_int(CGRF_U32, x); }

cgrf_value *cgrf_f64(double x) {
    uint64_t bits;
    __builtin_memcpy(&bits, &x, 8);
    return cgrf_int(CGRF_F64, bits);
}

cgrf_value *cgrf_string(cgrf_str s) {
    cgrf_value *v = cgrf_new(CGRF_STRING, 0);
    v->str = s;
    return v;
}

cgrf_value *cgrf_string_c(const char *s) { return cgrf_string(cgrf_cstr(s)); }
cgrf_value *cgrf_unit(void) { return cgrf_new(CGRF_TUPLE, 0); }
cgrf_value *cgrf_tuple(uint32_t n) { return cgrf_new(CGRF_TUPLE, n); }

cgrf_value *cgrf_tuple2(cgrf_value *a, cgrf_value *b) {
    cgrf_value *t = cgrf_tuple(2);
    t->kids[0] = a;
    t->kids[1] = b;
    return t;
}

cgrf_value *cgrf_list(const cgrf_type *elem, uint32_t n) {
    cgrf_value *v = cgrf_new(CGRF_LIST, n);
    v->type = elem;
    return v;
}

cgrf_value *cgrf_record(cgrf_str type_name, uint32_t n) {
    cgrf_value *v = cgrf_new(CGRF_RECORD, n);
    v->str = type_name;
    if (n) v->names = cgrf_arena_must(n * (uint32_t)sizeof(cgrf_str));
    return v;
}

void cgrf_record_set(cgrf_value *rec, uint32_t i, const char *field, cgrf_value *v) {
    rec->names[i] = cgrf_cstr(field);
    rec->kids[i] = v;
}

cgrf_value *cgrf_variant(cgrf_str type_name, cgrf_str case_name, uint32_t tag, uint32_t n) {
    cgrf_value *v = cgrf_new(CGRF_VARIANT, n);
    v->str = type_name;
    v->case_name = case_name;
    v->tag = tag;
    return v;
}

cgrf_value *cgrf_some(const cgrf_type *inner, cgrf_value *x) {
    cgrf_value *v = cgrf_new(CGRF_OPTION, 1);
    v->flag = 1;
    v->type = inner;
    v->kids[0] = x;
    return v;
}

cgrf_value *cgrf_none(const cgrf_type *inner) {
    cgrf_value *v = cgrf_new(CGRF_OPTION, 0);
    v->type = inner;
    return v;
}

static cgrf_value *result_new(const cgrf_type *ok, const cgrf_type *err, cgrf_value *x, bool is_err) {
    cgrf_value *v = cgrf_new(CGRF_RESULT, 1);
    v->flag = is_err;
    v->type = ok;
    v->err_type = err;
    v->kids[0] = x;
    return v;
}

cgrf_value *cgrf_ok(const cgrf_type *ok, const cgrf_type *err, cgrf_value *x) {
    return result_new(ok, err, x, false);
}

cgrf_value *cgrf_err(const cgrf_type *ok, const cgrf_type *err, cgrf_value *x) {
    return result_new(ok, err, x, true);
}

cgrf_value *cgrf_record_get(const cgrf_value *rec, const char *name) {
    if (!rec || rec->kind != CGRF_RECORD) return 0;
    cgrf_str want = cgrf_cstr(name);
    for (uint32_t i = 0; i < rec->count; i++)
        if (cgrf_str_eq(rec->names[i], want)) return rec->kids[i];
    return 0;
}

static bool float_eq(const cgrf_value *a, const cgrf_value *b) {
    if (a->kind == CGRF_F32) {
        float x, y;
        uint32_t xb = (uint32_t)a->bits, yb = (uint32_t)b->bits;
        __builtin_memcpy(&x, &xb, 4);
        __builtin_memcpy(&y, &yb, 4);
        return x == y;
    }
    double x, y;
    __builtin_memcpy(&x, &a->bits, 8);
    __builtin_memcpy(&y, &b->bits, 8);
    return x == y;
}

bool cgrf_equal(const cgrf_value *a, const cgrf_value *b) {
    cgrf_stack todo = {0};
    cgrf_mark m = cgrf_arena_mark();
    bool equal = true;
    cgrf_stack_push(&todo, (void *)a);
    cgrf_stack_push(&todo, (void *)b);
    while (equal && todo.len) {
        const cgrf_value *y = todo.items[--todo.len];
        const cgrf_value *x = todo.items[--todo.len];
        if (x->kind != y->kind || x->count != y->count) {
            equal = false;
            break;
        }
        switch (x->kind) {
        case CGRF_BOOL: equal = x->flag == y->flag; break;
        case CGRF_F32: case CGRF_F64: equal = float_eq(x, y); break;
        case CGRF_STRING: equal = cgrf_str_eq(x->str, y->str); break;
        case CGRF_LIST: case CGRF_OPTION: equal = cgrf_type_equal(x->type, y->type); break;
        case CGRF_RESULT:
            equal = x->flag == y->flag && cgrf_type_equal(x->type, y->type) &&
                    cgrf_type_equal(x->err_type, y->err_type);
            break;
        case CGRF_RECORD:
            equal = cgrf_str_eq(x->str, y->str);
            for (uint32_t i = 0; equal && i < x->count; i++) equal = cgrf_str_eq(x->names[i], y->names[i]);
            break;
        case CGRF_VARIANT:
            equal = x->tag == y->tag && cgrf_str_eq(x->str, y->str) && cgrf_str_eq(x->case_name, y->case_name);
            break;
        case CGRF_TUPLE: break;
        default: equal = x->bits == y->bits; break; /* integers, char, flags */
        }
        for (uint32_t i = 0; equal && i < x->count; i++) {
            cgrf_stack_push(&todo, x->kids[i]);
            cgrf_stack_push(&todo, y->kids[i]);
        }
    }
    cgrf_arena_release(m);
    return equal;
}

bool cgrf_conforms(const cgrf_value *v, const cgrf_type *t) {
    /* Recursion follows the declared type, which is a small static declaration. */
    if (!t) return true;
    if (v->kind != t->tag) return false;
    switch (t->tag) {
    case CGRF_LIST:
        for (uint32_t i = 0; i < v->count; i++)
            if (!cgrf_conforms(v->kids[i], t->items[0])) return false;
        return true;
    case CGRF_OPTION: return v->count == 0 || cgrf_conforms(v->kids[0], t->items[0]);
    case CGRF_RESULT: return cgrf_conforms(v->kids[0], t->items[v->flag ? 1 : 0]);
    case CGRF_TUPLE:
        if (v->count != t->count) return false;
        for (uint32_t i = 0; i < v->count; i++)
            if (!cgrf_conforms(v->kids[i], t->items[i])) return false;
        return true;
    default: return true;
    }
}

/* ==================================================================== errors */

static void msg_put(cgrf_error *e, uint32_t *n, const char *s) {
    while (*s && *n < sizeof e->msg - 1) e->msg[(*n)++] = *s++;
    e->msg[*n] = 0;
}

static bool fail(cgrf_error *e, const char *msg) {
    uint32_t n = 0;
    e->kind = CGRF_ERR_INVALID_ENCODING;
    msg_put(e, &n, msg);
    return false;
}

/* "<prefix><number><suffix>", e.g. "Invalid bool payload at node 3". */
static bool fail_num(cgrf_error *e, const char *prefix, uint64_t num, const char *suffix) {
    uint32_t n = 0;
    char digits[21];
    digits[fmt_u64(digits, num)] = 0;
    e->kind = CGRF_ERR_INVALID_ENCODING;
    msg_put(e, &n, prefix);
    msg_put(e, &n, digits);
    msg_put(e, &n, suffix);
    return false;
}

static bool fail_small(cgrf_error *e, uint64_t need, uint64_t have) {
    e->kind = CGRF_ERR_BUFFER_TOO_SMALL;
    e->need = need;
    e->have = have;
    return false;
}

static bool fail_tag(cgrf_error *e, uint32_t tag) {
    e->kind = CGRF_ERR_INVALID_TAG;
    e->tag = tag;
    return false;
}

static bool fail_oom(cgrf_error *e) {
    e->kind = CGRF_ERR_OUT_OF_MEMORY;
    return false;
}

uint32_t cgrf_error_debug(const cgrf_error *e, char *out, uint32_t cap) {
    char buf[160];
    uint32_t n = 0;
#define PUT(s)                                                          \
    do {                                                                \
        for (const char *p_ = (s); *p_ && n < sizeof buf; p_++) buf[n++] = *p_; \
    } while (0)
#define PUTNUM(x)                                                       \
    do {                                                                \
        char d_[21];                                                    \
        d_[fmt_u64(d_, (x))] = 0;                                       \
        PUT(d_);                                                        \
    } while (0)
    switch (e->kind) {
    case CGRF_ERR_BUFFER_TOO_SMALL:
        PUT("BufferTooSmall { need: ");
        PUTNUM(e->need);
        PUT(", have: ");
        PUTNUM(e->have);
        PUT(" }");
        break;
    case CGRF_ERR_INVALID_TAG:
        PUT("InvalidTag(");
        PUTNUM(e->tag);
        PUT(")");
        break;
    case CGRF_ERR_OUT_OF_MEMORY: PUT("InvalidEncoding(\"out of memory\")"); break;
    default:
        /* Our messages never contain quotes or backslashes, so Debug adds none. */
        PUT("InvalidEncoding(\"");
        PUT(e->msg);
        PUT("\")");
        break;
    }
#undef PUT
#undef PUTNUM
    if (n > cap) n = cap;
    mem_copy(out, buf, n);
    return n;
}

/* ==================================================================== UTF-8 */

/* Strict UTF-8 as Rust's from_utf8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, uint32_t n) {
    uint32_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t extra, cp;
        if (c >= 0xC2 && c <= 0xDF) extra = 1, cp = c & 0x1Fu;
        else if (c >= 0xE0 && c <= 0xEF) extra = 2, cp = c & 0x0Fu;
        else if (c >= 0xF0 && c <= 0xF4) extra = 3, cp = c & 0x07u;
        else return false;
        if (n - i - 1 < extra) return false;
        for (uint32_t k = 1; k <= extra; k++) {
            uint8_t b = s[i + k];
            if ((b & 0xC0) != 0x80) return false;
            cp = cp << 6 | (b & 0x3Fu);
        }
        if (extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
        if (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
        i += extra + 1;
    }
    return true;
}

static bool char_valid(uint32_t c) { return c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF); }

/* =================================================================== decoder */

/* Reads inside one node payload [start, end): short reads report BufferTooSmall
 * relative to the payload, as packr does. */
typedef struct {
    const uint8_t *data;
    uint32_t start, end;
    cgrf_error *err;
} payload;

static bool rd_u32(payload *p, uint32_t *pos, uint32_t *out) {
    if ((uint64_t)*pos + 4 > p->end)
        return fail_small(p->err, (uint64_t)*pos + 4 - p->start, p->end - p->start);
    *out = rd32(p->data + *pos);
    *pos += 4;
    return true;
}

static bool rd_name(payload *p, uint32_t *pos, cgrf_str *out, const char *what) {
    uint32_t n;
    if (!rd_u32(p, pos, &n)) return false;
    if ((uint64_t)*pos + n > p->end)
        return fail_small(p->err, (uint64_t)*pos + n - p->start, p->end - p->start);
    if (!utf8_valid(p->data + *pos, n)) {
        uint32_t k = 0;
        p->err->kind = CGRF_ERR_INVALID_ENCODING;
        msg_put(p->err, &k, "Invalid UTF-8 in ");
        msg_put(p->err, &k, what);
        return false;
    }
    *out = (cgrf_str){(const char *)p->data + *pos, n};
    *pos += n;
    return true;
}

/* One TYPE(...) at *pos (2.3), without recursion: unfinished compound types wait on
 * a stack of (tag, children still needed) while finished types pile up on `done`. */
typedef struct {
    uint8_t tag;
    uint32_t need, have;
} type_frame;

static bool rd_type(payload *p, uint32_t *pos, const cgrf_type **out) {
    uint32_t i = *pos;
    if (i < p->end) {
        const cgrf_type *prim = cgrf_prim_type(p->data[i]);
        if (prim) { /* the common case: no stacks needed */
            *pos = i + 1;
            *out = prim;
            return true;
        }
    }
    vec pending = VEC(type_frame), done = VEC(const cgrf_type *);
    for (;;) {
        if ((uint64_t)*pos + 1 > p->end)
            return fail_small(p->err, (uint64_t)*pos + 1 - p->start, p->end - p->start);
        uint8_t tag = p->data[(*pos)++];
        const cgrf_type *t = cgrf_prim_type(tag);
        if (!t) {
            uint32_t need = 0;
            if (tag == CGRF_LIST || tag == CGRF_OPTION) need = 1;
            else if (tag == CGRF_RESULT) need = 2;
            else if (tag == CGRF_TUPLE) {
                if (!rd_u32(p, pos, &need)) return false;
            } else if (tag == CGRF_RECORD || tag == CGRF_VARIANT) {
                cgrf_str name;
                if (!rd_name(p, pos, &name, "type name")) return false;
                cgrf_type *nt = cgrf_arena_alloc(sizeof(cgrf_type));
                if (!nt) return fail_oom(p->err);
                *nt = (cgrf_type){tag, 0, 0, name};
                t = nt;
            } else {
                return fail_tag(p->err, tag);
            }
            if (!t && need == 0) t = &cgrf_t_unit; /* tuple<> */
            if (!t) {
                if (!vec_grow(&pending)) return fail_oom(p->err);
                VEC_AT(pending, type_frame, pending.len++) = (type_frame){tag, need, 0};
                continue;
            }
        }
        /* Fold finished types into their parents for as long as parents complete. */
        for (;;) {
            if (pending.len == 0) {
                *out = t;
                return true;
            }
            if (!vec_grow(&done)) return fail_oom(p->err);
            VEC_AT(done, const cgrf_type *, done.len++) = t;
            type_frame *top = &VEC_TOP(pending, type_frame);
            if (++top->have < top->need) break;
            cgrf_type *nt = cgrf_arena_alloc(sizeof(cgrf_type));
            const cgrf_type **items = cgrf_arena_alloc(top->need * (uint32_t)sizeof(void *));
            if (!nt || !items) return fail_oom(p->err);
            done.len -= top->need;
            mem_copy(items, &VEC_AT(done, const cgrf_type *, done.len), top->need * (uint32_t)sizeof(void *));
            *nt = (cgrf_type){top->tag, top->need, items, {0, 0}};
            pending.len--;
            t = nt;
        }
    }
}

typedef struct {
    const uint8_t *data;
    uint32_t size, count, root;
    uint8_t *kinds;
    uint32_t *starts, *ends;
    cgrf_error *err;
} decoder;

static bool valid_kind(uint8_t k) { return k >= CGRF_BOOL && k <= CGRF_ARRAY; }

/* Phase A (2.7): header and node table. A first pass validates without storing, so
 * an absurd node_count is never allocated for. */
static bool dec_container(decoder *d) {
    const uint8_t *b = d->data;
    uint64_t size = d->size;
    cgrf_error *e = d->err;
    if (size > MAX_BUFFER_SIZE) return fail(e, "Buffer too large");
    if (size < 4) return fail_small(e, 4, size);
    if (!mem_eq(b, "CGRF", 4)) return fail(e, "Invalid magic");
    if (size < 6) return fail_small(e, 6, size);
    if (rd16(b + 4) != 2) return fail(e, "Unsupported version");
    if (size < 8) return fail_small(e, 8, size); /* flags: read and ignored */
    if (size < 12) return fail_small(e, 12, size);
    uint32_t count = rd32(b + 8);
    if (count > MAX_NODE_COUNT) return fail(e, "Node count exceeds limit");
    if (size < 16) return fail_small(e, 16, size);
    uint32_t root = rd32(b + 12);
    uint64_t pos = 16;
    for (uint32_t i = 0; i < count; i++) {
        if (pos + 1 > size) return fail_small(e, pos + 1, size);
        if (!valid_kind(b[pos])) return fail_tag(e, b[pos]);
        if (pos + 2 > size) return fail_small(e, pos + 2, size);
        if (pos + 4 > size) return fail_small(e, pos + 4, size);
        if (pos + 8 > size) return fail_small(e, pos + 8, size);
        uint32_t plen = rd32(b + pos + 4);
        if (plen > MAX_PAYLOAD_SIZE) return fail(e, "Payload too large");
        uint64_t end = pos + 8 + plen;
        if (end > size) return fail_small(e, end, size);
        pos = end;
    }
    if (root >= count) return fail(e, "Root index out of range");
    if (pos != size) return fail(e, "Trailing bytes");
    d->count = count;
    d->root = root;
    d->kinds = cgrf_arena_alloc(count);
    d->starts = cgrf_arena_alloc(count * 4u);
    d->ends = cgrf_arena_alloc(count * 4u);
    if (!d->kinds || !d->starts || !d->ends) return fail_oom(e);
    pos = 16;
    for (uint32_t i = 0; i < count; i++) {
        d->kinds[i] = b[pos];
        d->starts[i] = (uint32_t)pos + 8;
        pos += 8 + rd32(b + pos + 4);
        d->ends[i] = (uint32_t)pos;
    }
    return true;
}

/* Phase B: packr's validate_basic over every node, reachable or not. */
static bool dec_validate(decoder *d) {
    cgrf_error *e = d->err;
    for (uint32_t i = 0; i < d->count; i++) {
        uint8_t kind = d->kinds[i];
        uint32_t start = d->starts[i], plen = d->ends[i] - start;
        const uint8_t *p = d->data + start;
        uint64_t used;
        switch (kind) {
        case CGRF_LIST: case CGRF_OPTION: case CGRF_RECORD: case CGRF_VARIANT: case CGRF_RESULT:
            continue; /* checked while decoding */
        case CGRF_TUPLE: {
            if (plen < 4) return fail_small(e, 4, plen);
            uint32_t n = rd32(p), avail = (plen - 4) / 4;
            if (n > MAX_SEQUENCE_LEN) return fail_num(e, "Sequence too large at node ", i, "");
            for (uint32_t k = 0; k < n && k < avail; k++)
                if (rd32(p + 4 + 4 * k) >= d->count)
                    return fail_num(e, "Child index out of range at node ", i, "");
            if (n > avail) return fail_small(e, 4 + 4 * (uint64_t)avail + 4, plen);
            used = 4 + 4 * (uint64_t)n;
            break;
        }
        case CGRF_STRING: {
            if (plen < 4) return fail_small(e, 4, plen);
            uint32_t n = rd32(p);
            if (4 + (uint64_t)n > plen) return fail_small(e, 4 + (uint64_t)n, plen);
            if (!utf8_valid(p + 4, n)) return fail_num(e, "Invalid UTF-8 string at node ", i, "");
            used = 4 + (uint64_t)n;
            break;
        }
        case CGRF_ARRAY: {
            payload pl = {d->data, start, d->ends[i], e};
            uint32_t pos = start, n;
            const cgrf_type *elem;
            if (!rd_type(&pl, &pos, &elem)) return false;
            uint32_t width = cgrf_fixed_width(elem->tag);
            if (!width) return fail_num(e, "Non-primitive element type in Array at node ", i, "");
            uint32_t rel = pos - start;
            if ((uint64_t)rel + 4 > plen) return fail_small(e, (uint64_t)rel + 4, plen);
            n = rd32(d->data + pos);
            if (n > MAX_SEQUENCE_LEN) return fail_num(e, "Sequence too large at node ", i, "");
            used = (uint64_t)rel + 4 + (uint64_t)n * width;
            if (used > plen) return fail_small(e, used, plen);
            break;
        }
        case CGRF_BOOL:
            if (plen < 1) return fail_small(e, 1, plen);
            if (p[0] > 1) return fail_num(e, "Invalid bool payload at node ", i, "");
            used = 1;
            break;
        case CGRF_CHAR:
            if (plen < 4) return fail_small(e, 4, plen);
            if (!char_valid(rd32(p))) return fail_num(e, "Invalid char scalar at node ", i, "");
            used = 4;
            break;
        default: { /* the remaining fixed-size scalars */
            uint32_t width = cgrf_fixed_width(kind);
            if (plen < width) return fail_small(e, width, plen);
            used = width;
            break;
        }
        }
        if (used != plen) return fail_num(e, "Trailing payload bytes at node ", i, "");
    }
    return true;
}

static uint64_t sign_extend(uint64_t x, uint32_t bytes) {
    uint32_t shift = 64 - 8 * bytes;
    return (uint64_t)((int64_t)(x << shift) >> shift);
}

/* A scalar of `kind` from its little-endian bytes. */
static uint64_t scalar_bits(uint8_t kind, const uint8_t *p) {
    switch (kind) {
    case CGRF_U8: case CGRF_BOOL: return p[0];
    case CGRF_S8: return sign_extend(p[0], 1);
    case CGRF_U16: return rd16(p);
    case CGRF_S16: return sign_extend(rd16(p), 2);
    case CGRF_U32: case CGRF_F32: case CGRF_CHAR: return rd32(p);
    case CGRF_S32: return sign_extend(rd32(p), 4);
    default: return rd64(p); /* U64, S64, F64, FLAGS */
    }
}

static cgrf_value *value_alloc(uint8_t kind, uint32_t n, cgrf_error *e) {
    cgrf_value *v = cgrf_arena_alloc(sizeof(cgrf_value));
    if (!v) return (fail_oom(e), (cgrf_value *)0);
    __builtin_memset(v, 0, sizeof *v);
    v->kind = kind;
    v->count = n;
    if (n) {
        v->kids = cgrf_arena_alloc(n * (uint32_t)sizeof(cgrf_value *));
        if (!v->kids) return (fail_oom(e), (cgrf_value *)0);
    }
    return v;
}

/* A node without children (a scalar, a string, or an Array) as a value. */
static cgrf_value *dec_leaf(decoder *d, uint32_t node) {
    uint8_t kind = d->kinds[node];
    uint32_t start = d->starts[node];
    const uint8_t *p = d->data + start;
    cgrf_error *e = d->err;
    if (kind == CGRF_STRING) {
        cgrf_value *v = value_alloc(kind, 0, e);
        if (v) v->str = (cgrf_str){(const char *)p + 4, rd32(p)};
        return v;
    }
    if (kind != CGRF_ARRAY) {
        cgrf_value *v = value_alloc(kind, 0, e);
        if (!v) return 0;
        v->bits = scalar_bits(kind, p);
        if (kind == CGRF_BOOL) v->flag = p[0] == 1;
        return v;
    }
    payload pl = {d->data, start, d->ends[node], e};
    uint32_t pos = start;
    const cgrf_type *elem;
    if (!rd_type(&pl, &pos, &elem)) return 0;
    uint32_t n = rd32(d->data + pos), width = cgrf_fixed_width(elem->tag);
    pos += 4;
    cgrf_value *list = value_alloc(CGRF_LIST, n, e);
    cgrf_value *items = n ? cgrf_arena_alloc(n * (uint32_t)sizeof(cgrf_value)) : 0;
    if (!list || (n && !items)) return (fail_oom(e), (cgrf_value *)0);
    list->type = elem;
    for (uint32_t k = 0; k < n; k++) {
        cgrf_value *it = &items[k];
        __builtin_memset(it, 0, sizeof *it);
        it->kind = elem->tag;
        it->bits = scalar_bits(elem->tag, d->data + pos + k * width);
        if (elem->tag == CGRF_BOOL) it->flag = it->bits != 0; /* Array bools: any non-zero */
        if (elem->tag == CGRF_CHAR && !char_valid((uint32_t)it->bits))
            return (fail(e, "Invalid char in array"), (cgrf_value *)0);
        list->kids[k] = it;
    }
    return list;
}

/* A compound node being decoded: its header is parsed, its child indices are read
 * one at a time from `cursor`, and decoded children wait on the value stack. */
typedef struct {
    uint32_t node;
    uint8_t kind, is_err;
    uint32_t start, cursor, end;
    uint32_t remaining, base, tag;
    const cgrf_type *t1, *t2;
    cgrf_str s1, s2;
    cgrf_str *names;
} frame;

static bool dec_enter(decoder *d, uint32_t node, frame *f) {
    payload pl = {d->data, d->starts[node], d->ends[node], d->err};
    uint32_t pos = pl.start, count = 0;
    __builtin_memset(f, 0, sizeof *f);
    f->node = node;
    f->kind = d->kinds[node];
    f->start = pl.start;
    f->end = pl.end;
    switch (f->kind) {
    case CGRF_TUPLE:
        count = rd32(d->data + pos); /* validated in phase B */
        pos += 4;
        break;
    case CGRF_LIST:
        if (!rd_type(&pl, &pos, &f->t1)) return false;
        if (cgrf_fixed_width(f->t1->tag))
            return fail(d->err, "List node with primitive elem_type; expected Array node");
        if (!rd_u32(&pl, &pos, &count)) return false;
        break;
    case CGRF_RECORD: {
        if (!rd_name(&pl, &pos, &f->s1, "type name")) return false;
        if (!rd_u32(&pl, &pos, &count)) return false;
        /* Each name needs at least 4 bytes, so this many slots always suffice until
         * a read fails. */
        uint32_t cap = (pl.end - pos) / 4;
        if (cap > count) cap = count;
        f->names = cap ? cgrf_arena_alloc(cap * (uint32_t)sizeof(cgrf_str)) : 0;
        if (cap && !f->names) return fail_oom(d->err);
        for (uint32_t k = 0; k < count; k++) {
            cgrf_str name;
            if (!rd_name(&pl, &pos, &name, "field name")) return false;
            f->names[k] = name;
        }
        break;
    }
    case CGRF_VARIANT:
        if (!rd_name(&pl, &pos, &f->s1, "type name")) return false;
        if (!rd_name(&pl, &pos, &f->s2, "case name")) return false;
        if (!rd_u32(&pl, &pos, &f->tag)) return false;
        if (!rd_u32(&pl, &pos, &count)) return false;
        break;
    case CGRF_OPTION:
        if (!rd_type(&pl, &pos, &f->t1)) return false;
        if ((uint64_t)pos + 1 > pl.end) return fail_small(d->err, (uint64_t)pos + 1 - pl.start, pl.end - pl.start);
        count = d->data[pos++] == 1 ? 1 : 0; /* any presence byte but 1 is None */
        break;
    default: { /* CGRF_RESULT */
        uint32_t tag;
        if (!rd_type(&pl, &pos, &f->t1) || !rd_type(&pl, &pos, &f->t2)) return false;
        if (!rd_u32(&pl, &pos, &tag)) return false;
        if ((uint64_t)pos + 1 > pl.end) return fail_small(d->err, (uint64_t)pos + 1 - pl.start, pl.end - pl.start);
        if (d->data[pos++] != 1) return fail(d->err, "Result must have payload");
        f->is_err = tag != 0;
        count = 1;
        break;
    }
    }
    f->cursor = pos;
    f->remaining = count;
    return true;
}

static cgrf_value *dec_build(decoder *d, frame *f, vec *values) {
    uint32_t n = values->len - f->base;
    cgrf_value *v = value_alloc(f->kind, n, d->err);
    if (!v) return 0;
    mem_copy(v->kids, &VEC_AT(*values, cgrf_value *, f->base), n * (uint32_t)sizeof(cgrf_value *));
    values->len = f->base;
    switch (f->kind) {
    case CGRF_LIST: v->type = f->t1; break;
    case CGRF_RECORD: v->str = f->s1; v->names = f->names; break;
    case CGRF_VARIANT: v->str = f->s1; v->case_name = f->s2; v->tag = f->tag; break;
    case CGRF_OPTION: v->type = f->t1; v->flag = n == 1; break;
    case CGRF_RESULT: v->type = f->t1; v->err_type = f->t2; v->flag = f->is_err; break;
    default: break;
    }
    return v;
}

static bool is_compound(uint8_t k) {
    return k == CGRF_LIST || k == CGRF_VARIANT || k == CGRF_RECORD || k == CGRF_OPTION ||
           k == CGRF_TUPLE || k == CGRF_RESULT;
}

/* Phase C: decode from the root, iteratively. A node reached twice (a DAG) is
 * decoded once and shared; re-entering a node on the current path is a cycle. */
static bool dec_values(decoder *d, cgrf_value **out) {
    cgrf_error *e = d->err;
    cgrf_value **memo = cgrf_arena_alloc(d->count * (uint32_t)sizeof(cgrf_value *));
    uint8_t *visiting = cgrf_arena_alloc(d->count);
    if (!memo || !visiting) return fail_oom(e);
    __builtin_memset(memo, 0, d->count * sizeof(cgrf_value *));
    __builtin_memset(visiting, 0, d->count);
    vec frames = VEC(frame), values = VEC(cgrf_value *);
    uint32_t child = d->root;
    for (;;) {
        /* Resolve `child` to a value, or enter it. */
        cgrf_value *v;
        if (child >= d->count) return fail_num(e, "Node index ", child, " out of range");
        v = memo[child];
        if (!v) {
            if (visiting[child]) return fail(e, "Cycle detected in graph buffer");
            if (is_compound(d->kinds[child])) {
                if (!vec_grow(&frames)) return fail_oom(e);
                frame *f = &VEC_AT(frames, frame, frames.len);
                if (!dec_enter(d, child, f)) return false;
                f->base = values.len;
                frames.len++;
                visiting[child] = 1;
            } else {
                v = dec_leaf(d, child);
                if (!v) return false;
                memo[child] = v;
            }
        }
        /* Hand finished values to their parents; read the next child index. */
        for (;;) {
            if (v) {
                if (frames.len == 0) {
                    *out = v;
                    return true;
                }
                if (!vec_grow(&values)) return fail_oom(e);
                VEC_AT(values, cgrf_value *, values.len++) = v;
            }
            frame *f = &VEC_TOP(frames, frame);
            if (f->remaining > 0) {
                if ((uint64_t)f->cursor + 4 > f->end)
                    return fail_small(e, (uint64_t)f->cursor + 4 - f->start, f->end - f->start);
                child = rd32(d->data + f->cursor);
                f->cursor += 4;
                f->remaining--;
                break;
            }
            if (f->cursor != f->end) return fail_num(e, "Trailing payload bytes at node ", f->node, "");
            v = dec_build(d, f, &values);
            if (!v) return false;
            visiting[f->node] = 0;
            memo[f->node] = v;
            frames.len--;
        }
    }
}

bool cgrf_decode(const uint8_t *data, uint32_t len, cgrf_value **out, cgrf_error *err) {
    if (len > MAX_BUFFER_SIZE) return fail(err, "Buffer too large"); /* before copying it */
    /* Decode a copy: strings in the result point into it, and the caller may free (or
     * the host overwrite) the source. */
    uint8_t *copy = cgrf_arena_alloc(len ? len : 1);
    if (!copy) return fail_oom(err);
    mem_copy(copy, data, len);
    decoder d = {copy, len, 0, 0, 0, 0, 0, err};
    return dec_container(&d) && dec_validate(&d) && dec_values(&d, out);
}

/* =================================================================== encoder */

/* A writer that only counts when `data` is NULL: the encoder runs twice, once to size
 * the output exactly, once to fill it. */
typedef struct {
    uint8_t *data;
    uint64_t len;
} writer;

static void put(writer *w, const void *src, uint32_t n) {
    if (w->data) mem_copy(w->data + w->len, src, n);
    w->len += n;
}

static void put8(writer *w, uint8_t x) { put(w, &x, 1); }

static void put32(writer *w, uint32_t x) {
    uint8_t b[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
    put(w, b, 4);
}

static void put_le(writer *w, uint64_t x, uint32_t width) {
    uint8_t b[8];
    for (uint32_t i = 0; i < width; i++) b[i] = (uint8_t)(x >> (8 * i));
    put(w, b, width);
}

static void put_str(writer *w, cgrf_str s) {
    put32(w, s.len);
    put(w, s.ptr, s.len);
}

/* TYPE(t) in pre-order with an explicit stack of (type, next child). */
typedef struct {
    const cgrf_type *t;
    uint32_t next;
} type_pos;

static bool put_type(writer *w, const cgrf_type *t, cgrf_error *e) {
    if (!t) return fail(e, "missing declared type");
    if (!t->count) { /* primitives, named types and tuple<> need no stack */
        put8(w, t->tag);
        if (t->tag == CGRF_RECORD || t->tag == CGRF_VARIANT) put_str(w, t->name);
        else if (t->tag == CGRF_TUPLE) put32(w, 0);
        return true;
    }
    vec stack = VEC(type_pos);
    if (!vec_grow(&stack)) return fail_oom(e);
    VEC_AT(stack, type_pos, stack.len++) = (type_pos){t, 0};
    put8(w, t->tag);
    if (t->tag == CGRF_TUPLE) put32(w, t->count);
    while (stack.len) {
        type_pos *top = &VEC_TOP(stack, type_pos);
        if (top->next == top->t->count) {
            stack.len--;
            continue;
        }
        const cgrf_type *c = top->t->items[top->next++];
        if (!c) return fail(e, "missing declared type");
        put8(w, c->tag);
        if (c->tag == CGRF_RECORD || c->tag == CGRF_VARIANT) put_str(w, c->name);
        else if (c->tag == CGRF_TUPLE) put32(w, c->count);
        if (c->count) {
            if (!vec_grow(&stack)) return fail_oom(e);
            VEC_AT(stack, type_pos, stack.len++) = (type_pos){c, 0};
        }
    }
    return true;
}

static uint64_t type_size(const cgrf_type *t, cgrf_error *e, bool *ok) {
    writer w = {0, 0};
    *ok = put_type(&w, t, e);
    return w.len;
}

/* Lists of a fixed-width element type become one Array node (2.5). */
static bool is_array(const cgrf_value *v) {
    return v->kind == CGRF_LIST && v->type && cgrf_fixed_width(v->type->tag);
}

/* Children the encoder visits (an Array's items are packed, not visited). */
static uint32_t child_count(const cgrf_value *v) {
    switch (v->kind) {
    case CGRF_LIST: return is_array(v) ? 0 : v->count;
    case CGRF_TUPLE: case CGRF_RECORD: case CGRF_VARIANT: case CGRF_OPTION: case CGRF_RESULT:
        return v->count;
    default: return 0;
    }
}

/* Append one node whose children already have ids ids[0..n). */
static bool put_node(writer *w, const cgrf_value *v, const uint32_t *ids, cgrf_error *e) {
    uint8_t kind = v->kind;
    uint64_t plen;
    bool ok = true;
    uint32_t n = child_count(v);
    switch (kind) {
    case CGRF_BOOL: case CGRF_U8: case CGRF_S8: case CGRF_U16: case CGRF_S16: case CGRF_U32:
    case CGRF_S32: case CGRF_F32: case CGRF_CHAR: case CGRF_U64: case CGRF_S64: case CGRF_F64:
    case CGRF_FLAGS:
        plen = cgrf_fixed_width(kind);
        break;
    case CGRF_STRING: plen = 4 + (uint64_t)v->str.len; break;
    case CGRF_LIST:
        plen = type_size(v->type, e, &ok) + 4;
        if (is_array(v)) {
            kind = CGRF_ARRAY;
            for (uint32_t i = 0; i < v->count; i++)
                if (v->kids[i]->kind != v->type->tag)
                    return fail(e, "List with primitive elem_type contains non-matching items; "
                                   "fix the elem_type or the items");
            plen += (uint64_t)v->count * cgrf_fixed_width(v->type->tag);
        } else {
            plen += 4 * (uint64_t)n;
        }
        break;
    case CGRF_VARIANT: plen = 16 + (uint64_t)v->str.len + v->case_name.len + 4 * (uint64_t)n; break;
    case CGRF_RECORD:
        plen = 8 + (uint64_t)v->str.len + 8 * (uint64_t)n;
        for (uint32_t i = 0; i < n; i++) plen += v->names[i].len;
        break;
    case CGRF_OPTION: plen = type_size(v->type, e, &ok) + 1 + 4 * (uint64_t)n; break;
    case CGRF_TUPLE: plen = 4 + 4 * (uint64_t)n; break;
    case CGRF_RESULT:
        if (n != 1) return fail(e, "Result must have payload");
        plen = type_size(v->type, e, &ok);
        if (ok) plen += type_size(v->err_type, e, &ok) + 9;
        break;
    default: return fail_tag(e, kind);
    }
    if (!ok) return false;
    if (plen > 0xFFFFFFFFu) return fail(e, "payload too large to encode");
    put8(w, kind);
    put8(w, 0);
    put8(w, 0);
    put8(w, 0);
    put32(w, (uint32_t)plen);
    switch (kind) {
    case CGRF_BOOL: put8(w, v->flag ? 1 : 0); break;
    case CGRF_STRING: put_str(w, v->str); break;
    case CGRF_ARRAY: {
        uint32_t width = cgrf_fixed_width(v->type->tag);
        put_type(w, v->type, e);
        put32(w, v->count);
        for (uint32_t i = 0; i < v->count; i++) {
            const cgrf_value *it = v->kids[i];
            put_le(w, it->kind == CGRF_BOOL ? (uint64_t)(it->flag ? 1 : 0) : it->bits, width);
        }
        break;
    }
    case CGRF_LIST:
        put_type(w, v->type, e);
        put32(w, n);
        break;
    case CGRF_VARIANT:
        put_str(w, v->str);
        put_str(w, v->case_name);
        put32(w, v->tag);
        put32(w, n);
        break;
    case CGRF_RECORD:
        put_str(w, v->str);
        put32(w, n);
        for (uint32_t i = 0; i < n; i++) put_str(w, v->names[i]);
        break;
    case CGRF_OPTION:
        put_type(w, v->type, e);
        put8(w, n ? 1 : 0);
        break;
    case CGRF_TUPLE: put32(w, n); break;
    case CGRF_RESULT:
        put_type(w, v->type, e);
        put_type(w, v->err_type, e);
        put32(w, v->flag ? 1 : 0);
        put8(w, 1);
        break;
    default: put_le(w, v->bits, (uint32_t)plen); break; /* scalars */
    }
    for (uint32_t i = 0; i < n; i++) put32(w, ids[i]);
    return true;
}

typedef struct {
    const cgrf_value *v;
    uint32_t next;
} value_pos;

/* Post-order walk (2.4): children left to right, then the parent; finished node ids
 * wait on `ids` until their parent is written. Returns the node count. */
static bool encode_nodes(const cgrf_value *root, writer *w, uint32_t *node_count, cgrf_error *e) {
    vec stack = VEC(value_pos), ids = VEC(uint32_t);
    uint32_t next_id = 0;
    if (!vec_grow(&stack)) return fail_oom(e);
    VEC_AT(stack, value_pos, stack.len++) = (value_pos){root, 0};
    while (stack.len) {
        value_pos *top = &VEC_TOP(stack, value_pos);
        uint32_t n = child_count(top->v);
        if (top->next < n) {
            const cgrf_value *c = top->v->kids[top->next++];
            if (!c) return fail(e, "missing child value");
            if (!vec_grow(&stack)) return fail_oom(e);
            VEC_AT(stack, value_pos, stack.len++) = (value_pos){c, 0};
            continue;
        }
        ids.len -= n;
        if (!put_node(w, top->v, (const uint32_t *)ids.data + ids.len, e)) return false;
        if (next_id == 0xFFFFFFFFu || w->len > 0xFFFFFFFFu) return fail(e, "value too large to encode");
        if (!vec_grow(&ids)) return fail_oom(e);
        VEC_AT(ids, uint32_t, ids.len++) = next_id++;
        stack.len--;
    }
    *node_count = next_id;
    return true;
}

bool cgrf_encode(const cgrf_value *v, cgrf_alloc_fn alloc, uint8_t **out, uint32_t *len,
                 cgrf_error *err) {
    cgrf_mark m = cgrf_arena_mark();
    writer w = {0, 16};
    uint32_t nodes;
    bool ok = encode_nodes(v, &w, &nodes, err); /* pass 1: size */
    cgrf_arena_release(m);
    if (!ok) return false;
    uint8_t *buf = alloc((uint32_t)w.len);
    if (!buf) return fail_oom(err);
    w = (writer){buf, 0};
    put(&w, "CGRF", 4);
    put8(&w, 2);
    put8(&w, 0); /* version 2 */
    put8(&w, 0);
    put8(&w, 0); /* flags */
    put32(&w, nodes);
    put32(&w, nodes - 1); /* the root is always the last node */
    ok = encode_nodes(v, &w, &nodes, err); /* pass 2: fill */
    cgrf_arena_release(m);
    if (!ok) return false;
    *out = buf;
    *len = (uint32_t)w.len;
    return true;
}

/* ====================================================== calling conventions */

cgrf_value *cgrf_call_encoded(cgrf_import_fn fn, const cgrf_type *result, uint32_t in_ptr,
                              uint32_t in_len) {
    /* Two i32 locals whose addresses go to the host: they live on the shadow stack. */
    volatile int32_t out_ptr = 0, out_len = 0;
    int32_t status = fn((int32_t)in_ptr, (int32_t)in_len, (int32_t)(uintptr_t)&out_ptr,
                        (int32_t)(uintptr_t)&out_len);
    if (status < 0) cgrf_panic();
    uint32_t ptr = (uint32_t)out_ptr, len = (uint32_t)out_len;
    if (!cgrf_in_memory(ptr, len)) cgrf_panic();
    cgrf_value *v;
    cgrf_error err;
    if (!cgrf_decode((const uint8_t *)(uintptr_t)ptr, len, &v, &err)) cgrf_panic();
    if (status == 1) __pack_free((int32_t)ptr, (int32_t)len); /* guest-owned reply */
    if (!cgrf_conforms(v, result)) cgrf_panic();
    return v;
}

static void *arena_alloc_fn(uint32_t size) { return cgrf_arena_alloc(size); }

cgrf_value *cgrf_call(cgrf_import_fn fn, const cgrf_type *result, uint32_t nparams,
                      cgrf_value *const *params) {
    cgrf_value *input;
    if (nparams == 1) {
        input = params[0]; /* one argument goes bare, not as a 1-tuple */
    } else {
        input = cgrf_tuple(nparams);
        for (uint32_t i = 0; i < nparams; i++) input->kids[i] = params[i];
    }
    uint8_t *buf;
    uint32_t len;
    cgrf_error err;
    if (!cgrf_encode(input, arena_alloc_fn, &buf, &len, &err)) cgrf_panic();
    return cgrf_call_encoded(fn, result, (uint32_t)(uintptr_t)buf, len);
}

/* Report `msg` through the slots: allocated with __pack_alloc, status -1. */
static int32_t export_error(cgrf_str msg, int32_t out_ptr_ptr, int32_t out_len_ptr) {
    int32_t p = __pack_alloc((int32_t)msg.len);
    if (p) mem_copy((void *)(uintptr_t)p, msg.ptr, msg.len);
    cgrf_write_slot(out_ptr_ptr, p);
    cgrf_write_slot(out_len_ptr, p ? (int32_t)msg.len : 0);
    return -1;
}

static cgrf_str error_text(const char *prefix, const cgrf_error *e) {
    cgrf_sb sb = {0};
    char buf[160];
    cgrf_sb_cstr(&sb, prefix);
    cgrf_sb_bytes(&sb, buf, cgrf_error_debug(e, buf, sizeof buf));
    return cgrf_sb_done(&sb);
}

int32_t cgrf_export(cgrf_handler handler, int32_t in_ptr, int32_t in_len, int32_t out_ptr_ptr,
                    int32_t out_len_ptr) {
    cgrf_mark m = cgrf_arena_mark();
    cgrf_error err;
    cgrf_value *input, *output;
    cgrf_str msg = {0, 0};
    int32_t status;
    if (in_len < 0 || !cgrf_in_memory((uint32_t)in_ptr, (uint32_t)in_len)) {
        msg = CGRF_LIT("decode error: InvalidEncoding(\"input out of bounds\")");
    } else if (!cgrf_decode((const uint8_t *)(uintptr_t)(uint32_t)in_ptr, (uint32_t)in_len, &input, &err)) {
        msg = error_text("decode error: ", &err);
    } else {
        if (input->kind == CGRF_TUPLE && input->count == 1) input = input->kids[0];
        output = handler(input, &msg);
        if (output) {
            uint8_t *buf;
            uint32_t len;
            if (cgrf_encode(output, out_alloc, &buf, &len, &err)) {
                cgrf_write_slot(out_ptr_ptr, (int32_t)(uintptr_t)buf);
                cgrf_write_slot(out_len_ptr, (int32_t)len);
                cgrf_arena_release(m);
                return 0;
            }
            msg = error_text("encode error: ", &err);
        } else if (!msg.ptr) {
            msg = CGRF_LIT("export failed");
        }
    }
    status = export_error(msg, out_ptr_ptr, out_len_ptr);
    cgrf_arena_release(m);
    return status;
}
