/* libFuzzer harness: a whole archive, read the three ways arca reads one: as a
 * file (its manifest located and opened, then every member checked), and as a
 * pipe (one pass, manifest last). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"

typedef struct mem {
    const uint8_t *p;
    size_t n, at;
} mem;

static int mem_read(void *ud, void *buf, size_t cap, size_t *got)
{
    mem *m = ud;
    size_t k = m->n - m->at < cap ? m->n - m->at : cap;
    memcpy(buf, m->p + m->at, k);
    m->at += k;
    *got = k;
    return 0;
}

static char *mem_error(void *ud)
{
    (void)ud;
    return strdup("read failed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("archive", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    json_t *hdr = NULL;
    uint64_t off = 0, len = 0;
    char *err = NULL;
    read_stats st;
    if (engine_locate(fd, "fuzz", &hdr, &off, &len, &err) == ARCA_OK) {
        int code = 0;
        manifest *m = mf_open(fd, off, len, "fuzz", &code, &err);
        if (m) {
            mem in = {data, size, 0};
            rd_stream s = {mem_read, &in, "fuzz", mem_error, NULL};
            engine_read(&s, m, NULL, NULL, &st, &err);
            mf_close(m);
        }
        json_decref(hdr);
    }
    free(err);
    err = NULL;
    mem in = {data, size, 0};
    rd_stream s = {mem_read, &in, "fuzz", mem_error, NULL};
    engine_read_blind(&s, -1, &st, &err);
    free(err);
    close(fd);
    return 0;
}
