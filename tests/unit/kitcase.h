/* The destination kit (core/destkit) inside cmocka: one cmocka test per kit
 * check that applies to a plugin, so tests/run counts each check. */
#ifndef KITCASE_H
#define KITCASE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arca/destkit.h>

typedef struct kit_slot {
    size_t check; /* the kit's index */
    void *env;    /* the test file's own context for this group */
    char name[200];
} kit_slot;

/* Appends to `tests` one test per kit check that applies to `p` (room for
 * arca_destkit_count() entries in tests and slots is needed), each with
 * `setup` and `teardown` and a slot as its initial state; checks of optional
 * operations the plugin lacks are printed as "# ..." lines. `label` starts
 * every test name. Returns how many tests were added. */
size_t kit_add_tests(struct CMUnitTest *tests, kit_slot *slots, const char *label, const arca_plugin *p, void *env,
                     CMUnitTestFunction fn, CMFixtureFunction setup, CMFixtureFunction teardown);

/* Runs kit check `check` against p with `config`: fails the running cmocka
 * test with the kit's reason, or skips it saying why. */
void kit_assert(const arca_plugin *p, const void *config, const arca_destkit_opts *o, size_t check);

#endif
