/*
 * logger - packr v0.7's `logger` package, talking to its host through raw imports.
 *
 * Raw imports (plain wasm functions, no CGRF; raw imports are not in the metadata):
 *   host.log(ptr: i32, len: i32)        packr's legacy host module: raw UTF-8 (not CGRF)
 *                                       at [ptr, ptr+len) is appended to the host's log
 *   host.alloc(size: i32) -> i32        packr's legacy bump allocator (from 48 KiB); the
 *                                       guest asks for its log buffer once
 *   demo:raw/entropy.fill(ptr: i32, len: i32) -> i32
 *                                       the host writes len random bytes at ptr (through
 *                                       its memory API) and returns how many it wrote
 *
 * Exports:
 *   process(input: value) -> value      logs "process: starting", "process: got <Kind>
 *                                       value", the value (s64 as a number, a string as
 *                                       is, a list as its length) and "process: done";
 *                                       returns an s64 doubled, a list with every s64
 *                                       item doubled (wrapping), anything else unchanged
 *   token(n: u32) -> string             n (1..=64) random bytes from entropy.fill as
 *                                       lowercase hex; logs "token: <hex>". Any other
 *                                       input is an export error "token: expected n:
 *                                       u32 in 1..=64"; a short fill panics (spins).
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

__attribute__((import_module("host"), import_name("log"))) void host_log(int32_t ptr, int32_t len);
__attribute__((import_module("host"), import_name("alloc"))) int32_t host_alloc(int32_t size);
__attribute__((import_module("demo:raw/entropy"), import_name("fill"))) int32_t
entropy_fill(int32_t ptr, int32_t len);

#define LOG_CAP 256u

/* The log buffer, from host.alloc on first use: the host owns that memory. */
static char *log_buf;

static void log_str(cgrf_str s) {
    if (!log_buf) log_buf = (char *)(uintptr_t)(uint32_t)host_alloc((int32_t)LOG_CAP);
    uint32_t n = s.len < LOG_CAP ? s.len : LOG_CAP;
    for (uint32_t i = 0; i < n; i++) log_buf[i] = s.ptr[i];
    host_log((int32_t)(uintptr_t)log_buf, (int32_t)n);
}

static const char *kind_name(uint8_t kind) {
    static const char *const names[] = {
        "?",      "Bool",  "S32",     "S64",    "F32", "F64", "String", "List",
        "Variant", "Record", "Option", "Tuple",  "U8",  "U16", "U32",    "U64",
        "S8",     "S16",   "Char",    "Flags",  "Result",
    };
    return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

static cgrf_value *process(cgrf_value *input, cgrf_str *error) {
    (void)error;
    log_str(CGRF_LIT("process: starting"));
    cgrf_sb sb = {0};
    cgrf_sb_cstr(&sb, "process: got ");
    cgrf_sb_cstr(&sb, kind_name(input->kind));
    cgrf_sb_cstr(&sb, " value");
    log_str(cgrf_sb_done(&sb));
    cgrf_value *out = input;
    if (input->kind == CGRF_S64) {
        cgrf_sb num = {0};
        cgrf_sb_s64(&num, cgrf_get_s64(input));
        log_str(cgrf_sb_done(&num));
        out = cgrf_s64((int64_t)(input->bits * 2u)); /* wraps, like a release build */
    } else if (input->kind == CGRF_STRING) {
        log_str(input->str);
    } else if (input->kind == CGRF_LIST) {
        cgrf_sb len = {0};
        cgrf_sb_cstr(&len, "list of ");
        cgrf_sb_u64(&len, input->count);
        log_str(cgrf_sb_done(&len));
        out = cgrf_list(input->type, input->count);
        for (uint32_t i = 0; i < input->count; i++) {
            cgrf_value *item = input->kids[i];
            out->kids[i] = item->kind == CGRF_S64 ? cgrf_s64((int64_t)(item->bits * 2u)) : item;
        }
    }
    log_str(CGRF_LIT("process: done"));
    return out;
}
CGRF_EXPORT("process", process)

static cgrf_value *token(cgrf_value *input, cgrf_str *error) {
    if (input->kind != CGRF_U32 || input->bits < 1 || input->bits > 64) {
        *error = CGRF_LIT("token: expected n: u32 in 1..=64");
        return 0;
    }
    uint32_t n = (uint32_t)input->bits;
    uint8_t *bytes = cgrf_arena_must(n);
    if (entropy_fill((int32_t)(uintptr_t)bytes, (int32_t)n) != (int32_t)n) cgrf_panic();
    static const char hex[] = "0123456789abcdef";
    char *text = cgrf_arena_must(2 * n);
    for (uint32_t i = 0; i < n; i++) {
        text[2 * i] = hex[bytes[i] >> 4];
        text[2 * i + 1] = hex[bytes[i] & 15];
    }
    cgrf_str s = {text, 2 * n};
    cgrf_sb sb = {0};
    cgrf_sb_cstr(&sb, "token: ");
    cgrf_sb_str(&sb, s);
    log_str(cgrf_sb_done(&sb));
    return cgrf_string(s);
}
CGRF_EXPORT("token", token)
