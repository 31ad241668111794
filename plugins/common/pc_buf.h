/* plugins/common: a growable byte buffer. An allocation failure is remembered
 * in the buffer (`oom`) instead of being checked at every append. */
#ifndef PC_BUF_H
#define PC_BUF_H

#include <stddef.h>

#include <arca/plugin.h>

/* Zero-initialise ({0}) before use; free with pc_buf_free or pc_buf_take. */
typedef struct pc_buf {
    char *p;          /* NUL-terminated once anything was added; NULL before */
    size_t len, cap;
    int oom;          /* an append failed: the contents are incomplete */
} pc_buf;

void pc_buf_add(pc_buf *b, const void *data, size_t len);
void pc_buf_str(pc_buf *b, const char *s);
/* Room for `more` bytes (and a NUL) past len, for writing in place: 0, or -1 (oom). */
int pc_buf_reserve(pc_buf *b, size_t more);
void pc_buf_printf(pc_buf *b, const char *fmt, ...) ARCA_PRINTF(2, 3);
void pc_buf_free(pc_buf *b);
/* Takes the contents (caller frees; "" when nothing was added); the buffer
 * is empty afterwards. NULL after oom. */
char *pc_buf_take(pc_buf *b);

#endif
