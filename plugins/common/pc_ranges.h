/* plugins/common: a download fetched as ranges in parallel and handed to the
 * reader in order (s3, gcs). [start, end) is cut into ranges of `chunk`
 * bytes; up to `nslots` threads, each with a curl handle of the pool, fetch
 * one range each into a buffer of their own, at most `nslots` ranges ahead of
 * the reader: memory is nslots x chunk, whatever the object's size. How a
 * range is fetched and checked (the request, its precondition, its status) is
 * the plugin's; a failed range has been retried by then, so the first
 * failure stops the download and is what the reader gets. */
#ifndef PC_RANGES_H
#define PC_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "pc_http.h"

/* One range's buffer: `want` bytes expected at `buf`, `len` received. */
typedef struct pc_range_buf {
    char *buf;
    size_t len, want;
    int too_much; /* the server sent more than the range */
} pc_range_buf;

/* A request body sink (ud: a pc_range_buf) that refuses bytes past `want`,
 * and its reset for a retried request. */
size_t pc_range_buf_add(void *ud, const char *p, size_t n);
void pc_range_buf_reset(void *ud);

/* Fetches the range at `off` into b (b->want bytes; b->len is 0): ARCA_OK,
 * or an ARCA_E* code with a message in err. Called from several threads. */
typedef int (*pc_ranges_fetch)(void *ud, CURL *easy, uint64_t off, pc_range_buf *b, char *err, size_t errlen);

typedef struct pc_ranges pc_ranges;

/* Starts the threads. ARCA_OK, ARCA_ENOMEM, or ARCA_EFAIL (no thread could start). */
int pc_ranges_start(pc_curl_pool *pool, uint64_t start, uint64_t end, uint64_t chunk, int nslots,
                    pc_ranges_fetch fetch, void *ud, pc_ranges **out);
/* Up to cap bytes, in order: *got 0 at the end. On a failure of any range:
 * its code, with its message in err. */
int pc_ranges_read(pc_ranges *r, void *buf, size_t cap, size_t *got, char *err, size_t errlen);
/* Stops the threads (a range being fetched is finished first) and frees. NULL is fine. */
void pc_ranges_free(pc_ranges *r);

#endif
