/* libFuzzer harness: a manifest, as the reader takes it from a catalogue or an
 * archive. Everything it accepts is then streamed back through the cursors and
 * random access, as verify and restore would. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("manifest", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    int code = 0;
    char *err = NULL;
    manifest *m = mf_open(fd, 0, size, "fuzz", &code, &err);
    free(err);
    if (m) {
        mf_cursor *c = mf_objects(m);
        mf_obj o = {0};
        while (mf_next_object(c, &o) == 1)
            ;
        mf_obj_clear(&o);
        mf_cursor_free(c);
        c = mf_members(m);
        mf_mem mm = {0};
        while (mf_next_member(c, &mm) == 1) {
            mf_obj x;
            char *e = NULL;
            if (mf_object_at(m, mm.obj, &x, &e) == 0)
                mf_obj_clear(&x);
            free(e);
        }
        mf_mem_clear(&mm);
        mf_cursor_free(c);
        mf_close(m);
    }
    json_t *h = NULL, *t = NULL;
    if (mf_head(fd, 0, size, "fuzz", &h, &t, &err) == 0) {
        json_decref(h);
        json_decref(t);
    } else {
        free(err);
    }
    close(fd);
    return 0;
}
