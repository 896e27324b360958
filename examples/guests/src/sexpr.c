/*
 * sexpr - an S-expression evaluator over a recursive variant.
 *
 * The value type, Variant type_name "sexpr" (dispatch is on the tag; our results use
 * these case names):
 *   0 sym(string)   1 num(s64)   2 float(f64)   3 str(string)
 *   4 lst(list<sexpr>)  -- the list's declared elem type is Variant("sexpr")
 *   5 bool(bool)    6 nil        7 err(string)
 *
 * Import:
 *   sexpr:host/env.lookup(name: string) -> option<sexpr>
 *     asked for every symbol that is not bound by an enclosing `let`; the value it
 *     returns is used as is (not evaluated again); none gives err("unbound symbol: x").
 *
 * Export:
 *   eval(expr: sexpr) -> sexpr
 *     Numbers, floats, strings, bools, nil and err evaluate to themselves; () to nil.
 *     A list whose head is a symbol is a form:
 *       (quote x)                    x, unevaluated
 *       (if c then [else])           only false and nil are falsy; no else gives nil
 *       (let ((x e) ...) body ...)   bindings in order, each sees the previous (let*)
 *       (and a ...) (or a ...)       short-circuit; (and) = true, (or) = false
 *       (+ ...) (* ...) (- a ...) (/ a ...)
 *                                    s64 arithmetic (overflow and division by zero are
 *                                    errors); if any argument is a float, f64 arithmetic
 *       (< a b ...) (> a b ...)      numeric, pairwise
 *       (= a b ...)                  numeric for numbers, structural otherwise
 *       (not x) (list a ...) (car l) (cdr l) (cons x l) (length l)
 *     Errors are values: the first err(...) an argument evaluates to is the result, and
 *     misuse gives err("<what went wrong>"). The export itself never fails or panics
 *     (unless the host's lookup reply is not an option<variant>, as with any import).
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

CGRF_IMPORT("sexpr:host/env", "lookup", env_lookup);

enum { SYM = 0, NUM = 1, FLOAT = 2, STR = 3, LST = 4, BOOL = 5, NIL = 6, ERR = 7 };
static const char *const CASES[] = {"sym", "num", "float", "str", "lst", "bool", "nil", "err"};

#define MAX_DEPTH 200 /* nesting of evaluation; deeper gives an err value */

CGRF_NAMED_TYPE_DEF(sexpr_type, CGRF_VARIANT, "sexpr");
CGRF_TYPE_DEF(lookup_reply, CGRF_OPTION, &sexpr_type);

/* ------------------------------------------------------------ constructors */

static cgrf_value *sx(uint32_t tag, cgrf_value *payload) {
    cgrf_value *v = cgrf_variant(CGRF_LIT("sexpr"), cgrf_cstr(CASES[tag]), tag, payload ? 1 : 0);
    if (payload) v->kids[0] = payload;
    return v;
}

static cgrf_value *num(int64_t x) { return sx(NUM, cgrf_s64(x)); }
static cgrf_value *flt(double x) { return sx(FLOAT, cgrf_f64(x)); }
static cgrf_value *boolean(bool b) { return sx(BOOL, cgrf_bool(b)); }
static cgrf_value *nil(void) { return sx(NIL, 0); }
static cgrf_value *err(const char *msg) { return sx(ERR, cgrf_string_c(msg)); }

static cgrf_value *err2(const char *msg, cgrf_str detail) {
    cgrf_sb sb = {0};
    cgrf_sb_cstr(&sb, msg);
    cgrf_sb_str(&sb, detail);
    return sx(ERR, cgrf_string(cgrf_sb_done(&sb)));
}

/* lst(...) with room for n items: fill v->kids[0]->kids[i]. */
static cgrf_value *lst(uint32_t n) { return sx(LST, cgrf_list(&sexpr_type, n)); }

/* ---------------------------------------------------------------- accessors */

static bool is(const cgrf_value *v, uint32_t tag) { return v->kind == CGRF_VARIANT && v->tag == tag; }

/* The single payload value, or NULL when the variant does not carry one. */
static cgrf_value *arg0(const cgrf_value *v) {
    return v->kind == CGRF_VARIANT && v->count >= 1 ? v->kids[0] : 0;
}

/* A well-formed lst(...) payload, or NULL. */
static cgrf_value *items_of(const cgrf_value *v) {
    cgrf_value *p = is(v, LST) ? arg0(v) : 0;
    return p && p->kind == CGRF_LIST ? p : 0;
}

/* The symbol's name, or NULL. */
static const cgrf_str *sym_name(const cgrf_value *v) {
    cgrf_value *p = is(v, SYM) ? arg0(v) : 0;
    return p && p->kind == CGRF_STRING ? &p->str : 0;
}

static bool truthy(const cgrf_value *v) {
    if (is(v, NIL)) return false;
    if (is(v, BOOL)) {
        cgrf_value *p = arg0(v);
        return !(p && p->kind == CGRF_BOOL && !p->flag);
    }
    return true;
}

/* ---------------------------------------------------------------- evaluation */

typedef struct env {
    cgrf_str name;
    cgrf_value *value;
    const struct env *next;
} env;

static cgrf_value *eval(cgrf_value *e, const env *scope, int depth);

static cgrf_value *lookup(cgrf_str name, const env *scope) {
    for (; scope; scope = scope->next)
        if (cgrf_str_eq(scope->name, name)) return scope->value;
    cgrf_value *arg = cgrf_string(name);
    cgrf_value *reply = cgrf_call(env_lookup, &lookup_reply, 1, &arg);
    return reply->count ? reply->kids[0] : err2("unbound symbol: ", name);
}

/* Evaluate items[from..] into out[]; returns the first error value, if any. */
static cgrf_value *eval_args(cgrf_value *items, uint32_t from, cgrf_value **out, const env *scope,
                             int depth) {
    for (uint32_t i = from; i < items->count; i++) {
        cgrf_value *v = eval(items->kids[i], scope, depth);
        if (is(v, ERR)) return v;
        out[i - from] = v;
    }
    return 0;
}

typedef struct {
    bool is_float;
    int64_t i;
    double f;
} number;

static bool as_number(const cgrf_value *v, number *n) {
    cgrf_value *p = arg0(v);
    if (is(v, NUM) && p && p->kind == CGRF_S64) {
        *n = (number){false, (int64_t)p->bits, (double)(int64_t)p->bits};
        return true;
    }
    if (is(v, FLOAT) && p && p->kind == CGRF_F64) {
        double d;
        __builtin_memcpy(&d, &p->bits, 8);
        *n = (number){true, 0, d};
        return true;
    }
    return false;
}

static cgrf_value *arith(char op, cgrf_value **args, uint32_t n) {
    if ((op == '-' || op == '/') && n == 0) return err("arity: - and / need at least one argument");
    /* (- a b c) = a - b - c, but (- a) = 0 - a and (/ a) = 1 / a. */
    int64_t identity = op == '*' || op == '/' ? 1 : 0;
    number acc = {false, identity, (double)identity};
    uint32_t k = 0;
    if (n >= 2 && (op == '-' || op == '/')) {
        if (!as_number(args[0], &acc)) return err("type error: arithmetic on a non-number");
        k = 1;
    }
    for (; k < n; k++) {
        number x;
        if (!as_number(args[k], &x)) return err("type error: arithmetic on a non-number");
        if (x.is_float || acc.is_float) { /* acc.f always mirrors acc.i */
            acc.is_float = true;
            acc.f = op == '+' ? acc.f + x.f : op == '-' ? acc.f - x.f : op == '*' ? acc.f * x.f : acc.f / x.f;
            continue;
        }
        bool overflow = false;
        int64_t r = 0;
        switch (op) {
        case '+': overflow = __builtin_add_overflow(acc.i, x.i, &r); break;
        case '-': overflow = __builtin_sub_overflow(acc.i, x.i, &r); break;
        case '*': overflow = __builtin_mul_overflow(acc.i, x.i, &r); break;
        default:
            if (x.i == 0) return err("division by zero");
            overflow = acc.i == INT64_MIN && x.i == -1;
            if (!overflow) r = acc.i / x.i;
            break;
        }
        if (overflow) return err("integer overflow");
        acc.i = r;
        acc.f = (double)r;
    }
    return acc.is_float ? flt(acc.f) : num(acc.i);
}

static cgrf_value *compare(char op, cgrf_value **args, uint32_t n) {
    if (n < 2) return err("arity: comparisons need at least two arguments");
    for (uint32_t k = 0; k + 1 < n; k++) {
        number a, b;
        bool numeric = as_number(args[k], &a) && as_number(args[k + 1], &b);
        bool holds;
        if (op == '=') {
            if (numeric) holds = (a.is_float || b.is_float) ? a.f == b.f : a.i == b.i;
            else holds = cgrf_equal(args[k], args[k + 1]);
        } else {
            if (!numeric) return err("type error: comparing non-numbers");
            bool fl = a.is_float || b.is_float;
            holds = op == '<' ? (fl ? a.f < b.f : a.i < b.i) : (fl ? a.f > b.f : a.i > b.i);
        }
        if (!holds) return boolean(false);
    }
    return boolean(true);
}

static cgrf_value *eval_let(cgrf_value *items, const env *scope, int depth) {
    cgrf_value *bindings = items->count >= 2 ? items_of(items->kids[1]) : 0;
    if (!bindings) return err("let: expected (let ((name expr) ...) body ...)");
    for (uint32_t i = 0; i < bindings->count; i++) {
        cgrf_value *pair = items_of(bindings->kids[i]);
        const cgrf_str *name = pair && pair->count == 2 ? sym_name(pair->kids[0]) : 0;
        if (!name) return err("let: each binding is (name expr)");
        cgrf_value *v = eval(pair->kids[1], scope, depth);
        if (is(v, ERR)) return v;
        env *link = cgrf_arena_must(sizeof(env));
        *link = (env){*name, v, scope};
        scope = link;
    }
    cgrf_value *result = nil();
    for (uint32_t i = 2; i < items->count; i++) {
        result = eval(items->kids[i], scope, depth);
        if (is(result, ERR)) return result;
    }
    return result;
}

static cgrf_value *eval_form(const cgrf_str *head, cgrf_value *items, const env *scope, int depth) {
    uint32_t argc = items->count - 1;
    if (cgrf_str_is(*head, "quote"))
        return argc == 1 ? items->kids[1] : err("quote: expected one argument");
    if (cgrf_str_is(*head, "if")) {
        if (argc != 2 && argc != 3) return err("if: expected (if cond then [else])");
        cgrf_value *c = eval(items->kids[1], scope, depth);
        if (is(c, ERR)) return c;
        if (truthy(c)) return eval(items->kids[2], scope, depth);
        return argc == 3 ? eval(items->kids[3], scope, depth) : nil();
    }
    if (cgrf_str_is(*head, "let")) return eval_let(items, scope, depth);
    if (cgrf_str_is(*head, "and") || cgrf_str_is(*head, "or")) {
        bool is_and = cgrf_str_is(*head, "and");
        cgrf_value *last = boolean(is_and);
        for (uint32_t i = 1; i < items->count; i++) {
            last = eval(items->kids[i], scope, depth);
            if (is(last, ERR) || truthy(last) != is_and) return last;
        }
        return last;
    }

    /* Everything else is a function of its evaluated arguments. */
    cgrf_value **args = argc ? cgrf_arena_must(argc * (uint32_t)sizeof(cgrf_value *)) : 0;
    cgrf_value *failed = eval_args(items, 1, args, scope, depth);
    if (failed) return failed;
    if (head->len == 1 && (head->ptr[0] == '+' || head->ptr[0] == '-' || head->ptr[0] == '*' || head->ptr[0] == '/'))
        return arith(head->ptr[0], args, argc);
    if (head->len == 1 && (head->ptr[0] == '<' || head->ptr[0] == '>' || head->ptr[0] == '='))
        return compare(head->ptr[0], args, argc);
    if (cgrf_str_is(*head, "not"))
        return argc == 1 ? boolean(!truthy(args[0])) : err("not: expected one argument");
    if (cgrf_str_is(*head, "list")) {
        cgrf_value *out = lst(argc);
        for (uint32_t i = 0; i < argc; i++) out->kids[0]->kids[i] = args[i];
        return out;
    }
    if (cgrf_str_is(*head, "car") || cgrf_str_is(*head, "cdr")) {
        if (argc != 1) return err("car/cdr: expected one argument");
        if (is(args[0], NIL)) return nil();
        cgrf_value *l = items_of(args[0]);
        if (!l) return err("car/cdr: expected a list");
        if (l->count == 0) return nil();
        if (head->ptr[1] == 'a') return l->kids[0];
        cgrf_value *rest = lst(l->count - 1);
        for (uint32_t i = 1; i < l->count; i++) rest->kids[0]->kids[i - 1] = l->kids[i];
        return rest;
    }
    if (cgrf_str_is(*head, "cons")) {
        if (argc != 2) return err("cons: expected two arguments");
        cgrf_value *l = is(args[1], NIL) ? 0 : items_of(args[1]);
        if (!l && !is(args[1], NIL)) return err("cons: expected a list");
        uint32_t n = l ? l->count : 0;
        cgrf_value *out = lst(n + 1);
        out->kids[0]->kids[0] = args[0];
        for (uint32_t i = 0; i < n; i++) out->kids[0]->kids[i + 1] = l->kids[i];
        return out;
    }
    if (cgrf_str_is(*head, "length")) {
        if (argc != 1) return err("length: expected one argument");
        if (is(args[0], NIL)) return num(0);
        cgrf_value *l = items_of(args[0]);
        if (l) return num(l->count);
        cgrf_value *s = is(args[0], STR) ? arg0(args[0]) : 0;
        if (s && s->kind == CGRF_STRING) return num(s->str.len);
        return err("length: expected a list or a string");
    }
    return err2("unknown function: ", *head);
}

static cgrf_value *eval(cgrf_value *e, const env *scope, int depth) {
    if (++depth > MAX_DEPTH) return err("expression nested too deeply");
    if (e->kind != CGRF_VARIANT) return err("not an sexpr");
    switch (e->tag) {
    case SYM: {
        const cgrf_str *name = sym_name(e);
        return name ? lookup(*name, scope) : err("malformed symbol");
    }
    case LST: {
        cgrf_value *items = items_of(e);
        if (!items) return err("malformed list");
        if (items->count == 0) return nil();
        const cgrf_str *head = sym_name(items->kids[0]);
        if (!head) return err("not a function: the head of a list must be a symbol");
        return eval_form(head, items, scope, depth);
    }
    case NUM: case FLOAT: case STR: case BOOL: case NIL: case ERR: return e;
    default: {
        cgrf_sb sb = {0};
        cgrf_sb_cstr(&sb, "unknown sexpr tag ");
        cgrf_sb_u64(&sb, e->tag);
        return sx(ERR, cgrf_string(cgrf_sb_done(&sb)));
    }
    }
}

static cgrf_value *eval_export(cgrf_value *input, cgrf_str *error) {
    (void)error;
    return eval(input, 0, 0);
}
CGRF_EXPORT("eval", eval_export)
