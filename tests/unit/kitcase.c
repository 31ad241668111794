/* The destination kit as cmocka tests (see kitcase.h). */
#include "kitcase.h"

#include <stdio.h>

size_t kit_add_tests(struct CMUnitTest *tests, kit_slot *slots, const char *label, const arca_plugin *p, void *env,
                     CMUnitTestFunction fn, CMFixtureFunction setup, CMFixtureFunction teardown)
{
    size_t n = 0;
    char why[256];
    for (size_t i = 0; i < arca_destkit_count(); i++) {
        if (!arca_destkit_applies(p, i, why, sizeof why)) {
            printf("# %s: %s\n", label, why);
            continue;
        }
        slots[n].check = i;
        slots[n].env = env;
        snprintf(slots[n].name, sizeof slots[n].name, "%s: %s", label, arca_destkit_name(i));
        tests[n] = (struct CMUnitTest){slots[n].name, fn, setup, teardown, &slots[n]};
        n++;
    }
    return n;
}

void kit_assert(const arca_plugin *p, const void *config, const arca_destkit_opts *o, size_t check)
{
    char why[2048];
    int r = arca_destkit_check(p, config, o, check, why, sizeof why);
    if (r == ARCA_DESTKIT_SKIP) {
        print_message("# skip: %s\n", why);
        skip();
    }
    if (r != ARCA_DESTKIT_PASS)
        fail_msg("%s", why);
}
