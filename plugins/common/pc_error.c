/* plugins/common: a handle's failure goes to handle_error, or to error on a
 * 1.0 host. The message is formatted here once, so both paths show the same text. */
#include "pc_error.h"

#include <stdio.h>

int pc_has_handle_error(const arca_host *h)
{
    /* The size says the field exists; a host may still leave it NULL. */
    return ARCA_HAS(arca_host, h, handle_error) && h->handle_error != NULL;
}

int pc_handle_verror(const arca_host *h, const void *handle, int code, const char *fmt, va_list ap)
{
    char msg[4096];

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (handle && pc_has_handle_error(h))
        return h->handle_error(h, handle, code, "%s", msg);
    return h->error(h, code, "%s", msg);
}

int pc_handle_error(const arca_host *h, const void *handle, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pc_handle_verror(h, handle, code, fmt, ap);
    va_end(ap);
    return rc;
}
