/* A shared object that is not an arca plugin: it exports a function, but not
 * the entry symbol `arca_plugin_entry`. The loader must refuse it by name.
 * Used by tests/e2e/vendor.sh. */
#include <arca/plugin.h>

ARCA_EXPORT int not_an_arca_plugin(void);
ARCA_EXPORT int not_an_arca_plugin(void)
{
    return ARCA_ABI_MAJOR;
}
