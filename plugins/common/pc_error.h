/* plugins/common: reporting the failure of one put or get handle, on the handle
 * when the host offers handle_error (ABI 1.1), else as the instance's error. */
#ifndef PC_ERROR_H
#define PC_ERROR_H

#include <stdarg.h>

#include <arca/plugin.h>

/* Nonzero when `h` has a usable handle_error. */
int pc_has_handle_error(const arca_host *h);

/* Records why an operation on `handle` failed and returns `code`, like
 * host->error. With `handle` NULL (an open that produced no handle) or a
 * host without handle_error, the message goes to host->error. Callable from
 * any thread when the host's functions are (they are, per the ABI). */
int pc_handle_error(const arca_host *h, const void *handle, int code, const char *fmt, ...) ARCA_PRINTF(4, 5);
int pc_handle_verror(const arca_host *h, const void *handle, int code, const char *fmt, va_list ap);

#endif
