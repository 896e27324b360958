/*
 * _speedups: a C accelerator for packr_replay.storage's segment record codec.
 *
 * Contract: exactly the bytes and records of the pure-Python codec (chain.py's
 * py_pack_chain / py_pack_rows / py_hash_records / pack_row, codec.py's
 * py_decode_segment).
 *
 * A segment is records back to back: the msgpack array of an event's 13 chain fields
 * (as msgpack-python's Packer(use_bin_type=True) writes it), then HASH_PREFIX and the
 * 32-byte SHA-256 of (previous hash + that array). Writing, the C code packs the plain
 * case (exact str/bytes/int/None fields, kind and outcome names) and hands any other
 * row to the Python packer, whose bytes (or exception) it takes as they are. Reading,
 * it decodes a segment whose every record is regular; on anything else it drops what
 * it built and returns the Python decoder's iterator, so each record before a bad one
 * is still yielded, and every error message lives in one place (Python).
 *
 * Hashing is OpenSSL's SHA-256: each record is hashed in place, as one range with the
 * previous hash that the output buffer holds right before it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* SHA-256 is OpenSSL's (libcrypto, the library CPython's hashlib uses). Its low-level
 * SHA256_Init/Update/Final run the CPU's SHA extensions when it has them; OpenSSL 3
 * marks them deprecated in favour of EVP, whose per-digest provider lookup (and the
 * one-shot SHA256(), which goes through it) costs several times the hash of a
 * ~150-byte record, so this file opts out of the deprecation warnings. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

static inline void sha256_once(const uint8_t *p, size_t n, uint8_t out[32])
{
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, p, n);
    SHA256_Final(out, &ctx);
}

/* ------------------------------------------------------------------ configuration */

#define NKINDS 8  /* room for more kinds than codec.KINDS has (4: export import return raw) */
#define NOUTCOMES 6
#define NENUMS 2

static struct {
    PyObject *kinds[NKINDS];        /* the kind names (codec.KINDS keys), plain str */
    PyObject *outcomes[NOUTCOMES];  /* the outcome names (codec.OUTCOMES keys) */
    int nkinds, noutcomes;
    PyTypeObject *enums[NENUMS];    /* EventKind, Outcome: str subclasses packed as their text */
    Py_ssize_t max_str;             /* codec.MAX_STR_BYTES: longer strings are Python's error */
    PyObject *py_pack_row, *py_pack_chain, *py_pack_rows, *py_decode_segment;
    int pack_ready, decode_ready;
} C;

static const uint8_t HASH_PREFIX[2] = {0xc4, 0x20};

/* The index of the name whose UTF-8 is (p, n) in names, or -1. */
static inline int name_index(PyObject *const *names, int count, const char *p, Py_ssize_t n)
{
    for (int i = 0; i < count; i++) {
        if (PyUnicode_GET_LENGTH(names[i]) == n && memcmp(PyUnicode_DATA(names[i]), p, (size_t)n) == 0)
            return i;
    }
    return -1;
}

/* ------------------------------------------------------------------------- packing */

typedef struct {
    PyObject *obj;  /* a bytes object used as the growing buffer */
    Py_ssize_t len, cap;
} Out;

static int out_reserve(Out *o, Py_ssize_t extra)
{
    if (o->len + extra <= o->cap) return 0;
    if (extra > PY_SSIZE_T_MAX / 2 - o->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = o->cap * 2;
    if (cap < o->len + extra) cap = o->len + extra;
    if (_PyBytes_Resize(&o->obj, cap) < 0) return -1;
    o->cap = cap;
    return 0;
}

static inline uint8_t *out_ptr(Out *o) { return (uint8_t *)PyBytes_AS_STRING(o->obj) + o->len; }

enum { PACK_OK = 0, PACK_DEFER = 1, PACK_ERROR = -1 };

/* msgpack's smallest representation of an int, as msgpack-python packs it. */
static inline void put_int64(Out *o, int64_t v)
{
    uint8_t *p = out_ptr(o);
    if (v >= -32 && v < 128) {
        p[0] = (uint8_t)v;
        o->len += 1;
    } else if (v < 0) {
        if (v >= -128) { p[0] = 0xd0; p[1] = (uint8_t)v; o->len += 2; }
        else if (v >= -32768) { p[0] = 0xd1; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v; o->len += 3; }
        else if (v >= -2147483648LL) {
            p[0] = 0xd2;
            for (int i = 0; i < 4; i++) p[1 + i] = (uint8_t)((uint64_t)v >> (24 - 8 * i));
            o->len += 5;
        } else {
            p[0] = 0xd3;
            for (int i = 0; i < 8; i++) p[1 + i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
            o->len += 9;
        }
    } else {
        uint64_t u = (uint64_t)v;
        if (u < 256) { p[0] = 0xcc; p[1] = (uint8_t)u; o->len += 2; }
        else if (u < 65536) { p[0] = 0xcd; p[1] = (uint8_t)(u >> 8); p[2] = (uint8_t)u; o->len += 3; }
        else if (u < 4294967296ULL) {
            p[0] = 0xce;
            for (int i = 0; i < 4; i++) p[1 + i] = (uint8_t)(u >> (24 - 8 * i));
            o->len += 5;
        } else {
            p[0] = 0xcf;
            for (int i = 0; i < 8; i++) p[1 + i] = (uint8_t)(u >> (56 - 8 * i));
            o->len += 9;
        }
    }
}

static int pack_int(Out *o, PyObject *v)
{
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return PACK_ERROR;
    if (out_reserve(o, 9) < 0) return PACK_ERROR;
    if (!overflow) {
        put_int64(o, (int64_t)x);
        return PACK_OK;
    }
    if (overflow < 0) return PACK_DEFER;  /* below int64: msgpack's OverflowError */
    unsigned long long u = PyLong_AsUnsignedLongLong(v);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return PACK_ERROR;
        PyErr_Clear();
        return PACK_DEFER;  /* above uint64 */
    }
    uint8_t *p = out_ptr(o);  /* >= 2**63: always uint 64 */
    p[0] = 0xcf;
    for (int i = 0; i < 8; i++) p[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    o->len += 9;
    return PACK_OK;
}

static int pack_raw(Out *o, const char *data, Py_ssize_t n, int is_str)
{
    if ((uint64_t)n > 0xFFFFFFFFULL) return PACK_DEFER;  /* msgpack's "too large" error */
    if (out_reserve(o, n + 5) < 0) return PACK_ERROR;
    uint8_t *p = out_ptr(o);
    Py_ssize_t h;
    if (is_str && n < 32) { p[0] = (uint8_t)(0xa0 | n); h = 1; }
    else if (n < 256) { p[0] = is_str ? 0xd9 : 0xc4; p[1] = (uint8_t)n; h = 2; }
    else if (n < 65536) { p[0] = is_str ? 0xda : 0xc5; p[1] = (uint8_t)(n >> 8); p[2] = (uint8_t)n; h = 3; }
    else {
        p[0] = is_str ? 0xdb : 0xc6;
        for (int i = 0; i < 4; i++) p[1 + i] = (uint8_t)((uint64_t)n >> (24 - 8 * i));
        h = 5;
    }
    memcpy(p + h, data, (size_t)n);
    o->len += h + n;
    return PACK_OK;
}

/* A str as msgpack-python packs it (PyUnicode_AsUTF8AndSize; a failure is Python's). */
static int pack_str(Out *o, PyObject *v)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == NULL) {
        PyErr_Clear();
        return PACK_DEFER;
    }
    return pack_raw(o, s, n, 1);
}

static inline int pack_nil(Out *o)
{
    if (out_reserve(o, 1) < 0) return PACK_ERROR;
    *out_ptr(o) = 0xc0;
    o->len += 1;
    return PACK_OK;
}

/* A kind or outcome: an exact str or a member of EventKind/Outcome whose text is one of
 * the names (what `in KIND_NAMES` accepts and msgpack packs as its text). */
static int pack_name(Out *o, PyObject *v, PyObject *const *names, int count)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (tp != &PyUnicode_Type && tp != C.enums[0] && tp != C.enums[1]) return PACK_DEFER;
    if (!PyUnicode_IS_ASCII(v)) return PACK_DEFER;  /* (enum members are not compact) */
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);
    const char *s = (const char *)PyUnicode_DATA(v);
    if (name_index(names, count, s, n) < 0) return PACK_DEFER;
    return pack_raw(o, s, n, 1);
}

#define EXACT_STR(v) (Py_TYPE(v) == &PyUnicode_Type)
#define EXACT_INT(v) (Py_TYPE(v) == &PyLong_Type)

/* One row (the 12 fields after seq) packed as the 13-field array, or PACK_DEFER for any
 * row the Python writer would normalise, refuse, or pack with an error. */
static int pack_row(Out *o, int64_t seq, PyObject *row)
{
    if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 12) return PACK_DEFER;
    PyObject **f = ((PyTupleObject *)row)->ob_item;
    /* call kind iface fn input output status outcome error_kind error duration depth */
    if (!EXACT_INT(f[0]) || !EXACT_STR(f[2]) || !EXACT_STR(f[3]) ||
        (f[4] != Py_None && !PyBytes_CheckExact(f[4])) ||
        (f[5] != Py_None && !PyBytes_CheckExact(f[5])) ||
        (f[6] != Py_None && !EXACT_INT(f[6])) ||
        (f[8] != Py_None && !EXACT_STR(f[8])) ||
        (f[9] != Py_None && !EXACT_STR(f[9])) ||
        !EXACT_INT(f[10]) || !EXACT_INT(f[11]))
        return PACK_DEFER;
    if (out_reserve(o, 10) < 0) return PACK_ERROR;
    *out_ptr(o) = 0x9d;  /* fixarray of 13 */
    o->len += 1;
    put_int64(o, seq);
    int r;
#define STEP(expr) do { r = (expr); if (r != PACK_OK) return r; } while (0)
    STEP(pack_int(o, f[0]));
    STEP(pack_name(o, f[1], C.kinds, C.nkinds));
    STEP(pack_str(o, f[2]));
    STEP(pack_str(o, f[3]));
    for (int i = 4; i <= 5; i++) {
        if (f[i] == Py_None) STEP(pack_nil(o));
        else STEP(pack_raw(o, PyBytes_AS_STRING(f[i]), PyBytes_GET_SIZE(f[i]), 0));
    }
    STEP(f[6] == Py_None ? pack_nil(o) : pack_int(o, f[6]));
    STEP(pack_name(o, f[7], C.outcomes, C.noutcomes));
    STEP(f[8] == Py_None ? pack_nil(o) : pack_str(o, f[8]));
    STEP(f[9] == Py_None ? pack_nil(o) : pack_str(o, f[9]));
    STEP(pack_int(o, f[10]));
    STEP(pack_int(o, f[11]));
#undef STEP
    return PACK_OK;
}

/* The Python packer's bytes for a row the C code does not take (or its exception). */
static int pack_row_python(Out *o, int64_t seq, PyObject *row)
{
    PyObject *s = PyLong_FromLongLong(seq);
    if (s == NULL) return PACK_ERROR;
    PyObject *args[2] = {s, row};
    PyObject *packed = PyObject_Vectorcall(C.py_pack_row, args, 2, NULL);
    Py_DECREF(s);
    if (packed == NULL) return PACK_ERROR;
    if (!PyBytes_CheckExact(packed)) {
        Py_DECREF(packed);
        PyErr_SetString(PyExc_TypeError, "pack_row must return bytes");
        return PACK_ERROR;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(packed);
    if (out_reserve(o, n) < 0) {
        Py_DECREF(packed);
        return PACK_ERROR;
    }
    memcpy(out_ptr(o), PyBytes_AS_STRING(packed), (size_t)n);
    o->len += n;
    Py_DECREF(packed);
    return PACK_OK;
}

static int ensure_ready(int ready)
{
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "packr_replay.storage._speedups is not configured");
        return -1;
    }
    return 0;
}

/* Pack `rows` as the records of events first_seq.. into `o`, which holds the hash they
 * chain after in its first 32 bytes. With `lens` NULL each record is hashed as it is
 * packed (the previous hash sits right before it, so one range is hashed); otherwise its
 * length goes to `lens` (a uint32 each) and its hash slot is left zero for hash_records.
 * Returns how many rows were packed, or -1 with an exception set. */
static Py_ssize_t pack_into(Out *o, PyObject *rows, int64_t seq, Out *lens)
{
    Py_ssize_t i = 0;
    /* A list can change size under the Python fallback: re-read its length each time. */
    for (; i < PySequence_Fast_GET_SIZE(rows); i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(rows, i);
        Py_INCREF(row);
        Py_ssize_t start = o->len;
        int r = pack_row(o, seq, row);
        if (r == PACK_DEFER) {
            o->len = start;
            r = pack_row_python(o, seq, row);
        }
        Py_DECREF(row);
        if (r != PACK_OK || out_reserve(o, 34) < 0) return -1;
        uint8_t *base = (uint8_t *)PyBytes_AS_STRING(o->obj);
        uint8_t *p = base + o->len;
        memcpy(p, HASH_PREFIX, 2);
        Py_ssize_t n = o->len - start;
        if (lens == NULL) {
            sha256_once(base + start - 32, (size_t)(n + 32), p + 2);
        } else {
            if ((uint64_t)n > 0xFFFFFFFFULL) {
                PyErr_SetString(PyExc_OverflowError, "an event record over 4 GiB");
                return -1;
            }
            memset(p + 2, 0, 32);
            if (out_reserve(lens, 4) < 0) return -1;
            uint32_t n32 = (uint32_t)n;
            memcpy(out_ptr(lens), &n32, 4);
            lens->len += 4;
        }
        o->len += 34;
        seq++;
    }
    return i;
}

/* The first_seq and head arguments, or 0 when the call is unusual (Python's). */
static int plain_args(PyObject *rows, PyObject *first, long long *first_seq)
{
    int overflow = 1;
    *first_seq = EXACT_INT(first) ? PyLong_AsLongLongAndOverflow(first, &overflow) : 0;
    if (*first_seq == -1 && PyErr_Occurred()) return -1;
    return (PyList_CheckExact(rows) || PyTuple_CheckExact(rows)) && !overflow &&
           *first_seq >= 0 && *first_seq <= ((long long)1 << 62);
}

PyDoc_STRVAR(pack_chain_doc,
"pack_chain($module, rows, first_seq, head, /)\n--\n\n"
"Pack and chain rows (TraceWriter.extend's 12-field tuples) as segment records\n"
"numbered from first_seq after the hash head. Returns (data, new_head, count): the\n"
"exact bytes of chain.py_pack_chain. Rows the C code does not take go through the\n"
"Python packer (chain.pack_row), whose exceptions propagate.");

static PyObject *sp_pack_chain(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (ensure_ready(C.pack_ready) < 0) return NULL;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "pack_chain expected 3 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *rows = args[0], *head = args[2];
    long long first_seq;
    int plain = plain_args(rows, args[1], &first_seq);
    if (plain < 0) return NULL;
    /* Anything unusual about the call itself: the Python implementation, whole. */
    if (!plain || !PyBytes_CheckExact(head) || PyBytes_GET_SIZE(head) != 32)
        return PyObject_Vectorcall(C.py_pack_chain, args, 3, NULL);
    Py_ssize_t nrows = PySequence_Fast_GET_SIZE(rows);
    Out o = {NULL, 0, 0};
    o.cap = 64 + nrows * 112;
    o.obj = PyBytes_FromStringAndSize(NULL, o.cap);
    if (o.obj == NULL) return NULL;
    memcpy(out_ptr(&o), PyBytes_AS_STRING(head), 32);
    o.len = 32;
    Py_ssize_t count = pack_into(&o, rows, (int64_t)first_seq, NULL);
    if (count < 0) {
        Py_DECREF(o.obj);
        return NULL;
    }
    const char *base = PyBytes_AS_STRING(o.obj);
    PyObject *result = Py_BuildValue("(y#y#n)", base + 32, o.len - 32,
                                     base + o.len - 32, (Py_ssize_t)32, count);
    Py_DECREF(o.obj);
    return result;
}

PyDoc_STRVAR(pack_rows_doc,
"pack_rows($module, rows, first_seq, /)\n--\n\n"
"Pack rows as pack_chain does, each record followed by its hash slot left zero.\n"
"Returns (data, lens, count): lens holds each record's length (native uint32s), for\n"
"hash_records to chain them later (chain.py_pack_rows' exact bytes).");

static PyObject *sp_pack_rows(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (ensure_ready(C.pack_ready) < 0) return NULL;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "pack_rows expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *rows = args[0];
    long long first_seq;
    int plain = plain_args(rows, args[1], &first_seq);
    if (plain < 0) return NULL;
    if (!plain) return PyObject_Vectorcall(C.py_pack_rows, args, 2, NULL);
    Py_ssize_t nrows = PySequence_Fast_GET_SIZE(rows);
    Out o = {NULL, 0, 0}, lens = {NULL, 0, 0};
    o.cap = 64 + nrows * 112;
    lens.cap = 4 + nrows * 4;
    o.obj = PyBytes_FromStringAndSize(NULL, o.cap);
    lens.obj = PyBytes_FromStringAndSize(NULL, lens.cap);
    PyObject *result = NULL;
    if (o.obj != NULL && lens.obj != NULL) {
        o.len = 32;  /* (room for a head, as pack_into expects; not returned) */
        Py_ssize_t count = pack_into(&o, rows, (int64_t)first_seq, &lens);
        if (count >= 0)
            result = Py_BuildValue("(y#y#n)", PyBytes_AS_STRING(o.obj) + 32, o.len - 32,
                                   PyBytes_AS_STRING(lens.obj), lens.len, count);
    }
    Py_XDECREF(o.obj);
    Py_XDECREF(lens.obj);
    return result;
}

PyDoc_STRVAR(hash_records_doc,
"hash_records($module, buf, lens, head, /)\n--\n\n"
"Chain records packed by pack_rows: buf (writable) holds 32 bytes of room for the head,\n"
"then the records, each followed by its hash slot; lens their lengths. Writes head and\n"
"every hash in place, the GIL released, and returns the last hash (head if none).");

static PyObject *sp_hash_records(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "hash_records expected 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyBytes_CheckExact(args[2]) || PyBytes_GET_SIZE(args[2]) != 32) {
        PyErr_SetString(PyExc_ValueError, "hash_records: head must be 32 bytes");
        return NULL;
    }
    Py_buffer buf, lens;
    if (PyObject_GetBuffer(args[0], &buf, PyBUF_WRITABLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &lens, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    /* Check the layout first: every record and slot inside buf, nothing left over. */
    Py_ssize_t count = lens.len / 4, pos = 32;
    int bad = lens.len % 4 != 0 || buf.len < 32;
    for (Py_ssize_t i = 0; !bad && i < count; i++) {
        uint32_t n;
        memcpy(&n, (const uint8_t *)lens.buf + 4 * i, 4);
        if (n == 0 || (Py_ssize_t)n > buf.len - pos - 34) bad = 1;
        else pos += (Py_ssize_t)n + 34;
    }
    if (bad || pos != buf.len) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&lens);
        PyErr_SetString(PyExc_ValueError, "hash_records: lens do not describe buf");
        return NULL;
    }
    uint8_t *base = buf.buf, last[32];
    memcpy(base, PyBytes_AS_STRING(args[2]), 32);
    memcpy(last, base, 32);
    Py_BEGIN_ALLOW_THREADS
    pos = 32;
    for (Py_ssize_t i = 0; i < count; i++) {
        uint32_t n;
        memcpy(&n, (const uint8_t *)lens.buf + 4 * i, 4);
        uint8_t *slot = base + pos + n;
        slot[0] = HASH_PREFIX[0];
        slot[1] = HASH_PREFIX[1];
        sha256_once(base + pos - 32, (size_t)n + 32, slot + 2);
        memcpy(last, slot + 2, 32);
        pos += (Py_ssize_t)n + 34;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&lens);
    return PyBytes_FromStringAndSize((const char *)last, 32);
}

/* ------------------------------------------------------------------------ decoding */

/* Field positions (Event.chain_fields order) and the types each may hold. */
enum { T_NIL = 1, T_INT = 2, T_STR = 4, T_BIN = 8 };
static const uint8_t ALLOWED[13] = {
    T_INT, T_INT, T_STR, T_STR, T_STR, T_BIN | T_NIL, T_BIN | T_NIL,
    T_INT | T_NIL, T_STR, T_STR | T_NIL, T_STR | T_NIL, T_INT, T_INT,
};
#define F_SEQ 0
#define F_KIND 2
#define F_OUTCOME 8

typedef struct {
    const uint8_t *p, *end;
    /* The last string seen at each field position, reused when the next record holds
     * the same text (interface and function names repeat in almost every record). */
    const uint8_t *last_s[13];
    Py_ssize_t last_n[13];
    PyObject *last_o[13];
} Rd;

enum { RD_OK = 0, RD_IRREGULAR = 1, RD_ERROR = -1 };

static inline uint64_t rd_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* The header of one object: its type, and for str/bin the payload length; for ints
 * the value is decoded straight away (as int64 `iv` or, over INT64_MAX, uint64 `uv`). */
typedef struct {
    int type;
    Py_ssize_t n;
    int64_t iv;
    uint64_t uv;
    int big;  /* an unsigned value over INT64_MAX */
} Obj;

static int rd_header(Rd *r, Obj *ob)
{
    if (r->p >= r->end) return RD_IRREGULAR;
    uint8_t b = *r->p;
    Py_ssize_t avail = r->end - r->p - 1;
    int w;
    ob->big = 0;
    if (b <= 0x7f) { ob->type = T_INT; ob->iv = b; r->p += 1; return RD_OK; }
    if (b >= 0xe0) { ob->type = T_INT; ob->iv = (int8_t)b; r->p += 1; return RD_OK; }
    if (b >= 0xa0 && b <= 0xbf) { ob->type = T_STR; ob->n = b & 0x1f; r->p += 1; goto payload; }
    switch (b) {
    case 0xc0: ob->type = T_NIL; r->p += 1; return RD_OK;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        w = 1 << (b - 0xcc);
        if (avail < w) return RD_IRREGULAR;
        ob->type = T_INT;
        ob->uv = rd_be(r->p + 1, w);
        if (ob->uv > (uint64_t)INT64_MAX) ob->big = 1;
        else ob->iv = (int64_t)ob->uv;
        r->p += 1 + w;
        return RD_OK;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        w = 1 << (b - 0xd0);
        if (avail < w) return RD_IRREGULAR;
        uint64_t u = rd_be(r->p + 1, w);
        int shift = 64 - 8 * w;  /* sign-extend the w-byte two's complement value */
        ob->type = T_INT;
        ob->iv = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
        r->p += 1 + w;
        return RD_OK;
    }
    case 0xd9: case 0xda: case 0xdb:
        w = 1 << (b - 0xd9);
        if (avail < w) return RD_IRREGULAR;
        ob->type = T_STR;
        ob->n = (Py_ssize_t)rd_be(r->p + 1, w);
        r->p += 1 + w;
        goto payload;
    case 0xc4: case 0xc5: case 0xc6:
        w = 1 << (b - 0xc4);
        if (avail < w) return RD_IRREGULAR;
        ob->type = T_BIN;
        ob->n = (Py_ssize_t)rd_be(r->p + 1, w);
        r->p += 1 + w;
        goto payload;
    default:
        return RD_IRREGULAR;  /* bool, float, map, ext, nested array: Python says what */
    }
payload:
    if (ob->n > r->end - r->p) return RD_IRREGULAR;
    if (ob->type == T_STR && ob->n > C.max_str) return RD_IRREGULAR;
    return RD_OK;
}

static inline PyObject *int_object(const Obj *ob)
{
    return ob->big ? PyLong_FromUnsignedLongLong(ob->uv) : PyLong_FromLongLong(ob->iv);
}

static int rd_field(Rd *r, int i, PyObject **out)
{
    Obj ob;
    int rc = rd_header(r, &ob);
    if (rc != RD_OK) return rc;
    if (!(ob.type & ALLOWED[i])) return RD_IRREGULAR;
    switch (ob.type) {
    case T_NIL:
        *out = Py_NewRef(Py_None);
        return RD_OK;
    case T_INT:
        *out = int_object(&ob);
        return *out ? RD_OK : RD_ERROR;
    case T_BIN:
        *out = PyBytes_FromStringAndSize((const char *)r->p, ob.n);
        r->p += ob.n;
        return *out ? RD_OK : RD_ERROR;
    default:
        break;
    }
    const uint8_t *s = r->p;
    Py_ssize_t n = ob.n;
    r->p += n;
    if (i == F_KIND || i == F_OUTCOME) {
        /* A kind or outcome name: the shared name object, or not ours to judge. */
        int k = i == F_KIND ? name_index(C.kinds, C.nkinds, (const char *)s, n)
                            : name_index(C.outcomes, C.noutcomes, (const char *)s, n);
        if (k < 0) return RD_IRREGULAR;
        *out = Py_NewRef(i == F_KIND ? C.kinds[k] : C.outcomes[k]);
        return RD_OK;
    }
    if (r->last_o[i] != NULL && r->last_n[i] == n && memcmp(r->last_s[i], s, (size_t)n) == 0) {
        *out = Py_NewRef(r->last_o[i]);
        return RD_OK;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)s, n, NULL);
    if (text == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return RD_ERROR;
        PyErr_Clear();
        return RD_IRREGULAR;
    }
    Py_XSETREF(r->last_o[i], Py_NewRef(text));
    r->last_s[i] = s;
    r->last_n[i] = n;
    *out = text;
    return RD_OK;
}

/* One record: (fields, digest), or NULL with *rc set. */
/* One record at r->p. With prev (the hash it chains after), its stored hash must be
 * SHA-256(prev + the record's bytes as stored); a mismatch is irregular, for Python to
 * judge (it re-packs the fields canonically, as verify does) and report. */
static PyObject *rd_record(Rd *r, int64_t seq, int *rc, const uint8_t *prev)
{
    Obj ob;
    const uint8_t *p = r->p;
    const uint8_t *start = p;
    if (p >= r->end) { *rc = RD_IRREGULAR; return NULL; }
    Py_ssize_t n;
    if ((p[0] & 0xf0) == 0x90) { n = p[0] & 0x0f; r->p += 1; }
    else if (p[0] == 0xdc && r->end - p >= 3) { n = (Py_ssize_t)rd_be(p + 1, 2); r->p += 3; }
    else if (p[0] == 0xdd && r->end - p >= 5) { n = (Py_ssize_t)rd_be(p + 1, 4); r->p += 5; }
    else { *rc = RD_IRREGULAR; return NULL; }
    if (n != 13) { *rc = RD_IRREGULAR; return NULL; }
    /* seq first: it must be the record's position. */
    *rc = rd_header(r, &ob);
    if (*rc != RD_OK) return NULL;
    if (ob.type != T_INT || ob.big || ob.iv != seq) { *rc = RD_IRREGULAR; return NULL; }
    PyObject *fields = PyTuple_New(13);
    if (fields == NULL) { *rc = RD_ERROR; return NULL; }
    PyObject *item = PyLong_FromLongLong(seq);
    if (item == NULL) goto error;
    PyTuple_SET_ITEM(fields, 0, item);
    for (int i = 1; i < 13; i++) {
        *rc = rd_field(r, i, &item);
        if (*rc != RD_OK) goto fail;
        PyTuple_SET_ITEM(fields, i, item);
    }
    /* The stored hash: a 32-byte bin. */
    const uint8_t *fields_end = r->p;
    *rc = rd_header(r, &ob);
    if (*rc != RD_OK) goto fail;
    if (ob.type != T_BIN || ob.n != 32) { *rc = RD_IRREGULAR; goto fail; }
    if (prev != NULL) {
        uint8_t h[32];
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, prev, 32);
        SHA256_Update(&ctx, start, (size_t)(fields_end - start));
        SHA256_Final(h, &ctx);
        if (memcmp(h, r->p, 32) != 0) { *rc = RD_IRREGULAR; goto fail; }
    }
    PyObject *digest = PyBytes_FromStringAndSize((const char *)r->p, 32);
    if (digest == NULL) goto error;
    r->p += 32;
    /* Only str, int, bytes and None inside: no cycle can pass through these tuples,
     * so the collector need not track them (CPython would untrack them itself later). */
    PyObject_GC_UnTrack(fields);
    PyObject *record = PyTuple_New(2);
    if (record == NULL) {
        Py_DECREF(digest);
        goto error;
    }
    PyTuple_SET_ITEM(record, 0, fields);
    PyTuple_SET_ITEM(record, 1, digest);
    PyObject_GC_UnTrack(record);
    *rc = RD_OK;
    return record;
error:
    *rc = RD_ERROR;
fail:
    Py_DECREF(fields);
    return NULL;
}

PyDoc_STRVAR(decode_segment_doc,
"decode_segment($module, data, first_seq, count, prev=None, trace_id=None, /)\n--\n\n"
"The validated (fields, digest) records of a segment, as a list, exactly as\n"
"codec.py_decode_segment yields them; with prev (32 bytes) each record's hash is\n"
"checked against the chain from prev. For a segment with anything irregular (or a\n"
"hash that does not match the stored bytes) it returns py_decode_segment's iterator\n"
"instead, which yields the records before the fault and raises Python's\n"
"TraceFormatError or IntegrityError at it.");

static PyObject *sp_decode_segment(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (ensure_ready(C.decode_ready) < 0) return NULL;
    if (nargs < 3 || nargs > 5) {
        PyErr_Format(PyExc_TypeError, "decode_segment expected 3 to 5 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *data = args[0];
    const uint8_t *prev = NULL;
    if (nargs >= 4 && args[3] != Py_None) {
        if (!PyBytes_CheckExact(args[3]) || PyBytes_GET_SIZE(args[3]) != 32) goto python;
        prev = (const uint8_t *)PyBytes_AS_STRING(args[3]);
    }
    int o1 = 1, o2 = 1;
    long long first = EXACT_INT(args[1]) ? PyLong_AsLongLongAndOverflow(args[1], &o1) : 0;
    if (first == -1 && PyErr_Occurred()) return NULL;
    long long count = EXACT_INT(args[2]) ? PyLong_AsLongLongAndOverflow(args[2], &o2) : 0;
    if (count == -1 && PyErr_Occurred()) return NULL;
    /* A record takes at least 48 bytes (array header, 13 one-byte fields, the hash). */
    if (!PyBytes_CheckExact(data) || o1 || o2 || first < 0 || count <= 0 ||
        first > ((long long)1 << 62) || count > PyBytes_GET_SIZE(data) / 48)
        goto python;
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (list == NULL) return NULL;
    Rd r;
    memset(&r, 0, sizeof r);
    r.p = (const uint8_t *)PyBytes_AS_STRING(data);
    r.end = r.p + PyBytes_GET_SIZE(data);
    int rc = RD_OK;
    for (Py_ssize_t i = 0; i < (Py_ssize_t)count; i++) {
        PyObject *record = rd_record(&r, (int64_t)first + i, &rc, prev);
        if (record == NULL) break;
        PyList_SET_ITEM(list, i, record);
        if (prev != NULL) prev = r.p - 32;  /* this record's stored hash, inside data */
    }
    if (rc == RD_OK && r.p != r.end) rc = RD_IRREGULAR;  /* trailing bytes */
    for (int i = 0; i < 13; i++) Py_CLEAR(r.last_o[i]);
    if (rc == RD_OK) return list;
    Py_DECREF(list);
    if (rc == RD_ERROR) return NULL;
python:
    return PyObject_Vectorcall(C.py_decode_segment, args, (size_t)nargs, NULL);
}

/* ------------------------------------------------------------------ lazy decoding */

/* A segment checked whole (layout, types, UTF-8, the hash chain) without building any
 * object, for readers that touch few of its records as Python objects: the replayer on
 * the native call path, whose trampoline serves most records straight from these
 * bytes. Each record is a LazyRecord, a (fields, digest) pair built on first use by the
 * same decoder as decode_segment; record_view() (a capsule) hands a record's fields to
 * C code without building it. Anything decode_segment would not take as a whole list
 * goes to decode_segment, so every error and fallback is the same. */

/* Where one record's fields are: offsets into the segment's bytes. */
typedef struct {
    uint32_t start;         /* the record's msgpack array */
    uint32_t hash;          /* its stored hash (32 bytes) */
    uint32_t iface, fn, in, out;        /* payload offsets */
    uint32_t iface_n, fn_n, in_n, out_n;
    int64_t status;
    uint8_t kind, outcome;  /* indexes into C.kinds / C.outcomes */
    uint8_t has_in, has_out, has_status;  /* has_status 2: an int outside int64 */
} RecIdx;

/* Strict UTF-8 as Python's decoder takes it (no surrogates, no overlongs, <= U+10FFFF). */
static int utf8_ok(const uint8_t *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        int len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (n - i < len) return 0;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += len;
    }
    return 1;
}

/* Scan the record of event `seq` at r->p as rd_record would decode it (RD_OK), or
 * RD_IRREGULAR for anything rd_record would not take. */
static int scan_record(Rd *r, const uint8_t *base, int64_t seq, RecIdx *x)
{
    Obj ob;
    const uint8_t *p = r->p;
    if (p >= r->end) return RD_IRREGULAR;
    Py_ssize_t n;
    if ((p[0] & 0xf0) == 0x90) { n = p[0] & 0x0f; r->p += 1; }
    else if (p[0] == 0xdc && r->end - p >= 3) { n = (Py_ssize_t)rd_be(p + 1, 2); r->p += 3; }
    else if (p[0] == 0xdd && r->end - p >= 5) { n = (Py_ssize_t)rd_be(p + 1, 4); r->p += 5; }
    else return RD_IRREGULAR;
    if (n != 13) return RD_IRREGULAR;
    x->start = (uint32_t)(p - base);
    if (rd_header(r, &ob) != RD_OK || ob.type != T_INT || ob.big || ob.iv != seq)
        return RD_IRREGULAR;
    for (int i = 1; i < 13; i++) {
        if (rd_header(r, &ob) != RD_OK || !(ob.type & ALLOWED[i])) return RD_IRREGULAR;
        const uint8_t *payload = r->p;
        uint32_t off = (uint32_t)(payload - base);
        if (ob.type == T_STR || ob.type == T_BIN) r->p += ob.n;
        if (ob.type == T_STR) {
            if (i == F_KIND || i == F_OUTCOME) {
                int k = i == F_KIND ? name_index(C.kinds, C.nkinds, (const char *)payload, ob.n)
                                    : name_index(C.outcomes, C.noutcomes, (const char *)payload, ob.n);
                if (k < 0) return RD_IRREGULAR;
                if (i == F_KIND) x->kind = (uint8_t)k;
                else x->outcome = (uint8_t)k;
                continue;
            }
            if (!utf8_ok(payload, ob.n)) return RD_IRREGULAR;
        }
        switch (i) {
        case 3: x->iface = off; x->iface_n = (uint32_t)ob.n; break;
        case 4: x->fn = off; x->fn_n = (uint32_t)ob.n; break;
        case 5:
            x->has_in = ob.type == T_BIN;
            x->in = off;
            x->in_n = x->has_in ? (uint32_t)ob.n : 0;
            break;
        case 6:
            x->has_out = ob.type == T_BIN;
            x->out = off;
            x->out_n = x->has_out ? (uint32_t)ob.n : 0;
            break;
        case 7:
            x->has_status = ob.type == T_NIL ? 0 : ob.big ? 2 : 1;
            x->status = ob.type == T_INT && !ob.big ? ob.iv : 0;
            break;
        default:
            break;
        }
    }
    if (rd_header(r, &ob) != RD_OK || ob.type != T_BIN || ob.n != 32) return RD_IRREGULAR;
    x->hash = (uint32_t)(r->p - base);
    r->p += 32;
    return RD_OK;
}

typedef struct {
    PyObject_HEAD
    PyObject *data;   /* the segment's bytes */
    int64_t first_seq;
    Py_ssize_t count;
    RecIdx *idx;
} LazySegment;

static void lseg_dealloc(LazySegment *self)
{
    Py_XDECREF(self->data);
    PyMem_Free(self->idx);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject LazySegmentType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "packr_replay.storage._speedups.LazySegment",
    .tp_basicsize = sizeof(LazySegment),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A checked segment whose records are built on first use.",
    .tp_dealloc = (destructor)lseg_dealloc,
};

typedef struct {
    PyObject_HEAD
    LazySegment *seg;
    Py_ssize_t i;
    PyObject *record;  /* (fields, digest), once built */
} LazyRecord;

static void lrec_dealloc(LazyRecord *self)
{
    Py_XDECREF(self->seg);
    Py_XDECREF(self->record);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *lrec_built(LazyRecord *self)
{
    if (self->record == NULL) {
        LazySegment *seg = self->seg;
        const uint8_t *base = (const uint8_t *)PyBytes_AS_STRING(seg->data);
        Rd r;
        memset(&r, 0, sizeof r);
        r.p = base + seg->idx[self->i].start;
        r.end = base + PyBytes_GET_SIZE(seg->data);
        int rc = RD_OK;
        PyObject *record = rd_record(&r, seg->first_seq + self->i, &rc, NULL);
        for (int i = 0; i < 13; i++) Py_CLEAR(r.last_o[i]);
        if (record == NULL) {
            if (rc != RD_ERROR)  /* cannot happen: the record was scanned */
                PyErr_SetString(PyExc_SystemError, "a checked record did not decode");
            return NULL;
        }
        self->record = record;
    }
    return self->record;
}

static Py_ssize_t lrec_len(PyObject *self) { return 2; }

static PyObject *lrec_item(PyObject *self, Py_ssize_t i)
{
    if (i < 0 || i > 1) {
        PyErr_SetString(PyExc_IndexError, "a record is (fields, digest)");
        return NULL;
    }
    PyObject *record = lrec_built((LazyRecord *)self);
    if (record == NULL) return NULL;
    return Py_NewRef(PyTuple_GET_ITEM(record, i));
}

static PyObject *lrec_iter(PyObject *self)
{
    PyObject *record = lrec_built((LazyRecord *)self);
    return record == NULL ? NULL : PyObject_GetIter(record);
}

static PyObject *lrec_richcompare(PyObject *a, PyObject *b, int op)
{
    PyObject *ra = lrec_built((LazyRecord *)a);
    if (ra == NULL) return NULL;
    if (PyObject_TypeCheck(b, Py_TYPE(a))) {
        b = lrec_built((LazyRecord *)b);
        if (b == NULL) return NULL;
    }
    return PyObject_RichCompare(ra, b, op);
}

static PyObject *lrec_repr(PyObject *self)
{
    PyObject *record = lrec_built((LazyRecord *)self);
    return record == NULL ? NULL : PyObject_Repr(record);
}

static PySequenceMethods lrec_seq = {
    .sq_length = lrec_len,
    .sq_item = lrec_item,
};

static PyTypeObject LazyRecordType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "packr_replay.storage._speedups.LazyRecord",
    .tp_basicsize = sizeof(LazyRecord),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A (fields, digest) record of a checked segment, built on first use.",
    .tp_dealloc = (destructor)lrec_dealloc,
    .tp_as_sequence = &lrec_seq,
    .tp_iter = lrec_iter,
    .tp_richcompare = lrec_richcompare,
    .tp_repr = lrec_repr,
    .tp_hash = PyObject_HashNotImplemented,
};

/* What C code may read of a LazyRecord without building it (record_view's struct; the
 * runtime's trampoline declares the same, under the capsule name's version). */
typedef struct {
    const char *kind, *outcome;  /* ASCII names */
    Py_ssize_t kind_len, outcome_len;
    const char *iface, *fn;
    const uint8_t *input, *output;
    Py_ssize_t iface_len, fn_len, input_len, output_len;
    int has_input, has_output, has_status;  /* has_status 2: an int outside int64 */
    int64_t status;
} RecordView;

static int record_view(PyObject *o, RecordView *v)
{
    if (Py_TYPE(o) != &LazyRecordType) return 0;
    LazyRecord *rec = (LazyRecord *)o;
    const RecIdx *x = &rec->seg->idx[rec->i];
    const uint8_t *base = (const uint8_t *)PyBytes_AS_STRING(rec->seg->data);
    v->kind = (const char *)PyUnicode_DATA(C.kinds[x->kind]);
    v->kind_len = PyUnicode_GET_LENGTH(C.kinds[x->kind]);
    v->outcome = (const char *)PyUnicode_DATA(C.outcomes[x->outcome]);
    v->outcome_len = PyUnicode_GET_LENGTH(C.outcomes[x->outcome]);
    v->iface = (const char *)base + x->iface;
    v->iface_len = x->iface_n;
    v->fn = (const char *)base + x->fn;
    v->fn_len = x->fn_n;
    v->input = base + x->in;
    v->input_len = x->in_n;
    v->has_input = x->has_in;
    v->output = base + x->out;
    v->output_len = x->out_n;
    v->has_output = x->has_out;
    v->has_status = x->has_status;
    v->status = x->status;
    return 1;
}

PyDoc_STRVAR(decode_segment_lazy_doc,
"decode_segment_lazy($module, data, first_seq, count, prev, trace_id=None, /)\n--\n\n"
"decode_segment's records, checked the same way but built only when used: a list of\n"
"LazyRecord, or (for any segment it would not decode whole) decode_segment's result.");

static PyObject *sp_decode_segment_lazy(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (ensure_ready(C.decode_ready) < 0) return NULL;
    if (nargs < 4 || nargs > 5) {
        PyErr_Format(PyExc_TypeError, "decode_segment_lazy expected 4 or 5 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *data = args[0];
    int o1 = 1, o2 = 1;
    long long first = EXACT_INT(args[1]) ? PyLong_AsLongLongAndOverflow(args[1], &o1) : 0;
    if (first == -1 && PyErr_Occurred()) return NULL;
    long long count = EXACT_INT(args[2]) ? PyLong_AsLongLongAndOverflow(args[2], &o2) : 0;
    if (count == -1 && PyErr_Occurred()) return NULL;
    if (!PyBytes_CheckExact(data) || PyBytes_GET_SIZE(data) > 0xFFFFFFF0LL || o1 || o2 ||
        first < 0 || count <= 0 || first > ((long long)1 << 62) ||
        count > PyBytes_GET_SIZE(data) / 48 || !PyBytes_CheckExact(args[3]) ||
        PyBytes_GET_SIZE(args[3]) != 32)
        return sp_decode_segment(mod, args, nargs);
    RecIdx *idx = PyMem_Calloc((size_t)count, sizeof(RecIdx));
    if (idx == NULL) return PyErr_NoMemory();
    const uint8_t *base = (const uint8_t *)PyBytes_AS_STRING(data);
    Rd r;
    memset(&r, 0, sizeof r);
    r.p = base;
    r.end = base + PyBytes_GET_SIZE(data);
    int ok = 1;
    const uint8_t *prev = (const uint8_t *)PyBytes_AS_STRING(args[3]);
    /* Scanning and hashing touch only data (immutable, referenced by args) and the
     * configured names (immutable): the GIL is released for both. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; ok && i < (Py_ssize_t)count; i++)
        ok = scan_record(&r, base, (int64_t)first + i, &idx[i]) == RD_OK;
    ok = ok && r.p == r.end;
    if (ok) {
        for (Py_ssize_t i = 0; ok && i < (Py_ssize_t)count; i++) {
            uint8_t h[32];
            SHA256_CTX ctx;
            SHA256_Init(&ctx);
            SHA256_Update(&ctx, prev, 32);
            SHA256_Update(&ctx, base + idx[i].start, (size_t)(idx[i].hash - 2 - idx[i].start));
            SHA256_Final(h, &ctx);
            prev = base + idx[i].hash;
            ok = memcmp(h, prev, 32) == 0;
        }
    }
    Py_END_ALLOW_THREADS
    if (!ok) {  /* decode_segment says what is wrong, and where */
        PyMem_Free(idx);
        return sp_decode_segment(mod, args, nargs);
    }
    LazySegment *seg = PyObject_New(LazySegment, &LazySegmentType);
    if (seg == NULL) {
        PyMem_Free(idx);
        return NULL;
    }
    seg->data = Py_NewRef(data);
    seg->first_seq = (int64_t)first;
    seg->count = (Py_ssize_t)count;
    seg->idx = idx;
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (list == NULL) {
        Py_DECREF(seg);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)count; i++) {
        LazyRecord *rec = PyObject_New(LazyRecord, &LazyRecordType);
        if (rec == NULL) {
            Py_DECREF(list);
            Py_DECREF(seg);
            return NULL;
        }
        rec->seg = (LazySegment *)Py_NewRef(seg);
        rec->i = i;
        rec->record = NULL;
        PyList_SET_ITEM(list, i, (PyObject *)rec);
    }
    Py_DECREF(seg);
    return list;
}

/* ------------------------------------------------------------------------ configure */

static int take_names(PyObject *cfg, const char *key, PyObject **names, int cap, int *count)
{
    PyObject *seq = PyDict_GetItemString(cfg, key);
    if (seq == NULL || !PyTuple_CheckExact(seq) || PyTuple_GET_SIZE(seq) > cap) {
        PyErr_Format(PyExc_TypeError, "configure: %s must be a tuple of at most %d names", key, cap);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        PyObject *name = PyTuple_GET_ITEM(seq, i);
        if (!EXACT_STR(name) || !PyUnicode_IS_COMPACT_ASCII(name)) {
            PyErr_Format(PyExc_TypeError, "configure: %s holds a non-ASCII or non-str name", key);
            return -1;
        }
    }
    for (int i = 0; i < *count; i++) Py_CLEAR(names[i]);
    *count = (int)PyTuple_GET_SIZE(seq);
    for (int i = 0; i < *count; i++) names[i] = Py_NewRef(PyTuple_GET_ITEM(seq, i));
    return 0;
}

PyDoc_STRVAR(configure_doc,
"configure($module, config, /)\n--\n\n"
"Give the accelerator what it checks against and what it defers to; keys may come in\n"
"several calls. Decoding needs kinds, outcomes, enums, max_str_len and\n"
"py_decode_segment; packing also needs py_pack_row, py_pack_chain and py_pack_rows.");

static PyObject *sp_configure(PyObject *mod, PyObject *cfg)
{
    if (!PyDict_Check(cfg)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    static const char *const fns[] = {"py_pack_row", "py_pack_chain", "py_pack_rows",
                                      "py_decode_segment"};
    PyObject **slots[] = {&C.py_pack_row, &C.py_pack_chain, &C.py_pack_rows,
                          &C.py_decode_segment};
    for (int i = 0; i < 4; i++) {
        PyObject *fn = PyDict_GetItemString(cfg, fns[i]);
        if (fn != NULL && !PyCallable_Check(fn)) {
            PyErr_Format(PyExc_TypeError, "configure: %s must be callable", fns[i]);
            return NULL;
        }
    }
    PyObject *enums = PyDict_GetItemString(cfg, "enums");
    if (enums != NULL) {
        if (!PyTuple_CheckExact(enums) || PyTuple_GET_SIZE(enums) != NENUMS) {
            PyErr_SetString(PyExc_TypeError, "configure: enums must be (EventKind, Outcome)");
            return NULL;
        }
        for (int i = 0; i < NENUMS; i++) {
            PyObject *t = PyTuple_GET_ITEM(enums, i);
            if (!PyType_Check(t) || !PyType_IsSubtype((PyTypeObject *)t, &PyUnicode_Type)) {
                PyErr_SetString(PyExc_TypeError, "configure: enums must be str subclasses");
                return NULL;
            }
        }
    }
    PyObject *max_str = PyDict_GetItemString(cfg, "max_str_len");
    Py_ssize_t ms = -1;
    if (max_str != NULL) {
        ms = EXACT_INT(max_str) ? PyLong_AsSsize_t(max_str) : -1;
        if (ms < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "configure: max_str_len must be an int >= 0");
            return NULL;
        }
    }
    if ((PyDict_GetItemString(cfg, "kinds") != NULL &&
         take_names(cfg, "kinds", C.kinds, NKINDS, &C.nkinds) < 0) ||
        (PyDict_GetItemString(cfg, "outcomes") != NULL &&
         take_names(cfg, "outcomes", C.outcomes, NOUTCOMES, &C.noutcomes) < 0))
        return NULL;
    for (int i = 0; i < 4; i++) {
        PyObject *fn = PyDict_GetItemString(cfg, fns[i]);
        if (fn != NULL) {
            Py_INCREF(fn);
            Py_XSETREF(*slots[i], fn);
        }
    }
    if (enums != NULL) {
        for (int i = 0; i < NENUMS; i++) {
            PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(enums, i);
            Py_INCREF(t);
            Py_XSETREF(C.enums[i], t);
        }
    }
    if (max_str != NULL) C.max_str = ms;
    int names = C.nkinds > 0 && C.noutcomes > 0 && C.enums[0] != NULL && C.max_str > 0;
    C.decode_ready = names && C.py_decode_segment != NULL;
    C.pack_ready = names && C.py_pack_row != NULL && C.py_pack_chain != NULL &&
                   C.py_pack_rows != NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pack_chain", (PyCFunction)(void (*)(void))sp_pack_chain, METH_FASTCALL, pack_chain_doc},
    {"pack_rows", (PyCFunction)(void (*)(void))sp_pack_rows, METH_FASTCALL, pack_rows_doc},
    {"hash_records", (PyCFunction)(void (*)(void))sp_hash_records, METH_FASTCALL,
     hash_records_doc},
    {"decode_segment", (PyCFunction)(void (*)(void))sp_decode_segment, METH_FASTCALL,
     decode_segment_doc},
    {"decode_segment_lazy", (PyCFunction)(void (*)(void))sp_decode_segment_lazy, METH_FASTCALL,
     decode_segment_lazy_doc},
    {"configure", sp_configure, METH_O, configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "C accelerator for packr_replay.storage's segment record codec (see _speedups.c).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    if (PyType_Ready(&LazySegmentType) < 0 || PyType_Ready(&LazyRecordType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    /* record_view for C readers of LazyRecords (the version is in the name). */
    PyObject *view = PyCapsule_New((void *)record_view, "packr_replay.record_view.v1", NULL);
    if (view == NULL || PyModule_AddObject(m, "RECORD_VIEW", view) < 0) {
        Py_XDECREF(view);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&LazyRecordType);
    if (PyModule_AddObject(m, "LazyRecord", (PyObject *)&LazyRecordType) < 0) {
        Py_DECREF(&LazyRecordType);
        Py_DECREF(m);
        return NULL;
    }
    /* Bumped whenever chain.py/codec.py change a rule this file must follow: _accel
     * refuses a build whose number it does not expect (a stale editable build). */
    if (m != NULL && PyModule_AddIntConstant(m, "CONTRACT", 3) < 0)
        Py_CLEAR(m);
    return m;
}
