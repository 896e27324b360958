/*
 * kv_actor - a stateful actor over a host key-value store.
 *
 * Imports (typed):
 *   kv:store/kv.get(key: string) -> option<string>
 *   kv:store/kv.set(key: string, value: string) -> bool   sent as Tuple([key, value])
 *   kv:store/kv.delete(key: string) -> bool
 *
 * Exports:
 *   init(config: config) -> ()
 *     config is Record "config" {namespace: string}. Stores the namespace and resets
 *     the request counter. Anything else is an export error
 *     ("init: expected config{namespace: string}").
 *   handle(request: request) -> response
 *     request is Variant "request", dispatched on the tag:
 *       0 get(key)            -> kv.get("<namespace>/<key>")  -> value(option<string>)
 *       1 put(key, value)     -> kv.set(Tuple(["<namespace>/<key>", value]))
 *                                true -> ok, false -> error("put rejected: <key>")
 *       2 delete(key)         -> kv.delete("<namespace>/<key>")
 *                                true -> ok, false -> error("not found: <key>")
 *       3 count               -> count(n): requests handled so far, this one included
 *     (put carries two payload values, key then value.)
 *     response is Variant "response": 0 value(option<string>), 1 ok, 2 count(u64),
 *     3 error(string).
 *     Before init, or with a malformed request, handle answers error("...") and makes
 *     no import call. Every handle call, answered or not, counts as a request.
 *
 * State (namespace, counter) lives in guest memory across calls: replaying the import
 * replies in order reproduces every response.
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

CGRF_IMPORT("kv:store/kv", "get", kv_get);
CGRF_IMPORT("kv:store/kv", "set", kv_set);
CGRF_IMPORT("kv:store/kv", "delete", kv_delete);

CGRF_TYPE_DEF(option_string, CGRF_OPTION, &cgrf_t_string);

enum { REQ_GET = 0, REQ_PUT = 1, REQ_DELETE = 2, REQ_COUNT = 3 };
enum { RESP_VALUE = 0, RESP_OK = 1, RESP_COUNT = 2, RESP_ERROR = 3 };
static const char *const RESPONSE_CASES[] = {"value", "ok", "count", "error"};

/* Guest state: heap memory, outside the per-call arena. */
static char *namespace_ptr;
static uint32_t namespace_len;
static bool initialized;
static uint64_t requests;

static cgrf_value *response(uint32_t tag, cgrf_value *payload) {
    cgrf_value *v = cgrf_variant(CGRF_LIT("response"), cgrf_cstr(RESPONSE_CASES[tag]), tag, payload ? 1 : 0);
    if (payload) v->kids[0] = payload;
    return v;
}

static cgrf_value *error_response(const char *msg, const cgrf_str *detail) {
    cgrf_sb sb = {0};
    cgrf_sb_cstr(&sb, msg);
    if (detail) cgrf_sb_str(&sb, *detail);
    return response(RESP_ERROR, cgrf_string(cgrf_sb_done(&sb)));
}

static cgrf_value *init(cgrf_value *config, cgrf_str *error) {
    cgrf_value *ns = cgrf_record_get(config, "namespace");
    if (!ns || ns->kind != CGRF_STRING) {
        *error = CGRF_LIT("init: expected config{namespace: string}");
        return 0;
    }
    char *copy = ns->str.len ? cgrf_alloc(ns->str.len) : 0;
    if (ns->str.len && !copy) cgrf_panic();
    if (ns->str.len) __builtin_memcpy(copy, ns->str.ptr, ns->str.len);
    cgrf_free(namespace_ptr, namespace_len);
    namespace_ptr = copy;
    namespace_len = ns->str.len;
    initialized = true;
    requests = 0;
    return cgrf_unit();
}
CGRF_EXPORT("init", init)

static cgrf_value *store_key(cgrf_str key) {
    cgrf_sb sb = {0};
    cgrf_sb_bytes(&sb, namespace_ptr, namespace_len);
    cgrf_sb_cstr(&sb, "/");
    cgrf_sb_str(&sb, key);
    return cgrf_string(cgrf_sb_done(&sb));
}

/* The i-th payload value if it is a string. */
static const cgrf_str *string_arg(const cgrf_value *req, uint32_t i) {
    return i < req->count && req->kids[i]->kind == CGRF_STRING ? &req->kids[i]->str : 0;
}

static cgrf_value *handle(cgrf_value *req, cgrf_str *error) {
    (void)error;
    requests++;
    if (!initialized) return error_response("not initialized: call init first", 0);
    if (req->kind != CGRF_VARIANT) return error_response("expected a request variant", 0);
    const cgrf_str *key = string_arg(req, 0);
    switch (req->tag) {
    case REQ_GET: {
        if (!key) return error_response("get: expected get(key)", 0);
        cgrf_value *arg = store_key(*key);
        cgrf_value *found = cgrf_call(kv_get, &option_string, 1, &arg);
        return response(RESP_VALUE, found->count ? cgrf_some(&cgrf_t_string, found->kids[0])
                                                 : cgrf_none(&cgrf_t_string));
    }
    case REQ_PUT: {
        const cgrf_str *value = string_arg(req, 1);
        if (!key || !value) return error_response("put: expected put(key, value)", 0);
        cgrf_value *args[2] = {store_key(*key), cgrf_string(*value)};
        bool stored = cgrf_call(kv_set, &cgrf_t_bool, 2, args)->flag; /* 2 params: a Tuple */
        return stored ? response(RESP_OK, 0) : error_response("put rejected: ", key);
    }
    case REQ_DELETE: {
        if (!key) return error_response("delete: expected delete(key)", 0);
        cgrf_value *arg = store_key(*key);
        bool deleted = cgrf_call(kv_delete, &cgrf_t_bool, 1, &arg)->flag;
        return deleted ? response(RESP_OK, 0) : error_response("not found: ", key);
    }
    case REQ_COUNT: return response(RESP_COUNT, cgrf_u64(requests));
    default: return error_response("unknown request", 0);
    }
}
CGRF_EXPORT("handle", handle)
