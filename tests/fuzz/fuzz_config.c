/* libFuzzer harness: a config file, parsed (inih, ${VAR} expansion, sections)
 * and its [arca] and [pipeline] sections validated against the core's tables. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/arca-fuzz-cfg-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    setenv("ARCA_FUZZ_VAR", "value", 1);
    errlist e = {0};
    cfg_file *c = cfg_load(path, &e);
    for (size_t i = 0; c && i < c->n; i++) {
        cfg_section *s = &c->sec[i];
        const arca_option *t = !s->kind ? NULL : !strcmp(s->kind, "arca") ? arca_global_options
                             : !strcmp(s->kind, "pipeline") ? pipeline_options : NULL;
        size_t sz = t == arca_global_options ? sizeof(arca_globals) : sizeof(pipeline_cfg);
        if (t)
            opt_free(t, opt_fill_at(t, sz, s->kv, s->nkv, s->label, c->path, s->line, &e));
    }
    cfg_free(c);
    errlist_free(&e);
    unlink(path);
    return 0;
}
