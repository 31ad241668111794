/* A plugin that claims a future ABI major (99.3): the loader must refuse it
 * from the three leading descriptor fields alone, naming the file and both
 * versions. Used by tests/e2e/vendor.sh. */
#include <arca/plugin.h>

static int wrong_abi_create(const arca_host *host, const void *config, void **inst)
{
    (void)config;
    *inst = NULL;
    return host->error(host, ARCA_EFAIL, "wrong_abi must never be instantiated");
}

static void wrong_abi_destroy(void *inst)
{
    (void)inst;
}

static const arca_plugin wrong_abi_plugin = {
    .abi_major = 99,
    .abi_minor = 3,
    .size = sizeof(arca_plugin),
    .roles = ARCA_ROLE_DESTINATION,
    .name = "wrong_abi",
    .version = "0.0.1",
    .description = "claims plugin ABI 99.3; arca 1.x must refuse to load it",
    .create = wrong_abi_create,
    .destroy = wrong_abi_destroy,
};

ARCA_PLUGIN_DEFINE(wrong_abi_plugin)
