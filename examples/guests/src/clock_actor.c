/*
 * clock_actor - a nondeterministic actor: everything it returns depends on the host.
 *
 * Imports (typed, 4-i32 ABI; one argument goes bare, no argument as Tuple([])):
 *   demo:host/log.write(message: string)           reply: anything (ignored)
 *   demo:host/clock.now() -> u64                   unix time in nanoseconds
 *   demo:host/random.next(bound: u64) -> u64       a number in [0, bound)
 *   demo:host/env.get(name: string) -> option<string>
 *
 * Export:
 *   run(input: value) -> report
 *     input: String(name), or Tuple([]) for the default name "world".
 *     Calls, in this order: log.write("clock-actor: run <name>"), clock.now(),
 *     random.next(10), env.get("USER"), log.write("clock-actor: rolled <roll>").
 *     Returns Record "report" {
 *       greeting: string        "Hello, <name>"
 *       time:     u64           the clock reply
 *       roll:     u64           the random reply
 *       user:     option<string> the env reply
 *       lucky:    bool          roll == 7
 *     }
 *     Any other input is an export error ("run: expected a string name or ()").
 *     A reply of the wrong type makes the guest panic (spin), like any packr guest.
 */
#include "cgrf.h"
#include "pack_types.h"

CGRF_PACK_TYPES(CGRF_PACK_TYPES_BLOB)

CGRF_IMPORT("demo:host/log", "write", log_write);
CGRF_IMPORT("demo:host/clock", "now", clock_now);
CGRF_IMPORT("demo:host/random", "next", random_next);
CGRF_IMPORT("demo:host/env", "get", env_get);

#define ROLL_BOUND 10u
#define LUCKY_ROLL 7u

CGRF_TYPE_DEF(option_string, CGRF_OPTION, &cgrf_t_string);

static void log_line(cgrf_str message) {
    cgrf_value *arg = cgrf_string(message);
    cgrf_call(log_write, 0, 1, &arg); /* -> (): any valid reply is accepted */
}

static cgrf_value *run(cgrf_value *input, cgrf_str *error) {
    cgrf_str name;
    if (input->kind == CGRF_STRING) {
        name = input->str;
    } else if (input->kind == CGRF_TUPLE && input->count == 0) {
        name = CGRF_LIT("world");
    } else {
        *error = CGRF_LIT("run: expected a string name or ()");
        return 0;
    }

    cgrf_sb sb = {0};
    cgrf_sb_cstr(&sb, "clock-actor: run ");
    cgrf_sb_str(&sb, name);
    log_line(cgrf_sb_done(&sb));

    uint64_t now = cgrf_call(clock_now, &cgrf_t_u64, 0, 0)->bits;
    cgrf_value *bound = cgrf_u64(ROLL_BOUND);
    uint64_t roll = cgrf_call(random_next, &cgrf_t_u64, 1, &bound)->bits;
    cgrf_value *var = cgrf_string_c("USER");
    cgrf_value *user = cgrf_call(env_get, &option_string, 1, &var);

    sb = (cgrf_sb){0};
    cgrf_sb_cstr(&sb, "clock-actor: rolled ");
    cgrf_sb_u64(&sb, roll);
    log_line(cgrf_sb_done(&sb));

    sb = (cgrf_sb){0};
    cgrf_sb_cstr(&sb, "Hello, ");
    cgrf_sb_str(&sb, name);
    cgrf_value *report = cgrf_record(CGRF_LIT("report"), 5);
    cgrf_record_set(report, 0, "greeting", cgrf_string(cgrf_sb_done(&sb)));
    cgrf_record_set(report, 1, "time", cgrf_u64(now));
    cgrf_record_set(report, 2, "roll", cgrf_u64(roll));
    /* Re-declare the inner type: the host's declared type may differ from ours. */
    cgrf_record_set(report, 3, "user",
                    user->count ? cgrf_some(&cgrf_t_string, user->kids[0]) : cgrf_none(&cgrf_t_string));
    cgrf_record_set(report, 4, "lucky", cgrf_bool(roll == LUCKY_ROLL));
    return report;
}
CGRF_EXPORT("run", run)
