/*
 * _speedups: a C accelerator for the CGRF v2 codec (packr_replay.abi).
 *
 * Contract: exactly the results of the pure-Python codec in encoder.py and decoder.py.
 *
 * The C code only handles the valid, ordinary case. On anything else (an input the
 * Python decoder would reject, a limit reached, an object it does not recognise, a
 * string with a lone surrogate, a list whose items do not match its fixed-width
 * element type, ...) it *defers*: it drops everything it built and the Python
 * implementation runs on the same input, producing the result or the exact error.
 * So every error message, BufferTooSmall number and precedence rule lives in one place
 * (Python), and this file only has to be right about the inputs it accepts: it must
 * accept nothing Python rejects and build what Python builds.
 *
 * Both directions walk with explicit stacks, so nesting depth is bounded by memory
 * only. Values are built the way decoder.py builds them (object.__new__ plus slot
 * stores): tp_alloc, then writing the __slots__ members at the offsets their member
 * descriptors report. configure() looks those offsets up once and refuses classes
 * whose attributes are not plain object slots; packr_replay.abi then stays pure Python.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#ifndef Py_T_OBJECT_EX
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif
#ifndef Py_READONLY
#define Py_READONLY READONLY
#endif

/* ------------------------------------------------------------------------ kinds */

enum {
    K_BOOL = 0x01, K_S32 = 0x02, K_S64 = 0x03, K_F32 = 0x04, K_F64 = 0x05,
    K_STRING = 0x06, K_LIST = 0x07, K_VARIANT = 0x08, K_RECORD = 0x09,
    K_OPTION = 0x0A, K_TUPLE = 0x0B, K_U8 = 0x0C, K_U16 = 0x0D, K_U32 = 0x0E,
    K_U64 = 0x0F, K_S8 = 0x10, K_S16 = 0x11, K_CHAR = 0x12, K_FLAGS = 0x13,
    K_RESULT = 0x14, K_ARRAY = 0x15,
    NKINDS = 0x16
};

/* Byte width of the fixed-width element types (lists of them are Array nodes). */
static const uint8_t WIDTH[NKINDS] = {
    [K_BOOL] = 1, [K_U8] = 1, [K_S8] = 1, [K_U16] = 2, [K_S16] = 2,
    [K_U32] = 4, [K_S32] = 4, [K_F32] = 4, [K_CHAR] = 4,
    [K_U64] = 8, [K_S64] = 8, [K_F64] = 8, [K_FLAGS] = 8,
};

/* Primitive types are one tag byte; they are also the node kinds without children. */
static inline int is_prim(unsigned k) { return k < NKINDS && (WIDTH[k] || k == K_STRING); }

static inline int is_compound_tag(unsigned k)
{
    return k == K_LIST || k == K_OPTION || k == K_RESULT || k == K_RECORD ||
           k == K_VARIANT || k == K_TUPLE;
}

/* ------------------------------------------------------------ little-endian bytes */

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline void wrn(uint8_t *p, uint64_t v, int width)  /* the low `width` bytes of v */
{
    for (int i = 0; i < width; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------------ configuration */

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

typedef struct {
    uint64_t max_buffer, max_nodes, max_payload, max_seq, budget;
} Lim;

static struct {
    int model_ready, have_decode;
    PyTypeObject *cls[NKINDS];     /* value class by node kind (List at K_LIST) */
    Py_ssize_t scalar[NKINDS];     /* offset of `value` (`bits` for floats) of leaf classes */
    Py_ssize_t list_elem, list_items, opt_inner, opt_value, res_ok, res_err, res_value,
        res_is_err, rec_name, rec_fields, var_type, var_case, var_tag, var_payload,
        tup_items, vt_tag, vt_name, vt_args;
    PyTypeObject *vt_cls;          /* ValueType */
    PyObject *prim_type[NKINDS];   /* the shared primitive ValueTypes */
    PyObject *unit_type;           /* ValueType.UNIT, what Python gives tuple<> */
    PyObject *u8[256];             /* values._U8_CACHE */
    PyObject *true_, *false_;      /* decoder._TRUE/_FALSE */
    PyObject *unit_value;          /* decoder._UNIT (the one-node fast path's unit) */
    PyTypeObject *limits_cls;
    PyObject *default_limits;
    Lim default_lim;
    PyObject *py_decode, *py_decode_prefix, *py_encode;
    struct { PyTypeObject *tp; int kind; } kind_tab[64];  /* class -> kind, open addressing */
} C;

static PyObject *s_max_buffer, *s_max_nodes, *s_max_payload, *s_max_seq, *s_max_decoded;

/* The kind of a value by its exact class (subclasses are unknown: -1 means defer). */
static inline int kind_of(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    size_t h = ((uintptr_t)tp >> 4) & 63;
    for (;;) {
        if (C.kind_tab[h].tp == tp) return C.kind_tab[h].kind;
        if (C.kind_tab[h].tp == NULL) return -1;
        h = (h + 1) & 63;
    }
}

/* Shared failure rule: an ordinary exception means "defer to Python"; anything else
 * (KeyboardInterrupt, SystemExit) must not be swallowed. Returns -1 to propagate. */
static int clear_for_defer(void)
{
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
        PyErr_Clear();
    }
    return 0;
}

/* ----------------------------------------------------------------- growable arrays */

typedef struct { uint8_t *p; size_t len, cap; } Buf;

static int grow(void **p, size_t *cap, size_t want, size_t item)
{
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < want) {
        if (cap2 > ((size_t)PY_SSIZE_T_MAX / item) / 2) return -1;
        cap2 *= 2;
    }
    void *q = PyMem_Realloc(*p, cap2 * item);
    if (q == NULL) return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

/* Room for `n` more bytes. */
static inline int need(Buf *b, size_t n)
{
    if (b->cap - b->len >= n) return 0;
    if (n > (size_t)PY_SSIZE_T_MAX - b->len) return -1;
    return grow((void **)&b->p, &b->cap, b->len + n, 1);
}

/* ------------------------------------------------------------ short-string cache */

/* Record/variant/field names repeat across nodes (a list of records carries the same
 * names in every element), so short ASCII strings are shared instead of rebuilt. str
 * is immutable: sharing one object is invisible to Python code. Direct-mapped; an
 * entry is replaced atomically (no Python code runs in between). */
#define SC_SIZE 1024
#define SC_MAXLEN 64
static struct { PyObject *s; uint32_t hash; } sc[SC_SIZE];

static PyObject *make_str(const uint8_t *p, size_t n)
{
    if (n <= SC_MAXLEN) {
        uint32_t h = 2166136261u;
        unsigned hi = 0;
        for (size_t i = 0; i < n; i++) {
            hi |= p[i];
            h = (h ^ p[i]) * 16777619u;
        }
        if (hi < 0x80) {  /* ASCII: valid UTF-8, and the str's bytes are these bytes */
            h ^= (uint32_t)n;
            size_t slot = (h ^ (h >> 16)) & (SC_SIZE - 1);
            PyObject *s = sc[slot].s;
            if (s != NULL && sc[slot].hash == h && (size_t)PyUnicode_GET_LENGTH(s) == n &&
                memcmp(PyUnicode_1BYTE_DATA(s), p, n) == 0) {
                Py_INCREF(s);
                return s;
            }
            s = PyUnicode_New((Py_ssize_t)n, 127);
            if (s == NULL) return NULL;
            if (n) memcpy(PyUnicode_1BYTE_DATA(s), p, n);
            PyObject *old = sc[slot].s;
            Py_INCREF(s);
            sc[slot].s = s;
            sc[slot].hash = h;
            Py_XDECREF(old);
            return s;
        }
    }
    /* Strict UTF-8, the same codec as Python's bytes.decode("utf-8"). */
    return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, NULL);
}

/* ===================================================================== ENCODER */

/* UTF-8 of an exact str without copying when it is ASCII. `tmp` receives a bytes
 * object to release when one had to be made. Lone surrogates fail (Python raises). */
static int utf8_of(PyObject *s, const char **p, Py_ssize_t *n, PyObject **tmp)
{
    *tmp = NULL;
    if (!PyUnicode_CheckExact(s)) return -1;
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(s)) return -1;
#endif
    if (PyUnicode_IS_COMPACT_ASCII(s)) {
        *p = (const char *)PyUnicode_DATA(s);
        *n = PyUnicode_GET_LENGTH(s);
        return 0;
    }
    PyObject *b = PyUnicode_AsUTF8String(s);
    if (b == NULL) return -1;
    *tmp = b;
    *p = PyBytes_AS_STRING(b);
    *n = PyBytes_GET_SIZE(b);
    return 0;
}

typedef struct {
    PyObject *v;       /* the compound value (strong ref) */
    PyObject *kids;    /* items/payload tuple, or the record's (name, value) pairs (strong) */
    PyObject *only;    /* Option/Result: the one child (strong), or NULL */
    Py_ssize_t pos, n; /* next child, child count */
    size_t base;       /* height of the child-index stack when the frame was entered */
    int kind;
} EncFrame;

typedef struct {
    Buf out;
    uint32_t *idx;     /* node indices of finished children, waiting for their parent */
    size_t nidx, capidx;
    EncFrame *fr;
    size_t nfr, capfr;
    uint64_t nodes;
} Enc;

static inline int push_index(Enc *e)
{
    if (e->nodes > 0xFFFFFFFFu) return -1;  /* indices are u32 */
    if (e->nidx == e->capidx && grow((void **)&e->idx, &e->capidx, e->nidx + 1, sizeof(uint32_t)))
        return -1;
    e->idx[e->nidx++] = (uint32_t)e->nodes++;
    return 0;
}

/* Node header; the caller writes `plen` payload bytes after it. */
static inline uint8_t *put_header(Enc *e, int kind, size_t plen)
{
    if (plen > 0xFFFFFFFFu || need(&e->out, 8 + plen)) return NULL;
    uint8_t *p = e->out.p + e->out.len;
    p[0] = (uint8_t)kind; p[1] = 0; p[2] = 0; p[3] = 0;
    wr32(p + 4, (uint32_t)plen);
    e->out.len += 8 + plen;
    return p + 8;
}

/* The bit pattern of an int slot, range-checked for the kind (what struct.pack would
 * accept). Exact ints only: anything else defers. */
static int int_bits(PyObject *x, int k, uint64_t *out)
{
    if (!PyLong_CheckExact(x)) return -1;
    if (k == K_U64 || k == K_FLAGS || k == K_F64) {
        unsigned long long u = PyLong_AsUnsignedLongLong(x);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        *out = u;
        return 0;
    }
    int overflow;
    long long s = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow || (s == -1 && PyErr_Occurred())) return -1;
    long long lo, hi;
    switch (k) {
    case K_U8: lo = 0; hi = 0xFF; break;
    case K_U16: lo = 0; hi = 0xFFFF; break;
    case K_U32: case K_F32: lo = 0; hi = 0xFFFFFFFFLL; break;
    case K_S8: lo = -0x80; hi = 0x7F; break;
    case K_S16: lo = -0x8000; hi = 0x7FFF; break;
    case K_S32: lo = -0x80000000LL; hi = 0x7FFFFFFFLL; break;
    case K_S64: lo = LLONG_MIN; hi = LLONG_MAX; break;
    default: return -1;
    }
    if (s < lo || s > hi) return -1;
    *out = (uint64_t)s;
    return 0;
}

/* A Char's code point: an exact one-character str that is a Unicode scalar value. */
static int char_code(PyObject *x, uint64_t *out)
{
    if (!PyUnicode_CheckExact(x) || PyUnicode_GET_LENGTH(x) != 1) return -1;
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(x)) return -1;
#endif
    Py_UCS4 c = PyUnicode_READ_CHAR(x, 0);
    if (c >= 0xD800 && c <= 0xDFFF) return -1;
    *out = c;
    return 0;
}

/* One element of a fixed-width kind (Array items and leaf nodes share it). */
static inline int scalar_bits(PyObject *x, int k, uint64_t *out)
{
    if (k == K_BOOL) {
        if (x == Py_True) { *out = 1; return 0; }
        if (x == Py_False) { *out = 0; return 0; }
        return -1;
    }
    if (k == K_CHAR) return char_code(x, out);
    return int_bits(x, k, out);
}

/* The node of a value without children (every kind but List and the compounds). */
static int enc_leaf(Enc *e, PyObject *v, int k)
{
    PyObject *x = SLOT(v, C.scalar[k]);
    if (x == NULL) return -1;
    if (k == K_STRING) {
        const char *s;
        Py_ssize_t n;
        PyObject *tmp;
        Py_INCREF(x);  /* defensive: kept alive while in use */
        uint8_t *p = NULL;
        if (utf8_of(x, &s, &n, &tmp) == 0) {
            if ((p = put_header(e, K_STRING, (size_t)n + 4)) != NULL) {
                wr32(p, (uint32_t)n);
                memcpy(p + 4, s, (size_t)n);
            }
            Py_XDECREF(tmp);
        }
        Py_DECREF(x);
        return p == NULL ? -1 : 0;
    }
    uint64_t bits;
    if (scalar_bits(x, k, &bits)) return -1;
    int w = WIDTH[k];
    uint8_t *p = put_header(e, k, (size_t)w);
    if (p == NULL) return -1;
    wrn(p, bits, w);
    return 0;
}

/* A list with a fixed-width elem_type: one Array node, or defer if any item's class is
 * not exactly the element class (Python raises its "non-matching items" error). */
static int enc_array(Enc *e, PyObject *lst, int etag)
{
    PyObject *items = SLOT(lst, C.list_items);
    if (items == NULL || !PyTuple_CheckExact(items)) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    int w = WIDTH[etag];
    if ((uint64_t)n > (0xFFFFFFFFu - 5) / (uint64_t)w) return -1;
    uint8_t *p = put_header(e, K_ARRAY, 5 + (size_t)n * (size_t)w);
    if (p == NULL) return -1;
    p[0] = (uint8_t)etag;
    wr32(p + 1, (uint32_t)n);
    p += 5;
    PyTypeObject *cls = C.cls[etag];
    Py_ssize_t off = C.scalar[etag];
    PyObject **it = &PyTuple_GET_ITEM(items, 0);
    if (etag == K_U8) {  /* the common byte list: items are mostly _U8_CACHE entries */
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x;
            if (Py_TYPE(it[i]) != cls || (x = SLOT(it[i], off)) == NULL || !PyLong_CheckExact(x))
                return -1;
            long b = PyLong_AsLong(x);
            if (b < 0 || b > 255) return -1;  /* includes -1 with an error set */
            p[i] = (uint8_t)b;
        }
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++, p += w) {
        PyObject *x;
        uint64_t bits;
        if (Py_TYPE(it[i]) != cls || (x = SLOT(it[i], off)) == NULL || scalar_bits(x, etag, &bits))
            return -1;
        wrn(p, bits, w);
    }
    return 0;
}

/* --- TYPE(...) bytes */

/* Compound types are encoded once per ValueType object and remembered by identity (the
 * entry holds a reference, so the address cannot be reused while cached); Python's
 * encode_type is an lru_cache for the same reason. */
#define TE_SIZE 256
#define TE_MAXLEN 4096
static struct { PyObject *vt, *enc; } te[TE_SIZE];

/* The tag of an exact ValueType, or -1. IntEnum tags (Kind.LIST) are ints too. */
static inline int vt_tag(PyObject *t)
{
    if (Py_TYPE(t) != C.vt_cls) return -1;
    PyObject *tag = SLOT(t, C.vt_tag);
    if (tag == NULL || !PyLong_Check(tag)) return -1;
    long v = PyLong_AsLong(tag);
    if (v <= 0 || v >= NKINDS || (!is_prim((unsigned)v) && !is_compound_tag((unsigned)v)))
        return -1;  /* includes -1 with an error set */
    return (int)v;
}

/* Pre-order walk, as encoder.encode_type: tag, then a record/variant name or a tuple's
 * count, then the arguments left to right. */
static int enc_type_walk(Buf *b, PyObject *root)
{
    PyObject **st = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    if (grow((void **)&st, &cap, 16, sizeof(PyObject *))) return -1;
    st[n++] = root;
    while (n) {
        PyObject *cur = st[--n];
        int tag = vt_tag(cur);
        if (tag < 0 || need(b, 1)) goto done;
        b->p[b->len++] = (uint8_t)tag;
        if (tag == K_RECORD || tag == K_VARIANT) {
            PyObject *name = SLOT(cur, C.vt_name);
            const char *s = "";
            Py_ssize_t len = 0;
            PyObject *tmp = NULL;
            if (name == NULL) goto done;
            if (name != Py_None && utf8_of(name, &s, &len, &tmp)) goto done;
            if ((uint64_t)len > 0xFFFFFFFFu || need(b, 4 + (size_t)len)) {
                Py_XDECREF(tmp);
                goto done;
            }
            wr32(b->p + b->len, (uint32_t)len);
            memcpy(b->p + b->len + 4, s, (size_t)len);
            b->len += 4 + (size_t)len;
            Py_XDECREF(tmp);
            continue;
        }
        PyObject *args = SLOT(cur, C.vt_args);
        if (args == NULL || !PyTuple_CheckExact(args)) goto done;
        Py_ssize_t na = PyTuple_GET_SIZE(args);
        if (tag == K_TUPLE) {
            if ((uint64_t)na > 0xFFFFFFFFu || need(b, 4)) goto done;
            wr32(b->p + b->len, (uint32_t)na);
            b->len += 4;
        }
        if (n + (size_t)na > cap && grow((void **)&st, &cap, n + (size_t)na, sizeof(PyObject *)))
            goto done;
        for (Py_ssize_t i = na - 1; i >= 0; i--) st[n++] = PyTuple_GET_ITEM(args, i);
    }
    rc = 0;
done:
    PyMem_Free(st);
    return rc;
}

static int enc_type(Buf *b, PyObject *t)
{
    if (Py_TYPE(t) != C.vt_cls) return -1;
    PyObject *args = SLOT(t, C.vt_args);
    int tag = vt_tag(t);
    if (tag < 0) return -1;
    if (is_prim((unsigned)tag) && args != NULL && PyTuple_CheckExact(args) && PyTuple_GET_SIZE(args) == 0) {
        if (need(b, 1)) return -1;
        b->p[b->len++] = (uint8_t)tag;
        return 0;
    }
    size_t slot = ((uintptr_t)t >> 4) & (TE_SIZE - 1);
    if (te[slot].vt == t) {
        Py_ssize_t n = PyBytes_GET_SIZE(te[slot].enc);
        if (need(b, (size_t)n)) return -1;
        memcpy(b->p + b->len, PyBytes_AS_STRING(te[slot].enc), (size_t)n);
        b->len += (size_t)n;
        return 0;
    }
    size_t start = b->len;
    int rc = -1;
    Py_INCREF(t);  /* kept alive while in use, then owned by the cache entry */
    if (enc_type_walk(b, t) == 0) {
        size_t n = b->len - start;
        rc = 0;
        if (n <= TE_MAXLEN) {
            PyObject *enc = PyBytes_FromStringAndSize((const char *)b->p + start, (Py_ssize_t)n);
            if (enc == NULL) {
                Py_DECREF(t);
                return -1;
            }
            PyObject *old_vt = te[slot].vt, *old_enc = te[slot].enc;
            te[slot].vt = t;  /* takes our reference */
            te[slot].enc = enc;
            Py_XDECREF(old_vt);
            Py_XDECREF(old_enc);
            return 0;
        }
    }
    Py_DECREF(t);
    return rc;
}

/* u32 length + UTF-8 of a name (exact str). */
static int put_name(Buf *b, PyObject *s)
{
    const char *p;
    Py_ssize_t n;
    PyObject *tmp;
    if (s == NULL) return -1;
    Py_INCREF(s);  /* defensive: kept alive while in use */
    int rc = -1;
    if (utf8_of(s, &p, &n, &tmp) == 0) {
        if ((uint64_t)n <= 0xFFFFFFFFu && !need(b, 4 + (size_t)n)) {
            wr32(b->p + b->len, (uint32_t)n);
            memcpy(b->p + b->len + 4, p, (size_t)n);
            b->len += 4 + (size_t)n;
            rc = 0;
        }
        Py_XDECREF(tmp);
    }
    Py_DECREF(s);
    return rc;
}

static inline int put_u32(Buf *b, uint32_t v)
{
    if (need(b, 4)) return -1;
    wr32(b->p + b->len, v);
    b->len += 4;
    return 0;
}

static inline int put_u8(Buf *b, uint8_t v)
{
    if (need(b, 1)) return -1;
    b->p[b->len++] = v;
    return 0;
}

/* --- the walk */

static int push_frame(Enc *e, PyObject *v, int kind, PyObject *kids, PyObject *only, Py_ssize_t n)
{
    if (e->nfr == e->capfr && grow((void **)&e->fr, &e->capfr, e->nfr + 1, sizeof(EncFrame)))
        return -1;
    EncFrame *f = &e->fr[e->nfr++];
    Py_INCREF(v);
    Py_XINCREF(kids);
    Py_XINCREF(only);
    f->v = v;
    f->kids = kids;
    f->only = only;
    f->pos = 0;
    f->n = n;
    f->base = e->nidx;
    f->kind = kind;
    return 0;
}

static void pop_frame(Enc *e)
{
    EncFrame *f = &e->fr[--e->nfr];
    Py_DECREF(f->v);
    Py_XDECREF(f->kids);
    Py_XDECREF(f->only);
}

/* Emit `v` if it has no children; otherwise push a frame to emit its children first. */
static int enc_visit(Enc *e, PyObject *v)
{
    int k = kind_of(v);
    PyObject *kids;
    switch (k) {
    case K_LIST: {
        PyObject *et = SLOT(v, C.list_elem);
        if (et == NULL) return -1;
        int etag = vt_tag(et);
        if (etag < 0) return -1;
        if (WIDTH[etag]) return enc_array(e, v, etag) || push_index(e) ? -1 : 0;
        kids = SLOT(v, C.list_items);
        if (kids == NULL || !PyTuple_CheckExact(kids)) return -1;
        return push_frame(e, v, k, kids, NULL, PyTuple_GET_SIZE(kids));
    }
    case K_TUPLE:
        kids = SLOT(v, C.tup_items);
        if (kids == NULL || !PyTuple_CheckExact(kids)) return -1;
        return push_frame(e, v, k, kids, NULL, PyTuple_GET_SIZE(kids));
    case K_VARIANT:
        kids = SLOT(v, C.var_payload);
        if (kids == NULL || !PyTuple_CheckExact(kids)) return -1;
        return push_frame(e, v, k, kids, NULL, PyTuple_GET_SIZE(kids));
    case K_RECORD: {
        kids = SLOT(v, C.rec_fields);
        if (kids == NULL || !PyTuple_CheckExact(kids)) return -1;
        Py_ssize_t n = PyTuple_GET_SIZE(kids);
        for (Py_ssize_t i = 0; i < n; i++) {  /* (str, value) pairs, as Python unpacks them */
            PyObject *pair = PyTuple_GET_ITEM(kids, i);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
                !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 0)))
                return -1;
        }
        return push_frame(e, v, k, kids, NULL, n);
    }
    case K_OPTION: {
        PyObject *x = SLOT(v, C.opt_value);
        if (x == NULL) return -1;
        if (x == Py_None) return push_frame(e, v, k, NULL, NULL, 0);
        return push_frame(e, v, k, NULL, x, 1);
    }
    case K_RESULT: {
        PyObject *x = SLOT(v, C.res_value);
        if (x == NULL) return -1;
        return push_frame(e, v, k, NULL, x, 1);
    }
    case -1:
        return -1;
    default:
        return enc_leaf(e, v, k) || push_index(e) ? -1 : 0;
    }
}

/* All children are emitted: append the parent node itself. */
static int enc_finish(Enc *e, EncFrame *f)
{
    Buf *b = &e->out;
    PyObject *v = f->v;
    size_t n = e->nidx - f->base;
    size_t hdr = b->len;
    if (need(b, 8)) return -1;
    b->len += 8;
    switch (f->kind) {
    case K_TUPLE:
        if (put_u32(b, (uint32_t)n)) return -1;
        break;
    case K_LIST:
        if (enc_type(b, SLOT(v, C.list_elem)) || put_u32(b, (uint32_t)n)) return -1;
        break;
    case K_RECORD:
        if (put_name(b, SLOT(v, C.rec_name)) || put_u32(b, (uint32_t)n)) return -1;
        for (Py_ssize_t i = 0; i < f->n; i++)
            if (put_name(b, PyTuple_GET_ITEM(PyTuple_GET_ITEM(f->kids, i), 0))) return -1;
        break;
    case K_VARIANT: {
        PyObject *tag = SLOT(v, C.var_tag);
        uint64_t t;
        if (tag == NULL || !PyLong_CheckExact(tag) || int_bits(tag, K_U32, &t)) return -1;
        if (put_name(b, SLOT(v, C.var_type)) || put_name(b, SLOT(v, C.var_case)) ||
            put_u32(b, (uint32_t)t) || put_u32(b, (uint32_t)n))
            return -1;
        break;
    }
    case K_OPTION: {
        PyObject *inner = SLOT(v, C.opt_inner);
        if (inner == NULL || enc_type(b, inner) || put_u8(b, n ? 1 : 0)) return -1;
        break;
    }
    case K_RESULT: {
        PyObject *ok = SLOT(v, C.res_ok), *err = SLOT(v, C.res_err), *is_err = SLOT(v, C.res_is_err);
        if (ok == NULL || err == NULL || (is_err != Py_True && is_err != Py_False)) return -1;
        if (enc_type(b, ok) || enc_type(b, err) || put_u32(b, is_err == Py_True) || put_u8(b, 1))
            return -1;
        break;
    }
    default:
        return -1;
    }
    if (need(b, 4 * n)) return -1;
    for (size_t i = 0; i < n; i++) wr32(b->p + b->len + 4 * i, e->idx[f->base + i]);
    b->len += 4 * n;
    size_t plen = b->len - hdr - 8;
    if (plen > 0xFFFFFFFFu) return -1;
    b->p[hdr] = (uint8_t)f->kind;
    b->p[hdr + 1] = b->p[hdr + 2] = b->p[hdr + 3] = 0;
    wr32(b->p + hdr + 4, (uint32_t)plen);
    e->nidx = f->base;
    return push_index(e);
}

/* encode(value) for the cases C handles: the bytes, or NULL to defer (an exception may
 * be set; the caller decides whether it can be cleared). */
static PyObject *try_encode_impl(PyObject *root)
{
    Enc e;
    memset(&e, 0, sizeof e);
    PyObject *res = NULL;
    if (!C.model_ready || need(&e.out, 256)) goto done;
    e.out.len = 16;
    if (enc_visit(&e, root)) goto done;
    while (e.nfr) {
        EncFrame *f = &e.fr[e.nfr - 1];
        if (f->pos < f->n) {
            PyObject *child;
            if (f->only != NULL)
                child = f->only;
            else if (f->kind == K_RECORD)
                child = PyTuple_GET_ITEM(PyTuple_GET_ITEM(f->kids, f->pos), 1);
            else
                child = PyTuple_GET_ITEM(f->kids, f->pos);
            f->pos++;
            if (enc_visit(&e, child)) goto done;  /* may move e.fr: f is stale after this */
            continue;
        }
        if (enc_finish(&e, f)) goto done;
        pop_frame(&e);
    }
    uint8_t *h = e.out.p;
    memcpy(h, "CGRF\x02\x00\x00\x00", 8);
    wr32(h + 8, (uint32_t)e.nodes);
    wr32(h + 12, (uint32_t)(e.nodes - 1));
    res = PyBytes_FromStringAndSize((const char *)e.out.p, (Py_ssize_t)e.out.len);
done:
    while (e.nfr) pop_frame(&e);
    PyMem_Free(e.fr);
    PyMem_Free(e.idx);
    PyMem_Free(e.out.p);
    return res;
}

/* ===================================================================== DECODER */

/* Marks a compound node whose decode is in progress (a second visit is a cycle). */
static char in_progress_marker;
#define IN_PROGRESS ((PyObject *)&in_progress_marker)

#define SMALL 8  /* buffers with at most this many nodes need no heap tables */
#define GC_PAUSE_BYTES 4096  /* decodes of buffers this large pause the collector */

typedef struct {
    uint32_t node, cursor, end, left; /* payload cursor and children still to read */
    uint32_t tag;                     /* Variant tag */
    uint8_t kind, is_err;
    Py_ssize_t vbase;                 /* value-stack height at entry */
    uint64_t total0;                  /* expansion count at entry */
    PyObject *h0, *h1, *h2;           /* header objects (strong): types, names */
} DecFrame;

typedef struct {
    const uint8_t *d;
    size_t size;
    uint32_t count, root;
    uint8_t *kinds;
    uint32_t *starts;     /* count + 1 entries; node i's payload ends at starts[i + 1] - 8 */
    PyObject **memo;      /* per node: NULL, IN_PROGRESS, or its value (strong ref) */
    uint64_t *sizes;      /* per decoded node: its expanded node count */
    PyObject **vs;        /* values of finished children, waiting for their parent */
    size_t nvs, capvs;
    DecFrame *fr;
    size_t nfr, capfr;
    int gc_paused;        /* the collector is paused for this decode (see try_decode_impl) */
    uint8_t s_kinds[SMALL];
    uint32_t s_starts[SMALL + 1];
    PyObject *s_memo[SMALL];
    uint64_t s_sizes[SMALL];
} Dec;

static inline uint32_t pend(const Dec *D, uint32_t i) { return D->starts[i + 1] - 8; }

static PyObject *new_value(int kind)
{
    PyTypeObject *tp = C.cls[kind];
    return tp->tp_alloc(tp, 0);
}

/* A leaf kind's value object with slot `x` (stolen). */
static PyObject *leaf_obj(int kind, PyObject *x)
{
    if (x == NULL) return NULL;
    PyObject *o = new_value(kind);
    if (o == NULL) {
        Py_DECREF(x);
        return NULL;
    }
    SLOT(o, C.scalar[kind]) = x;
    return o;
}

/* The Python int of a scalar payload (widths already checked). */
static PyObject *scalar_int(int kind, const uint8_t *p)
{
    switch (kind) {
    case K_S8: return PyLong_FromLong((int8_t)p[0]);
    case K_U16: return PyLong_FromLong((long)(p[0] | p[1] << 8));
    case K_S16: return PyLong_FromLong((int16_t)(p[0] | p[1] << 8));
    case K_U32: case K_F32: return PyLong_FromUnsignedLong(rd32(p));
    case K_S32: return PyLong_FromLong((int32_t)rd32(p));
    case K_U64: case K_FLAGS: case K_F64: return PyLong_FromUnsignedLongLong(rd64(p));
    case K_S64: return PyLong_FromLongLong((int64_t)rd64(p));
    default: return NULL;
    }
}

static inline int valid_scalar(uint32_t c) { return c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF); }

/* --- names and types inside payloads */

static PyObject *read_name(const uint8_t *d, uint32_t *pos, uint32_t end)
{
    if (end - *pos < 4) return NULL;
    uint32_t n = rd32(d + *pos);
    *pos += 4;
    if (n > end - *pos) return NULL;
    PyObject *s = make_str(d + *pos, n);
    *pos += n;
    return s;
}

/* Decoded compound types, keyed by their bytes (the same bytes always decode to equal
 * types, and ValueType is immutable, so one object can serve every occurrence). */
#define TD_SIZE 512
#define TD_MAXLEN 128
static struct { PyObject *vt; uint32_t len, hash; uint8_t b[TD_MAXLEN]; } td[TD_SIZE];

/* ValueType(tag, name) or, with `args`, ValueType(tag, None, args); steals name/args.
 * This is Python code, during which other threads may run: the collector runs again
 * for its duration (a decode pauses it only while no other code can run). */
static PyObject *call_value_type(int gc_paused, int tag, PyObject *name, PyObject *args)
{
    if (gc_paused) PyGC_Enable();
    PyObject *t = args == NULL
        ? PyObject_CallFunction((PyObject *)C.vt_cls, "iN", tag, name)
        : PyObject_CallFunction((PyObject *)C.vt_cls, "iON", tag, Py_None, args);
    if (gc_paused) PyGC_Disable();
    return t;
}

/* Build a type from bytes already scanned as well-formed: decoder._read_type's loop,
 * calling the ValueType constructor with the same arguments. */
static PyObject *build_type(const uint8_t *d, uint32_t pos, uint32_t end, int gc_paused)
{
    typedef struct { uint8_t tag; uint32_t need; size_t base; } Pend;
    Pend *pd = NULL;
    PyObject **os = NULL;  /* finished types waiting for their parent */
    size_t npd = 0, cappd = 0, nos = 0, capos = 0;
    PyObject *done = NULL, *res = NULL;
    for (;;) {
        uint8_t tag = d[pos++];
        if (is_prim(tag)) {
            done = C.prim_type[tag];
            Py_INCREF(done);
        } else if (tag == K_LIST || tag == K_OPTION || tag == K_RESULT ||
                   (tag == K_TUPLE && rd32(d + pos) != 0)) {
            uint32_t n = tag == K_RESULT ? 2 : 1;
            if (tag == K_TUPLE) {
                n = rd32(d + pos);
                pos += 4;
            }
            if (npd == cappd && grow((void **)&pd, &cappd, npd + 1, sizeof(Pend))) goto fail;
            pd[npd].tag = tag;
            pd[npd].need = n;
            pd[npd].base = nos;
            npd++;
            continue;
        } else if (tag == K_TUPLE) {
            pos += 4;
            done = C.unit_type;
            Py_INCREF(done);
        } else {  /* record / variant name */
            PyObject *name = read_name(d, &pos, end);
            if (name == NULL) goto fail;
            done = call_value_type(gc_paused, tag, name, NULL);
            if (done == NULL) goto fail;
        }
        /* Fold the finished type into its parents for as long as they complete. */
        for (;;) {
            if (npd == 0) {
                res = done;
                done = NULL;
                goto out;
            }
            if (nos == capos && grow((void **)&os, &capos, nos + 1, sizeof(PyObject *))) goto fail;
            os[nos++] = done;
            done = NULL;
            Pend *top = &pd[npd - 1];
            if (nos - top->base < top->need) break;
            PyObject *args = PyTuple_New((Py_ssize_t)top->need);
            if (args == NULL) goto fail;
            for (uint32_t i = 0; i < top->need; i++) PyTuple_SET_ITEM(args, i, os[top->base + i]);
            nos = top->base;
            npd--;
            done = call_value_type(gc_paused, top->tag, NULL, args);
            if (done == NULL) goto fail;
        }
    }
fail:
    Py_XDECREF(done);
out:
    for (size_t i = 0; i < nos; i++) Py_DECREF(os[i]);
    PyMem_Free(os);
    PyMem_Free(pd);
    return res;
}

/* One TYPE(...) at *pos: a new reference, or NULL to defer (malformed or a limit). */
static PyObject *read_type(const uint8_t *d, uint32_t *pos, uint32_t end, int gc_paused)
{
    uint32_t p = *pos;
    if (p >= end) return NULL;
    if (is_prim(d[p])) {
        *pos = p + 1;
        Py_INCREF(C.prim_type[d[p]]);
        return C.prim_type[d[p]];
    }
    /* Scan the extent first (pre-order: `pending` types still to read), then build. */
    uint64_t pending = 1;
    while (pending) {
        if (p >= end || pending > end - p) return NULL;  /* each type needs a byte */
        uint8_t tag = d[p++];
        pending--;
        if (is_prim(tag)) continue;
        switch (tag) {
        case K_LIST: case K_OPTION: pending += 1; break;
        case K_RESULT: pending += 2; break;
        case K_TUPLE:
            if (end - p < 4) return NULL;
            pending += rd32(d + p);
            p += 4;
            break;
        case K_RECORD: case K_VARIANT: {
            if (end - p < 4) return NULL;
            uint32_t n = rd32(d + p);
            p += 4;
            if (n > end - p) return NULL;
            p += n;
            break;
        }
        default:
            return NULL;  /* InvalidTag (0x15 is not a type tag) */
        }
    }
    uint32_t len = p - *pos;
    const uint8_t *span = d + *pos;
    size_t slot = 0;
    uint32_t h = 2166136261u;
    if (len <= TD_MAXLEN) {
        for (uint32_t i = 0; i < len; i++) h = (h ^ span[i]) * 16777619u;
        slot = (h ^ (h >> 15)) & (TD_SIZE - 1);
        if (td[slot].vt != NULL && td[slot].len == len && td[slot].hash == h &&
            memcmp(td[slot].b, span, len) == 0) {
            *pos = p;
            Py_INCREF(td[slot].vt);
            return td[slot].vt;
        }
    }
    PyObject *vt = build_type(d, *pos, p, gc_paused);
    if (vt == NULL) return NULL;
    if (len <= TD_MAXLEN) {
        PyObject *old = td[slot].vt;
        Py_INCREF(vt);
        td[slot].vt = vt;
        td[slot].len = len;
        td[slot].hash = h;
        memcpy(td[slot].b, span, len);
        Py_XDECREF(old);
    }
    *pos = p;
    return vt;
}

/* --- phases */

/* Phase A: the container. Records each node's kind and payload bounds. */
static int phase_a(Dec *D, const Lim *L, int prefix, size_t *consumed)
{
    const uint8_t *d = D->d;
    size_t size = D->size;
    if (size > L->max_buffer || size < 16 || size > 0xFFFFFFF0u) return -1;
    if (memcmp(d, "CGRF", 4) != 0 || d[4] != 2 || d[5] != 0) return -1;
    uint32_t count = rd32(d + 8), root = rd32(d + 12);
    if (count > L->max_nodes || count == 0 || root >= count) return -1;
    if (count > (size - 16) / 8) return -1;  /* not even room for the node headers */
    D->count = count;
    D->root = root;
    if (count <= SMALL) {
        D->kinds = D->s_kinds;
        D->starts = D->s_starts;
        D->memo = D->s_memo;
        D->sizes = D->s_sizes;
        memset(D->s_memo, 0, sizeof D->s_memo);
    } else {
        D->kinds = PyMem_Malloc(count);
        D->starts = PyMem_Malloc(((size_t)count + 1) * sizeof(uint32_t));
        D->memo = PyMem_Calloc(count, sizeof(PyObject *));
        D->sizes = PyMem_Malloc((size_t)count * sizeof(uint64_t));
        if (!D->kinds || !D->starts || !D->memo || !D->sizes) return -1;
    }
    size_t pos = 16;
    for (uint32_t i = 0; i < count; i++) {
        if (size - pos < 8) return -1;
        uint8_t kind = d[pos];
        uint32_t plen = rd32(d + pos + 4);
        if (kind == 0 || kind >= NKINDS || plen > L->max_payload || plen > size - pos - 8) return -1;
        D->kinds[i] = kind;
        D->starts[i] = (uint32_t)(pos + 8);
        pos += 8 + (size_t)plen;
    }
    if (pos != size && !prefix) return -1;
    D->starts[count] = (uint32_t)(pos + 8);
    *consumed = pos;
    return 0;
}

/* Phase B: validate_basic over every node, reachable or not. Leaf values are built
 * here, as decoder.py does (so a leaf shared by two parents is one object). */
static int phase_b(Dec *D, const Lim *L)
{
    const uint8_t *d = D->d;
    uint32_t count = D->count;
    for (uint32_t i = 0; i < count; i++) {
        int kind = D->kinds[i];
        uint32_t s = D->starts[i], plen = pend(D, i) - s;
        const uint8_t *p = d + s;
        PyObject *v;
        switch (kind) {
        case K_LIST: case K_OPTION: case K_RECORD: case K_VARIANT: case K_RESULT:
            continue;  /* checked when decoded */
        case K_TUPLE: {
            if (plen < 4) return -1;
            uint32_t n = rd32(p);
            if (n > L->max_seq || (uint64_t)plen != 4 + 4 * (uint64_t)n) return -1;
            for (uint32_t j = 0; j < n; j++)
                if (rd32(p + 4 + 4 * j) >= count) return -1;
            continue;
        }
        case K_ARRAY: {
            if (plen < 1 || p[0] >= NKINDS || !WIDTH[p[0]] || plen < 5) return -1;
            uint32_t n = rd32(p + 1);
            if (n > L->max_seq || (uint64_t)plen != 5 + (uint64_t)n * WIDTH[p[0]]) return -1;
            continue;  /* built when reached: its chars are checked only then */
        }
        case K_STRING: {
            if (plen < 4 || rd32(p) != plen - 4) return -1;
            v = leaf_obj(K_STRING, make_str(p + 4, plen - 4));
            break;
        }
        case K_BOOL:
            if (plen != 1 || p[0] > 1) return -1;
            v = p[0] ? C.true_ : C.false_;
            Py_INCREF(v);
            break;
        case K_U8:
            if (plen != 1) return -1;
            v = C.u8[p[0]];
            Py_INCREF(v);
            break;
        case K_CHAR: {
            if (plen != 4 || !valid_scalar(rd32(p))) return -1;
            v = leaf_obj(K_CHAR, PyUnicode_FromOrdinal((int)rd32(p)));
            break;
        }
        default:  /* integers, floats (kept as bits) and flags */
            if (plen != WIDTH[kind]) return -1;
            v = leaf_obj(kind, scalar_int(kind, p));
            break;
        }
        if (v == NULL) return -1;
        D->memo[i] = v;
        D->sizes[i] = 1;
    }
    return 0;
}

/* An Array node (validated in phase B) as a List of its element class. */
static PyObject *dec_array(Dec *D, uint32_t node)
{
    const uint8_t *p = D->d + D->starts[node];
    int etag = p[0];
    uint32_t n = rd32(p + 1);
    p += 5;
    PyObject *items = PyTuple_New(n);
    if (items == NULL) return NULL;
    PyObject **it = &PyTuple_GET_ITEM(items, 0);
    int w = WIDTH[etag];
    switch (etag) {
    case K_U8:
        for (uint32_t i = 0; i < n; i++) {
            it[i] = C.u8[p[i]];
            Py_INCREF(it[i]);
        }
        break;
    case K_BOOL:  /* Array bools are not range-checked: any non-zero byte is true */
        for (uint32_t i = 0; i < n; i++) {
            it[i] = p[i] ? C.true_ : C.false_;
            Py_INCREF(it[i]);
        }
        break;
    case K_CHAR:
        for (uint32_t i = 0; i < n; i++, p += 4) {
            if (!valid_scalar(rd32(p)) ||
                (it[i] = leaf_obj(K_CHAR, PyUnicode_FromOrdinal((int)rd32(p)))) == NULL)
                goto fail;
        }
        break;
    default:
        for (uint32_t i = 0; i < n; i++, p += w)
            if ((it[i] = leaf_obj(etag, scalar_int(etag, p))) == NULL) goto fail;
    }
    PyObject *lst = new_value(K_LIST);
    if (lst == NULL) goto fail;
    Py_INCREF(C.prim_type[etag]);
    SLOT(lst, C.list_elem) = C.prim_type[etag];
    SLOT(lst, C.list_items) = items;
    return lst;
fail:
    Py_DECREF(items);
    return NULL;
}

/* Parse a compound node's header (decoder._enter) and push its frame. A valid node's
 * child indices fill the rest of its payload exactly, so anything else defers. */
static int dec_enter(Dec *D, uint32_t node, uint64_t total)
{
    const uint8_t *d = D->d;
    uint32_t pos = D->starts[node], end = pend(D, node), n = 0, tag = 0;
    PyObject *h0 = NULL, *h1 = NULL, *h2 = NULL;
    uint8_t kind = D->kinds[node], is_err = 0;
    switch (kind) {
    case K_TUPLE:
        n = rd32(d + pos);  /* validated in phase B */
        pos += 4;
        break;
    case K_LIST:
        if (pos < end && d[pos] < NKINDS && WIDTH[d[pos]]) goto fail;  /* must be an Array */
        if ((h0 = read_type(d, &pos, end, D->gc_paused)) == NULL || end - pos < 4) goto fail;
        n = rd32(d + pos);
        pos += 4;
        break;
    case K_RECORD:
        if ((h0 = read_name(d, &pos, end)) == NULL || end - pos < 4) goto fail;
        n = rd32(d + pos);
        pos += 4;
        if ((uint64_t)n * 8 > end - pos || (h2 = PyTuple_New(n)) == NULL) goto fail;
        for (uint32_t i = 0; i < n; i++) {
            PyObject *name = read_name(d, &pos, end);
            if (name == NULL) goto fail;
            PyTuple_SET_ITEM(h2, i, name);
        }
        break;
    case K_VARIANT:
        if ((h0 = read_name(d, &pos, end)) == NULL || (h1 = read_name(d, &pos, end)) == NULL ||
            end - pos < 8)
            goto fail;
        tag = rd32(d + pos);
        n = rd32(d + pos + 4);
        pos += 8;
        break;
    case K_OPTION:
        if ((h0 = read_type(d, &pos, end, D->gc_paused)) == NULL || pos >= end) goto fail;
        n = d[pos++] == 1;  /* any presence byte but 1 means None */
        break;
    case K_RESULT:
        if ((h0 = read_type(d, &pos, end, D->gc_paused)) == NULL || (h1 = read_type(d, &pos, end, D->gc_paused)) == NULL ||
            end - pos < 5 || d[pos + 4] != 1)
            goto fail;
        is_err = rd32(d + pos) != 0;  /* any non-zero tag is Err */
        pos += 5;
        n = 1;
        break;
    default:
        goto fail;
    }
    if ((uint64_t)(end - pos) != 4 * (uint64_t)n) goto fail;
    if (D->nfr == D->capfr && grow((void **)&D->fr, &D->capfr, D->nfr + 1, sizeof(DecFrame)))
        goto fail;
    DecFrame *f = &D->fr[D->nfr++];
    f->node = node;
    f->cursor = pos;
    f->end = end;
    f->left = n;
    f->tag = tag;
    f->kind = kind;
    f->is_err = is_err;
    f->vbase = (Py_ssize_t)D->nvs;
    f->total0 = total;
    f->h0 = h0;
    f->h1 = h1;
    f->h2 = h2;
    return 0;
fail:
    Py_XDECREF(h0);
    Py_XDECREF(h1);
    Py_XDECREF(h2);
    return -1;
}

/* The frame's children (on the value stack, moved into a tuple) and its header make
 * the value (decoder._build). */
static PyObject *dec_build(Dec *D, DecFrame *f)
{
    size_t base = (size_t)f->vbase, n = D->nvs - base;
    PyObject **vals = D->vs + base;
    PyObject *obj = new_value(f->kind);
    if (obj == NULL) return NULL;
    PyObject *seq = NULL;
    if (f->kind == K_TUPLE || f->kind == K_LIST || f->kind == K_VARIANT || f->kind == K_RECORD) {
        if ((seq = PyTuple_New((Py_ssize_t)n)) == NULL) goto fail;
        if (f->kind == K_RECORD) {
            for (size_t i = 0; i < n; i++) {
                PyObject *pair = PyTuple_New(2);
                if (pair == NULL) goto fail;
                PyObject *name = PyTuple_GET_ITEM(f->h2, i);
                Py_INCREF(name);
                PyTuple_SET_ITEM(pair, 0, name);
                PyTuple_SET_ITEM(pair, 1, vals[i]);  /* the stack's reference moves */
                vals[i] = NULL;
                PyTuple_SET_ITEM(seq, i, pair);
            }
        } else {
            for (size_t i = 0; i < n; i++) PyTuple_SET_ITEM(seq, i, vals[i]);
        }
        D->nvs = base;
    }
    switch (f->kind) {
    case K_TUPLE:
        SLOT(obj, C.tup_items) = seq;
        break;
    case K_LIST:
        SLOT(obj, C.list_elem) = f->h0;
        SLOT(obj, C.list_items) = seq;
        f->h0 = NULL;
        break;
    case K_RECORD:
        SLOT(obj, C.rec_name) = f->h0;
        SLOT(obj, C.rec_fields) = seq;
        f->h0 = NULL;
        break;
    case K_VARIANT: {
        PyObject *tag = PyLong_FromUnsignedLong(f->tag);
        if (tag == NULL) {
            Py_DECREF(seq);
            goto fail;
        }
        SLOT(obj, C.var_type) = f->h0;
        SLOT(obj, C.var_case) = f->h1;
        SLOT(obj, C.var_tag) = tag;
        SLOT(obj, C.var_payload) = seq;
        f->h0 = f->h1 = NULL;
        break;
    }
    case K_OPTION:
        SLOT(obj, C.opt_inner) = f->h0;
        f->h0 = NULL;
        if (n) {
            SLOT(obj, C.opt_value) = vals[0];
            D->nvs = base;
        } else {
            Py_INCREF(Py_None);
            SLOT(obj, C.opt_value) = Py_None;
        }
        break;
    default: /* K_RESULT */
        SLOT(obj, C.res_ok) = f->h0;
        SLOT(obj, C.res_err) = f->h1;
        SLOT(obj, C.res_value) = vals[0];
        D->nvs = base;
        Py_INCREF(f->is_err ? Py_True : Py_False);
        SLOT(obj, C.res_is_err) = f->is_err ? Py_True : Py_False;
        f->h0 = f->h1 = NULL;
        break;
    }
    return obj;
fail:
    /* A record pair failed mid-way: moved values are owned by `seq`, the rest by the
     * stack (NULL holes are skipped when the stack is released). */
    Py_XDECREF(seq);
    Py_DECREF(obj);
    return NULL;
}

static inline int push_value(Dec *D, PyObject *v)
{
    if (D->nvs == D->capvs && grow((void **)&D->vs, &D->capvs, D->nvs + 1, sizeof(PyObject *)))
        return -1;
    Py_INCREF(v);
    D->vs[D->nvs++] = v;
    return 0;
}

/* Phase C: the decode from the root, iterative, memoising every node (so a shared node
 * is one object), with cycle detection and the expansion bound of decoder.py. */
static PyObject *phase_c(Dec *D, const Lim *L)
{
    const uint8_t *d = D->d;
    uint64_t total = 0, budget = L->budget;
    uint32_t child = D->root;
    for (;;) {
        /* resolve `child` to a value, or enter it */
        PyObject *val = D->memo[child];
        if (val == IN_PROGRESS) return NULL;  /* cycle */
        if (val != NULL) {
            total += D->sizes[child];
        } else if (D->kinds[child] == K_ARRAY) {
            if ((val = dec_array(D, child)) == NULL) return NULL;
            D->memo[child] = val;
            D->sizes[child] = 1;
            total += 1;
        } else {
            if (dec_enter(D, child, total)) return NULL;
            D->memo[child] = IN_PROGRESS;
            total += 1;
        }
        if (total > budget) return NULL;
        if (val != NULL) {
            if (D->nfr == 0) {
                Py_INCREF(val);
                return val;
            }
            if (push_value(D, val)) return NULL;
        }
        /* advance the innermost frame: read its next child index or finish it */
        for (;;) {
            DecFrame *f = &D->fr[D->nfr - 1];
            if (f->left) {
                child = rd32(d + f->cursor);
                f->cursor += 4;
                f->left--;
                if (child >= D->count) return NULL;
                break;
            }
            PyObject *v = dec_build(D, f);
            if (v == NULL) return NULL;
            uint32_t node = f->node;
            Py_CLEAR(f->h0);
            Py_CLEAR(f->h1);
            Py_CLEAR(f->h2);
            D->nfr--;
            D->memo[node] = v;  /* the memo owns this reference */
            D->sizes[node] = total - f->total0;
            if (D->nfr == 0) {
                Py_INCREF(v);
                return v;
            }
            if (push_value(D, v)) return NULL;
        }
    }
}

static void dec_release(Dec *D)
{
    if (D->memo != NULL) {
        for (uint32_t i = 0; i < D->count; i++)
            if (D->memo[i] != NULL && D->memo[i] != IN_PROGRESS) Py_DECREF(D->memo[i]);
    }
    for (size_t i = 0; i < D->nvs; i++) Py_XDECREF(D->vs[i]);
    for (size_t i = 0; i < D->nfr; i++) {
        Py_XDECREF(D->fr[i].h0);
        Py_XDECREF(D->fr[i].h1);
        Py_XDECREF(D->fr[i].h2);
    }
    PyMem_Free(D->vs);
    PyMem_Free(D->fr);
    if (D->kinds != D->s_kinds) {
        PyMem_Free(D->kinds);
        PyMem_Free(D->starts);
        PyMem_Free(D->memo);
        PyMem_Free(D->sizes);
    }
}

/* The limits to apply, or -1 to defer (an unusual Limits object). */
static int read_int_limit(PyObject *limits, PyObject *name, int none_ok, uint64_t *out)
{
    PyObject *v = PyObject_GetAttr(limits, name);
    if (v == NULL) return -1;
    int rc = 0;
    if (none_ok && v == Py_None) {
        rc = 1;
    } else if (!PyLong_CheckExact(v)) {
        rc = -1;
    } else {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow > 0)
            *out = (uint64_t)1 << 62;  /* beyond any buffer: only "big" matters */
        else if (overflow < 0 || x < 0 || (x == -1 && PyErr_Occurred()))
            rc = -1;
        else
            *out = (uint64_t)x > ((uint64_t)1 << 62) ? (uint64_t)1 << 62 : (uint64_t)x;
    }
    Py_DECREF(v);
    return rc;
}

/* The last custom Limits read, by identity: callers pass one module-level Limits object
 * on every call, and Limits is a frozen dataclass. The reference keeps the address. */
static PyObject *last_limits;
static Lim last_lim;

static int read_limits(PyObject *limits, Lim *L)
{
    if (limits == Py_None || limits == C.default_limits) {
        *L = C.default_lim;
        return 0;
    }
    if (limits == last_limits) {
        *L = last_lim;
        return 0;
    }
    if (C.limits_cls == NULL || Py_TYPE(limits) != C.limits_cls) return -1;
    if (read_int_limit(limits, s_max_buffer, 0, &L->max_buffer) ||
        read_int_limit(limits, s_max_nodes, 0, &L->max_nodes) ||
        read_int_limit(limits, s_max_payload, 0, &L->max_payload) ||
        read_int_limit(limits, s_max_seq, 0, &L->max_seq))
        return -1;
    int r = read_int_limit(limits, s_max_decoded, 1, &L->budget);
    if (r < 0) return -1;
    if (r == 1) L->budget = L->max_nodes;  /* Limits.decoded_node_budget */
    Py_INCREF(limits);
    Py_XSETREF(last_limits, limits);
    last_lim = *L;
    return 0;
}

/* decode(data, limits) / decode_prefix for the cases C handles: a new reference, or
 * NULL to defer (an exception may be set). */
static PyObject *try_decode_impl(PyObject *data, PyObject *limits, int prefix, size_t *consumed)
{
    if (!C.model_ready || !C.have_decode) return NULL;
    Lim L;
    if (read_limits(limits, &L)) return NULL;
    PyObject *bytes;
    if (PyBytes_CheckExact(data)) {
        bytes = data;
        Py_INCREF(bytes);
    } else if (PyByteArray_CheckExact(data) || PyMemoryView_Check(data)) {
        bytes = PyBytes_FromObject(data);  /* decoder.py copies too: bytes(data) */
        if (bytes == NULL) return NULL;
    } else {
        return NULL;
    }
    Dec D;
    memset(&D, 0, offsetof(Dec, s_kinds));
    D.d = (const uint8_t *)PyBytes_AS_STRING(bytes);
    D.size = (size_t)PyBytes_GET_SIZE(bytes);
    PyObject *res = NULL;
    if (phase_a(&D, &L, prefix, consumed) == 0) {
        /* Everything built here stays reachable until the end, so collections while
         * building are pure cost, and they grow with the value (each one re-traverses
         * what survived the last): a large decode pauses the collector, which then
         * sees the whole value once. No other code runs meanwhile (see
         * call_value_type), and a collector the caller had disabled stays disabled. */
        D.gc_paused = D.size >= GC_PAUSE_BYTES && PyGC_Disable();
        if (phase_b(&D, &L) == 0) res = phase_c(&D, &L);
        if (D.gc_paused) PyGC_Enable();
    }
    /* decoder.decode's one-node fast path returns its shared unit: so do we. */
    if (res != NULL && !prefix && D.count == 1 && D.kinds[0] == K_TUPLE && data == bytes &&
        D.size <= 4096 && D.d[6] == 0 && D.d[7] == 0 && D.root == 0 && C.unit_value != NULL) {
        Py_DECREF(res);
        res = C.unit_value;
        Py_INCREF(res);
    }
    dec_release(&D);
    Py_DECREF(bytes);
    return res;
}

/* ============================================================= module functions */

/* (data, limits=None) from a vectorcall; 0 when the call has exactly that shape. */
static int parse_data_limits(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                             PyObject **data, PyObject **limits)
{
    *data = NULL;
    *limits = Py_None;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2 || nargs + nkw < 1 || nargs + nkw > 2) return -1;
    if (nargs >= 1) *data = args[0];
    if (nargs == 2) *limits = args[1];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (*data == NULL && PyUnicode_CompareWithASCIIString(key, "data") == 0)
            *data = args[nargs + i];
        else if (nargs < 2 && PyUnicode_CompareWithASCIIString(key, "limits") == 0)
            *limits = args[nargs + i];
        else
            return -1;
    }
    return *data == NULL ? -1 : 0;
}

static PyObject *not_configured(void)
{
    PyErr_SetString(PyExc_RuntimeError, "packr_replay.abi._speedups is not configured");
    return NULL;
}

PyDoc_STRVAR(decode_doc,
"decode($module, /, data, limits=None)\n--\n\n"
"Decode CGRF v2 bytes to a value, rejecting exactly what packr rejects.\n\n"
"The C fast path of packr_replay.abi.decoder.py_decode; anything it does not\n"
"handle (every error included) is decoded by py_decode itself.");

static PyObject *sp_decode(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (C.py_decode == NULL) return not_configured();
    PyObject *data, *limits;
    size_t consumed;
    if (parse_data_limits(args, nargs, kwnames, &data, &limits) == 0) {
        PyObject *res = try_decode_impl(data, limits, 0, &consumed);
        if (res != NULL) return res;
        if (clear_for_defer()) return NULL;
    }
    return PyObject_Vectorcall(C.py_decode, args, (size_t)nargs, kwnames);
}

PyDoc_STRVAR(decode_prefix_doc,
"decode_prefix($module, /, data, limits=None)\n--\n\n"
"Decode a value followed by arbitrary bytes; return it and the bytes it used.\n\n"
"The C fast path of packr_replay.abi.decoder.py_decode_prefix.");

static PyObject *sp_decode_prefix(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    if (C.py_decode_prefix == NULL) return not_configured();
    PyObject *data, *limits;
    size_t consumed;
    if (parse_data_limits(args, nargs, kwnames, &data, &limits) == 0) {
        PyObject *res = try_decode_impl(data, limits, 1, &consumed);
        if (res != NULL) {
            PyObject *n = PyLong_FromSize_t(consumed);
            if (n == NULL) {
                Py_DECREF(res);
                return NULL;
            }
            PyObject *pair = PyTuple_Pack(2, res, n);
            Py_DECREF(res);
            Py_DECREF(n);
            return pair;
        }
        if (clear_for_defer()) return NULL;
    }
    return PyObject_Vectorcall(C.py_decode_prefix, args, (size_t)nargs, kwnames);
}

PyDoc_STRVAR(encode_doc,
"encode($module, /, value)\n--\n\n"
"Encode a value as CGRF v2 bytes, exactly as packr's encode does.\n\n"
"The C fast path of packr_replay.abi.encoder.py_encode; anything it does not\n"
"handle (every error included) is encoded by py_encode itself.");

static PyObject *sp_encode(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (C.py_encode == NULL) return not_configured();
    if (nargs == 1 && kwnames == NULL) {
        PyObject *res = try_encode_impl(args[0]);
        if (res != NULL) return res;
        if (clear_for_defer()) return NULL;
    }
    return PyObject_Vectorcall(C.py_encode, args, (size_t)nargs, kwnames);
}

PyDoc_STRVAR(try_decode_doc,
"try_decode($module, data, limits=None, /)\n--\n\n"
"The C path alone: the decoded value, or None where decode() defers to Python.");

static PyObject *sp_try_decode(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "try_decode(data, limits=None)");
        return NULL;
    }
    size_t consumed;
    PyObject *res = try_decode_impl(args[0], nargs == 2 ? args[1] : Py_None, 0, &consumed);
    if (res != NULL) return res;
    if (clear_for_defer()) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(try_encode_doc,
"try_encode($module, value, /)\n--\n\n"
"The C path alone: the CGRF bytes, or None where encode() defers to Python.");

static PyObject *sp_try_encode(PyObject *mod, PyObject *value)
{
    PyObject *res = try_encode_impl(value);
    if (res != NULL) return res;
    if (clear_for_defer()) return NULL;
    Py_RETURN_NONE;
}

/* --- configure */

/* The offset of an object slot `name` on `cls`: it must be a writable object member
 * descriptor defined by `cls` or a base (a plain __slots__ entry). */
static int slot_offset(PyTypeObject *cls, const char *name, Py_ssize_t *off)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)cls, name);
    if (descr == NULL) return -1;
    int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
    if (ok) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        ok = m->type == Py_T_OBJECT_EX && !(m->flags & Py_READONLY) &&
             PyType_IsSubtype(cls, PyDescr_TYPE(descr));
        *off = m->offset;
    }
    Py_DECREF(descr);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a plain __slots__ attribute", cls->tp_name, name);
        return -1;
    }
    return 0;
}

static PyObject *get_item(PyObject *dict, const char *key)
{
    PyObject *v = PyDict_GetItemString(dict, key);  /* borrowed */
    if (v == NULL)
        PyErr_Format(PyExc_KeyError, "configure: missing %s", key);
    return v;
}

/* Store a strong reference in a configuration field (replacing any previous one). */
static void keep(PyObject **field, PyObject *v)
{
    Py_INCREF(v);
    Py_XSETREF(*field, v);
}

static int configure_model(PyObject *cfg)
{
    static const char *const leaf_slot[NKINDS] = {
        [K_BOOL] = "value", [K_S32] = "value", [K_S64] = "value", [K_F32] = "bits",
        [K_F64] = "bits", [K_STRING] = "value", [K_U8] = "value", [K_U16] = "value",
        [K_U32] = "value", [K_U64] = "value", [K_S8] = "value", [K_S16] = "value",
        [K_CHAR] = "value", [K_FLAGS] = "value",
    };
    PyObject *classes = get_item(cfg, "classes");
    PyObject *vt = get_item(cfg, "value_type");
    PyObject *prims = get_item(cfg, "primitive_types");
    PyObject *unit_type = get_item(cfg, "unit_type");
    PyObject *u8 = get_item(cfg, "u8_cache");
    PyObject *limits_cls = get_item(cfg, "limits_type");
    PyObject *default_limits = get_item(cfg, "default_limits");
    if (!classes || !vt || !prims || !unit_type || !u8 || !limits_cls || !default_limits) return -1;
    if (!PyDict_Check(classes) || !PyType_Check(vt) || !PyDict_Check(prims) ||
        !PyTuple_Check(u8) || PyTuple_GET_SIZE(u8) != 256 || !PyType_Check(limits_cls)) {
        PyErr_SetString(PyExc_TypeError, "configure: unexpected model objects");
        return -1;
    }
    C.model_ready = 0;
    memset(C.kind_tab, 0, sizeof C.kind_tab);
    for (int k = 1; k < NKINDS; k++) {
        if (k == K_ARRAY) continue;
        PyObject *key = PyLong_FromLong(k);
        if (key == NULL) return -1;
        PyObject *cls = PyDict_GetItemWithError(classes, key);
        Py_DECREF(key);
        if (cls == NULL || !PyType_Check(cls)) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "configure: no class for kind %d", k);
            return -1;
        }
        PyTypeObject *tp = (PyTypeObject *)cls;
        /* decoder.py builds values with object.__new__, i.e. tp_alloc: no custom __new__. */
        if (tp->tp_new != PyBaseObject_Type.tp_new || tp->tp_alloc == NULL) {
            PyErr_Format(PyExc_TypeError, "configure: %s has a custom __new__", tp->tp_name);
            return -1;
        }
        Py_INCREF(cls);
        Py_XSETREF(C.cls[k], tp);
        if (leaf_slot[k] && slot_offset(tp, leaf_slot[k], &C.scalar[k])) return -1;
        size_t h = ((uintptr_t)tp >> 4) & 63;
        while (C.kind_tab[h].tp != NULL) h = (h + 1) & 63;
        C.kind_tab[h].tp = tp;
        C.kind_tab[h].kind = k;
    }
    if (slot_offset(C.cls[K_LIST], "elem_type", &C.list_elem) ||
        slot_offset(C.cls[K_LIST], "items", &C.list_items) ||
        slot_offset(C.cls[K_OPTION], "inner_type", &C.opt_inner) ||
        slot_offset(C.cls[K_OPTION], "value", &C.opt_value) ||
        slot_offset(C.cls[K_RESULT], "ok_type", &C.res_ok) ||
        slot_offset(C.cls[K_RESULT], "err_type", &C.res_err) ||
        slot_offset(C.cls[K_RESULT], "value", &C.res_value) ||
        slot_offset(C.cls[K_RESULT], "is_err", &C.res_is_err) ||
        slot_offset(C.cls[K_RECORD], "type_name", &C.rec_name) ||
        slot_offset(C.cls[K_RECORD], "fields", &C.rec_fields) ||
        slot_offset(C.cls[K_VARIANT], "type_name", &C.var_type) ||
        slot_offset(C.cls[K_VARIANT], "case_name", &C.var_case) ||
        slot_offset(C.cls[K_VARIANT], "tag", &C.var_tag) ||
        slot_offset(C.cls[K_VARIANT], "payload", &C.var_payload) ||
        slot_offset(C.cls[K_TUPLE], "items", &C.tup_items) ||
        slot_offset((PyTypeObject *)vt, "tag", &C.vt_tag) ||
        slot_offset((PyTypeObject *)vt, "name", &C.vt_name) ||
        slot_offset((PyTypeObject *)vt, "args", &C.vt_args))
        return -1;
    Py_INCREF(vt);
    Py_XSETREF(C.vt_cls, (PyTypeObject *)vt);
    for (int k = 1; k < NKINDS; k++) {
        if (!is_prim((unsigned)k)) continue;
        PyObject *key = PyLong_FromLong(k);
        if (key == NULL) return -1;
        PyObject *t = PyDict_GetItemWithError(prims, key);
        Py_DECREF(key);
        if (t == NULL || !Py_IS_TYPE(t, C.vt_cls)) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "configure: no primitive type %d", k);
            return -1;
        }
        keep(&C.prim_type[k], t);
    }
    keep(&C.unit_type, unit_type);
    for (int i = 0; i < 256; i++) {
        PyObject *v = PyTuple_GET_ITEM(u8, i);
        if (!Py_IS_TYPE(v, C.cls[K_U8])) {
            PyErr_SetString(PyExc_TypeError, "configure: u8_cache holds a non-U8");
            return -1;
        }
        keep(&C.u8[i], v);
    }
    Py_INCREF(limits_cls);
    Py_XSETREF(C.limits_cls, (PyTypeObject *)limits_cls);
    PyObject *old_limits = C.default_limits;
    C.default_limits = NULL;  /* read_limits must read the attributes, not short-cut */
    Lim L;
    int bad = read_limits(default_limits, &L);
    Py_XDECREF(old_limits);
    if (bad) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "configure: unusable default_limits");
        return -1;
    }
    C.default_lim = L;
    Py_INCREF(default_limits);
    C.default_limits = default_limits;
    C.model_ready = 1;
    return 0;
}

PyDoc_STRVAR(configure_doc,
"configure($module, config, /)\n--\n\n"
"Give the accelerator the value model (config['classes'] etc.) and the Python\n"
"implementations it defers to (py_decode, py_decode_prefix, py_encode, true, false,\n"
"unit_value). Keys may come in several calls; raises TypeError when the classes are\n"
"not plain __slots__ classes.");

static PyObject *sp_configure(PyObject *mod, PyObject *cfg)
{
    if (!PyDict_Check(cfg)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    if (PyDict_GetItemString(cfg, "classes") != NULL && configure_model(cfg)) return NULL;
    static const char *const fns[] = {"py_decode", "py_decode_prefix", "py_encode"};
    PyObject **fields[] = {&C.py_decode, &C.py_decode_prefix, &C.py_encode};
    for (int i = 0; i < 3; i++) {
        PyObject *fn = PyDict_GetItemString(cfg, fns[i]);
        if (fn == NULL) continue;
        if (!PyCallable_Check(fn)) {
            PyErr_Format(PyExc_TypeError, "configure: %s is not callable", fns[i]);
            return NULL;
        }
        keep(fields[i], fn);
    }
    static const char *const objs[] = {"true", "false", "unit_value"};
    PyObject **ofields[] = {&C.true_, &C.false_, &C.unit_value};
    for (int i = 0; i < 3; i++) {
        PyObject *v = PyDict_GetItemString(cfg, objs[i]);
        if (v == NULL) continue;
        int want = i < 2 ? K_BOOL : K_TUPLE;
        if (!C.model_ready || !Py_IS_TYPE(v, C.cls[want])) {
            PyErr_Format(PyExc_TypeError, "configure: %s is not a %s", objs[i], C.model_ready ? C.cls[want]->tp_name : "value");
            return NULL;
        }
        keep(ofields[i], v);
    }
    C.have_decode = C.true_ != NULL && C.false_ != NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode", (PyCFunction)(void (*)(void))sp_decode, METH_FASTCALL | METH_KEYWORDS, decode_doc},
    {"decode_prefix", (PyCFunction)(void (*)(void))sp_decode_prefix, METH_FASTCALL | METH_KEYWORDS,
     decode_prefix_doc},
    {"encode", (PyCFunction)(void (*)(void))sp_encode, METH_FASTCALL | METH_KEYWORDS, encode_doc},
    {"try_decode", (PyCFunction)(void (*)(void))sp_try_decode, METH_FASTCALL, try_decode_doc},
    {"try_encode", sp_try_encode, METH_O, try_encode_doc},
    {"configure", sp_configure, METH_O, configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "C accelerator for packr_replay.abi's CGRF v2 codec (see _speedups.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    if (!(s_max_buffer = PyUnicode_InternFromString("max_buffer_size")) ||
        !(s_max_nodes = PyUnicode_InternFromString("max_node_count")) ||
        !(s_max_payload = PyUnicode_InternFromString("max_payload_size")) ||
        !(s_max_seq = PyUnicode_InternFromString("max_sequence_len")) ||
        !(s_max_decoded = PyUnicode_InternFromString("max_decoded_nodes")))
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    /* Bumped whenever the Python codec's rules change in a way this file must follow:
     * _accel refuses a build whose number it does not expect (a stale editable build). */
    if (m != NULL && PyModule_AddIntConstant(m, "CONTRACT", 1) < 0) Py_CLEAR(m);
    return m;
}
