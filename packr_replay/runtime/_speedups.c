/*
 * _speedups: the native call path of packr_replay.runtime.
 *
 * packr's typed imports (i32 in_ptr, i32 in_len, i32 out_ptr_ptr, i32 out_len_ptr) -> i32
 * are registered with wasmtime's C API directly (wasmtime_linker_define_func_unchecked,
 * through the libwasmtime that wasmtime-py loaded; configure() hands over the function
 * addresses). The trampoline below then serves a call without any Python frame:
 *
 *   replay  a ReplayFeed holds the next recorded imports (pointers into the replayer's
 *           decoded records); a call that matches the next one (interface, function,
 *           exact input bytes) gets the recorded reply and status written into guest
 *           memory, without taking the GIL;
 *   live    the input bytes are read, decoded, given to the Python handler once (the
 *           GIL is taken for that only), and the encoded reply is written back;
 *   record  the same, and the event is appended to the recorder's pending rows (a
 *           RecordLog), drained into the trace in batches.
 *
 * Contract: exactly what the Python path does (imports.py, ImportDispatch._handle_import).
 * The C code handles the ordinary case only. Anything else is handed to Python before
 * it has any effect: a call the C code cannot serve goes to the Python path whole
 * (`fallback`, the same function the pure path registers), a failure after the
 * handler ran goes to `failed` (which reports it exactly as the Python path does), and
 * a reply the scratch buffer cannot take goes to `write`. So every error, report and
 * divergence is produced in one place (Python).
 *
 * Memory safety: every guest pointer is an untrusted u32, checked against the memory's
 * size read through the caller on every call (memory can grow between and during
 * calls; its base is re-read after any Python code ran). Trace bytes are only compared
 * and copied, with their lengths from the objects that hold them. No Python exception
 * ever leaves a wasmtime callback: one raised by Python code is parked (fastcall's
 * per-thread slot, re-raised out of the export call) and the guest unwinds with a trap.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* --------------------------------------------------------------- wasmtime C API */

typedef struct wasmtime_caller wasmtime_caller_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasm_functype_t wasm_functype_t;
typedef struct wasmtime_error wasmtime_error_t;

typedef union {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    uint8_t v128[16];
} wasmtime_val_raw_t;

/* wasmtime_memory_t: {{u64 store_id, u32}, u32}, 24 bytes; only ever passed back. */
typedef struct {
    uint64_t words[3];
} wasmtime_memory_t;

typedef wasm_trap_t *(*unchecked_cb_t)(void *, wasmtime_caller_t *, wasmtime_val_raw_t *, size_t);

static struct {
    wasmtime_context_t *(*caller_context)(wasmtime_caller_t *);
    uint8_t *(*memory_data)(const wasmtime_context_t *, const wasmtime_memory_t *);
    size_t (*memory_data_size)(const wasmtime_context_t *, const wasmtime_memory_t *);
    wasm_trap_t *(*trap_new)(const char *, size_t);
    wasmtime_error_t *(*define_unchecked)(wasmtime_linker_t *, const char *, size_t, const char *,
                                          size_t, const wasm_functype_t *, unchecked_cb_t, void *,
                                          void (*)(void *));
    PyObject *decode, *encode;  /* packr_replay.abi's */
    PyObject *trap;             /* fastcall._trap(exc) -> address of a trap */
    uint64_t max_input;         /* the largest import input read (imports.py's _MAX_INPUT) */
    int ready;
} C;

/* packr's layout (memory.py). */
#define SCRATCH_OFFSET 16392u

enum { M_PYTHON = 0, M_LIVE = 1, M_RECORD = 2, M_REPLAY = 3 };
enum { STAGE_DECODE = 0, STAGE_CALL = 1, STAGE_ENCODE = 2 };

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline int64_t now_ns(void)  /* time.perf_counter_ns()'s clock on Linux */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------- ReplayFeed */

/* One recorded import the trampoline may serve: names, input and reply point into the
 * str/bytes objects of a record the feed holds a reference to. */
typedef struct {
    const char *iface, *name;
    const uint8_t *input, *output;
    Py_ssize_t iface_len, name_len, input_len, output_len;
    int32_t status;
    int has_status;  /* 0: the recorded status was None (the instance's default) */
} Entry;

/* What the storage accelerator lets C code read of one of its lazily built records
 * (storage/_speedups.c's RecordView, capsule "packr_replay.record_view.v1"). */
typedef struct {
    const char *kind, *outcome;
    Py_ssize_t kind_len, outcome_len;
    const char *iface, *fn;
    const uint8_t *input, *output;
    Py_ssize_t iface_len, fn_len, input_len, output_len;
    int has_input, has_output, has_status;  /* has_status 2: an int outside int64 */
    int64_t status;
} RecordView;

typedef int (*record_view_fn)(PyObject *, RecordView *);

typedef struct {
    PyObject_HEAD
    Entry *entries;
    Py_ssize_t count, next, cap;
    PyObject *held;         /* list: the records the entries point into */
    PyObject *kind_import;  /* the kind and outcome names a servable record has */
    PyObject *outcome_ok;
    PyObject *refill;       /* callable: sync the replayer and load() what follows */
    record_view_fn view;    /* reads a lazily built record's fields, or NULL */
    uint64_t served;        /* total served by C since creation (progress) */
} ReplayFeed;

static int feed_traverse(ReplayFeed *self, visitproc visit, void *arg)
{
    Py_VISIT(self->held);
    Py_VISIT(self->kind_import);
    Py_VISIT(self->outcome_ok);
    Py_VISIT(self->refill);
    return 0;
}

static int feed_clear(ReplayFeed *self)
{
    self->count = self->next = 0;
    Py_CLEAR(self->held);
    Py_CLEAR(self->kind_import);
    Py_CLEAR(self->outcome_ok);
    Py_CLEAR(self->refill);
    return 0;
}

static void feed_dealloc(ReplayFeed *self)
{
    PyObject_GC_UnTrack(self);
    feed_clear(self);
    PyMem_Free(self->entries);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int feed_init(ReplayFeed *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kind_import", "outcome_ok", "refill", "view", NULL};
    PyObject *kind, *ok, *refill, *view = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UUO|O:ReplayFeed", kwlist, &kind, &ok, &refill,
                                     &view))
        return -1;
    if (!PyCallable_Check(refill)) {
        PyErr_SetString(PyExc_TypeError, "ReplayFeed: refill must be callable");
        return -1;
    }
    self->view = NULL;
    if (view != Py_None) {
        self->view = (record_view_fn)PyCapsule_GetPointer(view, "packr_replay.record_view.v1");
        if (self->view == NULL) return -1;
    }
    Py_INCREF(kind); Py_XSETREF(self->kind_import, kind);
    Py_INCREF(ok); Py_XSETREF(self->outcome_ok, ok);
    Py_INCREF(refill); Py_XSETREF(self->refill, refill);
    return 0;
}

static inline int str_is(PyObject *o, PyObject *want)
{
    if (o == want) return 1;
    return PyUnicode_CheckExact(o) && PyUnicode_Compare(o, want) == 0;
}

/* Fill `e` from a record `(fields, hash)` if the trampoline can serve it as recorded:
 * an import that succeeded, str names, bytes input, bytes-or-None output and an int32
 * or None status. 0 (not servable) otherwise; never raises. */
static inline int name_is(const char *p, Py_ssize_t n, PyObject *want)
{
    Py_ssize_t wn;
    const char *w = PyUnicode_AsUTF8AndSize(want, &wn);
    return w != NULL && wn == n && memcmp(w, p, (size_t)n) == 0;
}

/* The same from a record the storage accelerator has not built (its RecordView). */
static int entry_from_view(ReplayFeed *self, PyObject *rec, Entry *e)
{
    RecordView v;
    if (self->view == NULL || !self->view(rec, &v)) return 0;
    if (!name_is(v.kind, v.kind_len, self->kind_import) ||
        !name_is(v.outcome, v.outcome_len, self->outcome_ok) || !v.has_input)
        return 0;
    if (v.has_status == 2 || (v.has_status && (v.status < INT32_MIN || v.status > INT32_MAX)))
        return 0;
    e->iface = v.iface;
    e->iface_len = v.iface_len;
    e->name = v.fn;
    e->name_len = v.fn_len;
    e->input = v.input;
    e->input_len = v.input_len;
    e->output = v.has_output ? v.output : (const uint8_t *)"";
    e->output_len = v.has_output ? v.output_len : 0;
    e->has_status = v.has_status != 0;
    e->status = (int32_t)v.status;
    return 1;
}

static int entry_from(ReplayFeed *self, PyObject *rec, Entry *e)
{
    if (!PyTuple_Check(rec)) return entry_from_view(self, rec, e);
    if (PyTuple_GET_SIZE(rec) < 1) return 0;
    PyObject *f = PyTuple_GET_ITEM(rec, 0);
    if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 13) return 0;
    PyObject *kind = PyTuple_GET_ITEM(f, 2), *iface = PyTuple_GET_ITEM(f, 3);
    PyObject *fn = PyTuple_GET_ITEM(f, 4), *in = PyTuple_GET_ITEM(f, 5);
    PyObject *out = PyTuple_GET_ITEM(f, 6), *status = PyTuple_GET_ITEM(f, 7);
    PyObject *outcome = PyTuple_GET_ITEM(f, 8);
    if (!PyUnicode_Check(kind) || !str_is(kind, self->kind_import)) return 0;
    if (!PyUnicode_Check(outcome) || !str_is(outcome, self->outcome_ok)) return 0;
    if (!PyUnicode_CheckExact(iface) || !PyUnicode_CheckExact(fn) || !PyBytes_CheckExact(in))
        return 0;
    if (out != Py_None && !PyBytes_CheckExact(out)) return 0;
    e->iface = PyUnicode_AsUTF8AndSize(iface, &e->iface_len);
    e->name = e->iface ? PyUnicode_AsUTF8AndSize(fn, &e->name_len) : NULL;
    if (e->name == NULL) {  /* a lone surrogate: the Python path compares it */
        PyErr_Clear();
        return 0;
    }
    e->input = (const uint8_t *)PyBytes_AS_STRING(in);
    e->input_len = PyBytes_GET_SIZE(in);
    if (out == Py_None) {
        e->output = (const uint8_t *)"";
        e->output_len = 0;
    } else {
        e->output = (const uint8_t *)PyBytes_AS_STRING(out);
        e->output_len = PyBytes_GET_SIZE(out);
    }
    if (status == Py_None) {
        e->has_status = 0;
        e->status = 0;
    } else {
        if (!PyLong_CheckExact(status)) return 0;
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(status, &overflow);
        if (overflow || v < INT32_MIN || v > INT32_MAX) {
            PyErr_Clear();
            return 0;
        }
        e->has_status = 1;
        e->status = (int32_t)v;
    }
    return 1;
}

PyDoc_STRVAR(feed_load_doc,
"load($self, records, start, /)\n--\n\n"
"Serve records[start:] natively, up to the first one C cannot serve as recorded;\n"
"returns how many. Whatever was loaded before is dropped (take() it first).");

static PyObject *feed_load(ReplayFeed *self, PyObject *args)
{
    PyObject *records;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!n:load", &PyList_Type, &records, &start)) return NULL;
    self->count = self->next = 0;
    Py_CLEAR(self->held);
    Py_ssize_t total = PyList_GET_SIZE(records);
    if (start < 0 || start >= total) return PyLong_FromLong(0);
    PyObject *held = PyList_GetSlice(records, start, total);
    if (held == NULL) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(held);
    if (n > self->cap) {
        Entry *grown = PyMem_Realloc(self->entries, (size_t)n * sizeof(Entry));
        if (grown == NULL) {
            Py_DECREF(held);
            return PyErr_NoMemory();
        }
        self->entries = grown;
        self->cap = n;
    }
    Py_ssize_t i = 0;
    while (i < n && entry_from(self, PyList_GET_ITEM(held, i), &self->entries[i])) i++;
    self->held = held;
    self->count = i;
    return PyLong_FromSsize_t(i);
}

PyDoc_STRVAR(feed_take_doc,
"take($self, /)\n--\n\n"
"How many loaded records C served since load(); drops the rest.");

static PyObject *feed_take(ReplayFeed *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t served = self->next;
    self->count = self->next = 0;
    Py_CLEAR(self->held);
    return PyLong_FromSsize_t(served);
}

static PyObject *feed_get_pending(ReplayFeed *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->next);  /* served since load(), not yet taken */
}

static PyObject *feed_get_served(ReplayFeed *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->served);
}

static PyMethodDef feed_methods[] = {
    {"load", (PyCFunction)feed_load, METH_VARARGS, feed_load_doc},
    {"take", (PyCFunction)feed_take, METH_NOARGS, feed_take_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef feed_getset[] = {
    {"pending", (getter)feed_get_pending, NULL, "records served since load(), not yet taken", NULL},
    {"served", (getter)feed_get_served, NULL, "records served by C in all (a progress counter)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ReplayFeedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "packr_replay.runtime._speedups.ReplayFeed",
    .tp_basicsize = sizeof(ReplayFeed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The next recorded imports, served by the trampoline without Python.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)feed_init,
    .tp_dealloc = (destructor)feed_dealloc,
    .tp_traverse = (traverseproc)feed_traverse,
    .tp_clear = (inquiry)feed_clear,
    .tp_methods = feed_methods,
    .tp_getset = feed_getset,
};

/* -------------------------------------------------------------------- RecordLog */

typedef struct {
    PyObject_HEAD
    PyObject *pending;   /* list: the recorder's rows waiting for its sink */
    PyObject *stack;     /* list: the recorder's export-call numbers (innermost last) */
    PyObject *drain;     /* callable: hand pending rows to the sink */
    PyObject *kind_import, *outcome_ok;
    Py_ssize_t batch;
    int64_t delay_ns, deadline_ns;
} RecordLog;

static int log_traverse(RecordLog *self, visitproc visit, void *arg)
{
    Py_VISIT(self->pending);
    Py_VISIT(self->stack);
    Py_VISIT(self->drain);
    Py_VISIT(self->kind_import);
    Py_VISIT(self->outcome_ok);
    return 0;
}

static int log_clear(RecordLog *self)
{
    Py_CLEAR(self->pending);
    Py_CLEAR(self->stack);
    Py_CLEAR(self->drain);
    Py_CLEAR(self->kind_import);
    Py_CLEAR(self->outcome_ok);
    return 0;
}

static void log_dealloc(RecordLog *self)
{
    PyObject_GC_UnTrack(self);
    log_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int log_init(RecordLog *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pending", "stack", "drain", "batch", "max_delay",
                             "kind_import", "outcome_ok", NULL};
    PyObject *pending, *stack, *drain, *kind, *ok;
    Py_ssize_t batch;
    double delay;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OndUU:RecordLog", kwlist, &PyList_Type,
                                     &pending, &PyList_Type, &stack, &drain, &batch, &delay,
                                     &kind, &ok))
        return -1;
    if (!PyCallable_Check(drain)) {
        PyErr_SetString(PyExc_TypeError, "RecordLog: drain must be callable");
        return -1;
    }
    if (batch < 1 || !(delay >= 0) || delay > 1e9) {
        PyErr_SetString(PyExc_ValueError, "RecordLog: batch must be >= 1, max_delay >= 0");
        return -1;
    }
    Py_INCREF(pending); Py_XSETREF(self->pending, pending);
    Py_INCREF(stack); Py_XSETREF(self->stack, stack);
    Py_INCREF(drain); Py_XSETREF(self->drain, drain);
    Py_INCREF(kind); Py_XSETREF(self->kind_import, kind);
    Py_INCREF(ok); Py_XSETREF(self->outcome_ok, ok);
    self->batch = batch;
    self->delay_ns = (int64_t)(delay * 1e9);
    self->deadline_ns = now_ns() + self->delay_ns;
    return 0;
}

static PyTypeObject RecordLogType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "packr_replay.runtime._speedups.RecordLog",
    .tp_basicsize = sizeof(RecordLog),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Where the trampoline appends recorded imports: the recorder's own rows.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)log_init,
    .tp_dealloc = (destructor)log_dealloc,
    .tp_traverse = (traverseproc)log_traverse,
    .tp_clear = (inquiry)log_clear,
};

/* -------------------------------------------------------------------------- Host */

/* One per instance: the guest memory and how the instance's imports are served now. */
typedef struct {
    PyObject_HEAD
    int mode;
    int has_memory;
    int guest_alloc;      /* ReplyMode.GUEST_ALLOC: replies go through __pack_alloc (Python) */
    int64_t scratch_cap;  /* < 0: no cap */
    wasmtime_memory_t memory;
    ReplayFeed *feed;     /* M_REPLAY */
    RecordLog *log;       /* M_RECORD */
    uint64_t native, python;  /* calls served in C / handed to Python's path whole */
} Host;

static int host_traverse(Host *self, visitproc visit, void *arg)
{
    Py_VISIT(self->feed);
    Py_VISIT(self->log);
    return 0;
}

static int host_clear(Host *self)
{
    self->mode = M_PYTHON;
    Py_CLEAR(self->feed);
    Py_CLEAR(self->log);
    return 0;
}

static void host_dealloc(Host *self)
{
    PyObject_GC_UnTrack(self);
    host_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(host_configure_doc,
"configure($self, mode, server, guest_alloc, scratch_cap, /)\n--\n\n"
"How imports are served from now on: mode 0 Python, 1 live, 2 record (server is a\n"
"RecordLog), 3 replay (server is a ReplayFeed).");

static PyObject *host_configure(Host *self, PyObject *args)
{
    int mode, guest_alloc;
    PyObject *server, *cap;
    if (!PyArg_ParseTuple(args, "iOpO:configure", &mode, &server, &guest_alloc, &cap)) return NULL;
    if (mode < M_PYTHON || mode > M_REPLAY) {
        PyErr_SetString(PyExc_ValueError, "configure: unknown mode");
        return NULL;
    }
    if ((mode == M_REPLAY && !PyObject_TypeCheck(server, &ReplayFeedType)) ||
        (mode == M_RECORD && !PyObject_TypeCheck(server, &RecordLogType))) {
        PyErr_SetString(PyExc_TypeError, "configure: the server does not fit the mode");
        return NULL;
    }
    int64_t scratch_cap = -1;
    if (cap != Py_None) {
        long long v = PyLong_AsLongLong(cap);
        if (v == -1 && PyErr_Occurred()) return NULL;
        scratch_cap = v < 0 ? 0 : v;
    }
    Py_CLEAR(self->feed);
    Py_CLEAR(self->log);
    if (mode == M_REPLAY) {
        Py_INCREF(server);
        self->feed = (ReplayFeed *)server;
    } else if (mode == M_RECORD) {
        Py_INCREF(server);
        self->log = (RecordLog *)server;
    }
    self->guest_alloc = guest_alloc;
    self->scratch_cap = scratch_cap;
    self->mode = mode;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(host_set_memory_doc,
"set_memory($self, memory, /)\n--\n\n"
"The guest memory: the raw bytes of its wasmtime_memory_t, or None.");

static PyObject *host_set_memory(Host *self, PyObject *arg)
{
    if (arg == Py_None) {
        self->has_memory = 0;
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (view.len != (Py_ssize_t)sizeof(wasmtime_memory_t)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "set_memory: not a wasmtime_memory_t");
        return NULL;
    }
    memcpy(&self->memory, view.buf, sizeof(wasmtime_memory_t));
    PyBuffer_Release(&view);
    self->has_memory = 1;
    Py_RETURN_NONE;
}

static PyObject *host_get_mode(Host *self, void *Py_UNUSED(c)) { return PyLong_FromLong(self->mode); }

static PyObject *host_get_native(Host *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->native);
}

static PyObject *host_get_python(Host *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->python);
}

static PyMethodDef host_methods[] = {
    {"configure", (PyCFunction)host_configure, METH_VARARGS, host_configure_doc},
    {"set_memory", (PyCFunction)host_set_memory, METH_O, host_set_memory_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef host_getset[] = {
    {"mode", (getter)host_get_mode, NULL, "how imports are served (0 Python ... 3 replay)", NULL},
    {"native", (getter)host_get_native, NULL, "import calls served by the C path", NULL},
    {"python", (getter)host_get_python, NULL, "import calls handed to the Python path", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject HostType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "packr_replay.runtime._speedups.Host",
    .tp_basicsize = sizeof(Host),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An instance's guest memory and how its typed imports are served.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)host_dealloc,
    .tp_traverse = (traverseproc)host_traverse,
    .tp_clear = (inquiry)host_clear,
    .tp_methods = host_methods,
    .tp_getset = host_getset,
};

/* ------------------------------------------------------------------ TypedImport */

typedef struct TypedImport TypedImport;

/* What wasmtime holds as the callback's env: it outlives neither owner. The
 * TypedImport (owned by the instance) and wasmtime (until the store and linker drop
 * the function) each hold one reference; whichever lets go last frees it. */
typedef struct {
    TypedImport *ti;  /* NULL once the TypedImport is gone */
    int refs;         /* atomic */
} Env;

static void env_release(Env *env)
{
    if (__atomic_sub_fetch(&env->refs, 1, __ATOMIC_ACQ_REL) == 0) PyMem_RawFree(env);
}

static void env_finalize(void *p)  /* wasmtime's finalizer: may run without the GIL */
{
    env_release((Env *)p);
}

struct TypedImport {
    PyObject_HEAD
    Host *host;
    PyObject *fallback;  /* (in_ptr, in_len, out_pp, out_lp) -> status: the Python path */
    PyObject *call;      /* (ctx, value) -> Value: the handler */
    PyObject *ctx;
    PyObject *failed;    /* (stage, data, value, exc, t0) -> status: report a failure */
    PyObject *write;     /* (data, value, out, out_pp, out_lp, t0) -> status: a slow reply */
    PyObject *iface, *name;
    const char *iface_u8, *name_u8;
    Py_ssize_t iface_len, name_len;
    Env *env;
};

static int ti_traverse(TypedImport *self, visitproc visit, void *arg)
{
    Py_VISIT(self->host);
    Py_VISIT(self->fallback);
    Py_VISIT(self->call);
    Py_VISIT(self->ctx);
    Py_VISIT(self->failed);
    Py_VISIT(self->write);
    Py_VISIT(self->iface);
    Py_VISIT(self->name);
    return 0;
}

static int ti_clear(TypedImport *self)
{
    Py_CLEAR(self->host);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->call);
    Py_CLEAR(self->ctx);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->write);
    Py_CLEAR(self->iface);
    Py_CLEAR(self->name);
    return 0;
}

static void ti_dealloc(TypedImport *self)
{
    PyObject_GC_UnTrack(self);
    if (self->env != NULL) {
        __atomic_store_n(&self->env->ti, NULL, __ATOMIC_RELEASE);
        env_release(self->env);
        self->env = NULL;
    }
    ti_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ti_init(TypedImport *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"host", "interface", "function", "fallback", "call", "ctx",
                             "failed", "write", NULL};
    PyObject *host, *iface, *name, *fallback, *call, *ctx, *failed, *write;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!UUOOOOO:TypedImport", kwlist, &HostType,
                                     &host, &iface, &name, &fallback, &call, &ctx, &failed,
                                     &write))
        return -1;
    if (!PyCallable_Check(fallback) || !PyCallable_Check(call) || !PyCallable_Check(failed) ||
        !PyCallable_Check(write)) {
        PyErr_SetString(PyExc_TypeError, "TypedImport: fallback, call, failed, write must be callable");
        return -1;
    }
    Py_ssize_t il, nl;
    const char *iu = PyUnicode_AsUTF8AndSize(iface, &il);
    if (iu == NULL) return -1;
    const char *nu = PyUnicode_AsUTF8AndSize(name, &nl);
    if (nu == NULL) return -1;
    if (self->env == NULL) {
        self->env = PyMem_RawMalloc(sizeof(Env));
        if (self->env == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->env->refs = 1;
    }
    self->env->ti = self;
#define SET(field, value) do { Py_INCREF(value); Py_XSETREF(self->field, value); } while (0)
    SET(host, (Host *)host);
    SET(iface, iface);
    SET(name, name);
    SET(fallback, fallback);
    SET(call, call);
    SET(ctx, ctx);
    SET(failed, failed);
    SET(write, write);
#undef SET
    self->iface_u8 = iu;
    self->iface_len = il;
    self->name_u8 = nu;
    self->name_len = nl;
    return 0;
}

static PyTypeObject TypedImportType;

/* ------------------------------------------------------------------- trampoline */

/* Park the pending Python exception for the export call to re-raise, and return the
 * trap that unwinds the guest (fastcall._trap does both). Needs the GIL. */
static wasm_trap_t *park_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    wasm_trap_t *trap = NULL;
    if (value != NULL && C.trap != NULL) {
        PyObject *addr = PyObject_CallOneArg(C.trap, value);
        if (addr != NULL) {
            trap = (wasm_trap_t *)PyLong_AsVoidPtr(addr);
            Py_DECREF(addr);
        }
        if (PyErr_Occurred()) PyErr_Clear();
    }
    Py_XDECREF(value);
    if (trap == NULL) {
        static const char msg[] = "python exception in a host function";
        trap = C.trap_new(msg, sizeof msg - 1);
    }
    return trap;
}

/* A status returned by Python, as ctypes would store it in the i32 result slot. */
static int status_of(PyObject *result, int32_t *status)
{
    if (!PyLong_Check(result)) {
        PyErr_Format(PyExc_TypeError, "an import returned %.100s, not an int",
                     Py_TYPE(result)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLongMask(result);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    *status = (int32_t)(uint32_t)v;
    return 0;
}

/* Hand the whole call to the Python path (nothing has happened yet). GIL held. */
static wasm_trap_t *to_python(TypedImport *ti, wasmtime_val_raw_t *args)
{
    ti->host->python++;
    PyObject *a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = PyLong_FromLong(args[i].i32);
        if (a[i] == NULL) {
            for (int j = 0; j < i; j++) Py_DECREF(a[j]);
            return park_exception();
        }
    }
    PyObject *result = PyObject_Vectorcall(ti->fallback, a, 4, NULL);
    for (int i = 0; i < 4; i++) Py_DECREF(a[i]);
    if (result == NULL) return park_exception();
    int32_t status;
    int bad = status_of(result, &status);
    Py_DECREF(result);
    if (bad) return park_exception();
    args[0].i32 = status;
    return NULL;
}

/* Where guest memory is now (it may have grown, or been replaced by a store limit
 * failure, since the last look): base and size, or 0 when there is none. */
static inline size_t memory_now(Host *h, wasmtime_caller_t *caller, uint8_t **base)
{
    wasmtime_context_t *cx = C.caller_context(caller);
    *base = C.memory_data(cx, &h->memory);
    return C.memory_data_size(cx, &h->memory);
}

/* Write a scratch reply if everything is in bounds: 1 written, 0 not (Python's job). */
static inline int write_scratch(Host *h, uint8_t *base, size_t size, const uint8_t *out,
                                size_t n, uint32_t pp, uint32_t lp)
{
    if (h->scratch_cap >= 0 && (uint64_t)n > (uint64_t)h->scratch_cap) return 0;
    if ((uint64_t)SCRATCH_OFFSET + n > size || (uint64_t)pp + 4 > size || (uint64_t)lp + 4 > size)
        return 0;
    if (n) memmove(base + SCRATCH_OFFSET, out, n);
    wr32(base + pp, SCRATCH_OFFSET);
    wr32(base + lp, (uint32_t)n);
    return 1;
}

/* Replay: serve the next loaded record if it is this call. No GIL. 1 served. */
static inline int serve_replay(TypedImport *ti, ReplayFeed *feed, wasmtime_caller_t *caller,
                               wasmtime_val_raw_t *args)
{
    Host *h = ti->host;
    if (feed->next >= feed->count || !h->has_memory) return 0;
    const Entry *e = &feed->entries[feed->next];
    uint32_t in_ptr = (uint32_t)args[0].i32, in_len = (uint32_t)args[1].i32;
    uint32_t pp = (uint32_t)args[2].i32, lp = (uint32_t)args[3].i32;
    if ((Py_ssize_t)in_len != e->input_len || e->name_len != ti->name_len ||
        e->iface_len != ti->iface_len)
        return 0;
    int32_t status = e->has_status ? e->status : (h->guest_alloc ? 1 : 0);
    if (status == 1) return 0;  /* a guest-allocated reply: __pack_alloc runs (Python) */
    uint8_t *base;
    size_t size = memory_now(h, caller, &base);
    if ((uint64_t)in_ptr + in_len > size) return 0;
    if (memcmp(base + in_ptr, e->input, in_len) != 0 ||
        memcmp(ti->name_u8, e->name, (size_t)e->name_len) != 0 ||
        memcmp(ti->iface_u8, e->iface, (size_t)e->iface_len) != 0)
        return 0;
    if (!write_scratch(h, base, size, e->output, (size_t)e->output_len, pp, lp)) return 0;
    feed->next++;
    feed->served++;
    h->native++;
    args[0].i32 = status;
    return 1;
}

/* Append a recorded import to the recorder's rows, as Recorder._observe_import does;
 * drain them when the batch is full or the delay passed. -1 with an exception set. */
static int record_import(RecordLog *log, TypedImport *ti, PyObject *data, PyObject *out,
                         int32_t status, int64_t t0)
{
    int64_t t1 = now_ns();
    Py_ssize_t depth = PyList_GET_SIZE(log->stack);
    PyObject *call = depth ? PyList_GET_ITEM(log->stack, depth - 1) : NULL;
    PyObject *row = PyTuple_New(12);
    if (row == NULL) return -1;
    PyObject *v;
    if (call != NULL) {
        Py_INCREF(call);
    } else {
        call = PyLong_FromLong(0);
        if (call == NULL) goto fail;
    }
    PyTuple_SET_ITEM(row, 0, call);
    Py_INCREF(log->kind_import); PyTuple_SET_ITEM(row, 1, log->kind_import);
    Py_INCREF(ti->iface); PyTuple_SET_ITEM(row, 2, ti->iface);
    Py_INCREF(ti->name); PyTuple_SET_ITEM(row, 3, ti->name);
    Py_INCREF(data); PyTuple_SET_ITEM(row, 4, data);
    Py_INCREF(out); PyTuple_SET_ITEM(row, 5, out);
    if ((v = PyLong_FromLong(status)) == NULL) goto fail;
    PyTuple_SET_ITEM(row, 6, v);
    Py_INCREF(log->outcome_ok); PyTuple_SET_ITEM(row, 7, log->outcome_ok);
    Py_INCREF(Py_None); PyTuple_SET_ITEM(row, 8, Py_None);
    Py_INCREF(Py_None); PyTuple_SET_ITEM(row, 9, Py_None);
    if ((v = PyLong_FromLongLong(t1 - t0)) == NULL) goto fail;
    PyTuple_SET_ITEM(row, 10, v);
    if ((v = PyLong_FromSsize_t(depth)) == NULL) goto fail;
    PyTuple_SET_ITEM(row, 11, v);
    int rc = PyList_Append(log->pending, row);
    Py_DECREF(row);
    if (rc < 0) return -1;
    if (PyList_GET_SIZE(log->pending) >= log->batch || t1 >= log->deadline_ns) {
        log->deadline_ns = t1 + log->delay_ns;
        PyObject *r = PyObject_CallNoArgs(log->drain);
        if (r == NULL) return -1;
        Py_DECREF(r);
    }
    return 0;
fail:
    Py_DECREF(row);
    return -1;
}

static PyObject *new_int(int32_t v) { return PyLong_FromLong(v); }

static wasm_trap_t *trampoline(void *envp, wasmtime_caller_t *caller, wasmtime_val_raw_t *args,
                               size_t nargs)
{
    (void)nargs;  /* (i32, i32, i32, i32) -> i32: checked by wasmtime at link time */
    Env *env = envp;
    TypedImport *ti = __atomic_load_n(&env->ti, __ATOMIC_ACQUIRE);
    if (ti == NULL || ti->host == NULL) {
        static const char msg[] = "packr-replay: the instance of this import is gone";
        return C.trap_new(msg, sizeof msg - 1);
    }
    Host *h = ti->host;
    int mode = h->mode;
    if (mode == M_REPLAY && h->feed != NULL && serve_replay(ti, h->feed, caller, args)) return NULL;

    PyGILState_STATE gil = PyGILState_Ensure();
    wasm_trap_t *trap = NULL;
    if (ti->fallback == NULL) {  /* cleared by a garbage collection in progress */
        static const char msg[] = "packr-replay: the instance of this import is gone";
        trap = C.trap_new(msg, sizeof msg - 1);
        goto done;
    }
    if (mode == M_REPLAY) {
        /* Nothing loaded that fits: let the replayer sync and load what follows. */
        ReplayFeed *feed = h->feed;
        if (feed != NULL && feed->next >= feed->count) {
            Py_INCREF(feed);
            PyObject *r = PyObject_CallNoArgs(feed->refill);
            if (r == NULL) {
                Py_DECREF(feed);
                trap = park_exception();
                goto done;
            }
            Py_DECREF(r);
            int served = h->mode == M_REPLAY && h->feed == feed && serve_replay(ti, feed, caller, args);
            Py_DECREF(feed);
            if (served) goto done;
        }
        trap = to_python(ti, args);
        goto done;
    }
    if (mode != M_LIVE && mode != M_RECORD) {
        trap = to_python(ti, args);
        goto done;
    }

    /* live / record: read, decode, call, encode, write (imports.py's order). */
    uint32_t in_ptr = (uint32_t)args[0].i32, in_len = (uint32_t)args[1].i32;
    uint32_t pp = (uint32_t)args[2].i32, lp = (uint32_t)args[3].i32;
    if (!h->has_memory || in_len > C.max_input) {
        trap = to_python(ti, args);
        goto done;
    }
    int64_t t0 = mode == M_RECORD ? now_ns() : 0;
    uint8_t *base;
    size_t size = memory_now(h, caller, &base);
    if ((uint64_t)in_ptr + in_len > size) {
        trap = to_python(ti, args);  /* reports the unreadable input */
        goto done;
    }
    PyObject *data = PyBytes_FromStringAndSize((const char *)base + in_ptr, in_len);
    if (data == NULL) {
        trap = park_exception();
        goto done;
    }
    h->native++;
    PyObject *value = NULL, *result = NULL, *out = NULL, *status_obj = NULL;
    int stage = STAGE_DECODE;
    value = PyObject_CallOneArg(C.decode, data);
    if (value == NULL) goto failed;
    stage = STAGE_CALL;
    {
        PyObject *cargs[2] = {ti->ctx, value};
        result = PyObject_Vectorcall(ti->call, cargs, 2, NULL);
    }
    if (result == NULL) goto failed;
    stage = STAGE_ENCODE;
    out = PyObject_CallOneArg(C.encode, result);
    if (out == NULL) goto failed;
    if (!PyBytes_CheckExact(out)) {
        PyErr_SetString(PyExc_TypeError, "encode() did not return bytes");
        goto failed;
    }
    int32_t status;
    size = memory_now(h, caller, &base);  /* the handler may have grown it */
    if (!h->guest_alloc &&
        write_scratch(h, base, size, (const uint8_t *)PyBytes_AS_STRING(out),
                      (size_t)PyBytes_GET_SIZE(out), pp, lp)) {
        status = 0;
    } else {
        PyObject *t0o = PyLong_FromLongLong(t0), *ppo = new_int(args[2].i32), *lpo = new_int(args[3].i32);
        if (t0o == NULL || ppo == NULL || lpo == NULL) {
            Py_XDECREF(t0o); Py_XDECREF(ppo); Py_XDECREF(lpo);
            trap = park_exception();
            goto release;
        }
        PyObject *wargs[6] = {data, value, out, ppo, lpo, t0o};
        status_obj = PyObject_Vectorcall(ti->write, wargs, 6, NULL);
        Py_DECREF(t0o); Py_DECREF(ppo); Py_DECREF(lpo);
        if (status_obj == NULL || status_of(status_obj, &status) < 0) {
            trap = park_exception();
            goto release;
        }
        if (status == -1) {  /* reported (MemoryWrite) by Python */
            args[0].i32 = -1;
            goto release;
        }
    }
    if (mode == M_RECORD && h->log != NULL) {
        RecordLog *log = h->log;
        Py_INCREF(log);
        int rc = record_import(log, ti, data, out, status, t0);
        Py_DECREF(log);
        if (rc < 0) {
            trap = park_exception();
            goto release;
        }
    }
    args[0].i32 = status;
    goto release;

failed: {
        /* Python reports the failure as its own path would (or re-raises it). */
        PyObject *type, *exc, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        PyErr_NormalizeException(&type, &exc, &tb);
        if (tb != NULL && exc != NULL) PyException_SetTraceback(exc, tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        PyObject *stage_o = PyLong_FromLong(stage), *t0o = PyLong_FromLongLong(t0);
        if (exc == NULL || stage_o == NULL || t0o == NULL) {
            Py_XDECREF(exc); Py_XDECREF(stage_o); Py_XDECREF(t0o);
            trap = park_exception();
            goto release;
        }
        PyObject *fargs[5] = {stage_o, data, value ? value : Py_None, exc, t0o};
        status_obj = PyObject_Vectorcall(ti->failed, fargs, 5, NULL);
        Py_DECREF(stage_o); Py_DECREF(t0o); Py_DECREF(exc);
        int32_t st;
        if (status_obj == NULL || status_of(status_obj, &st) < 0) {
            trap = park_exception();
            goto release;
        }
        args[0].i32 = st;
    }
release:
    Py_XDECREF(status_obj);
    Py_XDECREF(out);
    Py_XDECREF(result);
    Py_XDECREF(value);
    Py_DECREF(data);
done:
    if (PyErr_Occurred()) {  /* never leave one behind (cannot happen; defensive) */
        if (trap == NULL) trap = park_exception();
        else PyErr_Clear();
    }
    PyGILState_Release(gil);
    return trap;
}

/* -------------------------------------------------------------------- define() */

PyDoc_STRVAR(define_doc,
"define($module, linker, functype, typed_import, /)\n--\n\n"
"Define typed_import's interface.function in the linker (wasmtime_linker_t address)\n"
"with the functype (wasm_functype_t address); returns the wasmtime_error_t address, or 0.");

static PyObject *sp_define(PyObject *mod, PyObject *args)
{
    PyObject *linker_o, *ftype_o;
    TypedImport *ti;
    if (!PyArg_ParseTuple(args, "OOO!:define", &linker_o, &ftype_o, &TypedImportType, &ti))
        return NULL;
    if (!C.ready) {
        PyErr_SetString(PyExc_RuntimeError, "packr_replay.runtime._speedups is not configured");
        return NULL;
    }
    void *linker = PyLong_AsVoidPtr(linker_o);
    if (linker == NULL && PyErr_Occurred()) return NULL;
    void *ftype = PyLong_AsVoidPtr(ftype_o);
    if (ftype == NULL && PyErr_Occurred()) return NULL;
    if (linker == NULL || ftype == NULL || ti->env == NULL || ti->host == NULL) {
        PyErr_SetString(PyExc_ValueError, "define: a null linker, functype or import");
        return NULL;
    }
    __atomic_add_fetch(&ti->env->refs, 1, __ATOMIC_ACQ_REL);  /* wasmtime's reference */
    wasmtime_error_t *err = C.define_unchecked(linker, ti->iface_u8, (size_t)ti->iface_len,
                                               ti->name_u8, (size_t)ti->name_len, ftype,
                                               trampoline, ti->env, env_finalize);
    if (err != NULL) env_release(ti->env);  /* not defined: wasmtime keeps no reference */
    return PyLong_FromVoidPtr(err);
}

/* ------------------------------------------------------------------ configure */

static int address(PyObject *cfg, const char *key, void **out)
{
    PyObject *v = PyDict_GetItemString(cfg, key);
    if (v == NULL || !PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "configure: %s must be a function address", key);
        return -1;
    }
    *out = PyLong_AsVoidPtr(v);
    if (*out == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "configure: %s is a null address", key);
        return -1;
    }
    return 0;
}

static int callable(PyObject *cfg, const char *key, PyObject **out)
{
    PyObject *v = PyDict_GetItemString(cfg, key);
    if (v == NULL || !PyCallable_Check(v)) {
        PyErr_Format(PyExc_TypeError, "configure: %s must be callable", key);
        return -1;
    }
    Py_INCREF(v);
    Py_XSETREF(*out, v);
    return 0;
}

PyDoc_STRVAR(configure_doc,
"configure($module, config, /)\n--\n\n"
"The wasmtime C functions (addresses from wasmtime._ffi.dll) and the Python functions\n"
"the trampoline calls: decode, encode (packr_replay.abi) and trap (fastcall._trap);\n"
"max_input, the largest import input read.");

static PyObject *sp_configure(PyObject *mod, PyObject *cfg)
{
    if (!PyDict_Check(cfg)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    void *p[5];
    static const char *names[5] = {
        "wasmtime_caller_context", "wasmtime_memory_data", "wasmtime_memory_data_size",
        "wasmtime_trap_new", "wasmtime_linker_define_func_unchecked",
    };
    for (int i = 0; i < 5; i++)
        if (address(cfg, names[i], &p[i]) < 0) return NULL;
    if (callable(cfg, "decode", &C.decode) < 0 || callable(cfg, "encode", &C.encode) < 0 ||
        callable(cfg, "trap", &C.trap) < 0)
        return NULL;
    PyObject *mi = PyDict_GetItemString(cfg, "max_input");
    if (mi == NULL || !PyLong_Check(mi)) {
        PyErr_SetString(PyExc_TypeError, "configure: max_input must be an int");
        return NULL;
    }
    C.max_input = PyLong_AsUnsignedLongLong(mi);
    if (PyErr_Occurred()) return NULL;
    C.caller_context = (wasmtime_context_t * (*)(wasmtime_caller_t *)) p[0];
    C.memory_data = (uint8_t * (*)(const wasmtime_context_t *, const wasmtime_memory_t *)) p[1];
    C.memory_data_size = (size_t(*)(const wasmtime_context_t *, const wasmtime_memory_t *))p[2];
    C.trap_new = (wasm_trap_t * (*)(const char *, size_t)) p[3];
    C.define_unchecked = (wasmtime_error_t * (*)(wasmtime_linker_t *, const char *, size_t,
                                                 const char *, size_t, const wasm_functype_t *,
                                                 unchecked_cb_t, void *, void (*)(void *))) p[4];
    C.ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", sp_configure, METH_O, configure_doc},
    {"define", sp_define, METH_VARARGS, define_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "The native call path: packr's typed imports served by a C trampoline.", -1, methods,
};

static PyTypeObject TypedImportType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "packr_replay.runtime._speedups.TypedImport",
    .tp_basicsize = sizeof(TypedImport),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One typed import as the trampoline serves it (its env).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ti_init,
    .tp_dealloc = (destructor)ti_dealloc,
    .tp_traverse = (traverseproc)ti_traverse,
    .tp_clear = (inquiry)ti_clear,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    PyTypeObject *types[] = {&ReplayFeedType, &RecordLogType, &HostType, &TypedImportType};
    const char *names[] = {"ReplayFeed", "RecordLog", "Host", "TypedImport"};
    for (int i = 0; i < 4; i++)
        if (PyType_Ready(types[i]) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    for (int i = 0; i < 4; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddIntConstant(m, "CONTRACT", 1) < 0 ||
        PyModule_AddIntConstant(m, "MODE_PYTHON", M_PYTHON) < 0 ||
        PyModule_AddIntConstant(m, "MODE_LIVE", M_LIVE) < 0 ||
        PyModule_AddIntConstant(m, "MODE_RECORD", M_RECORD) < 0 ||
        PyModule_AddIntConstant(m, "MODE_REPLAY", M_REPLAY) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
