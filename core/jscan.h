/* A forward scanner over JSON text in a file region: it finds the extent of one
 * value at a time without building it, so a manifest of any size is read with
 * a fixed buffer and each record is handed to jansson on its own. */
#ifndef ARCA_JSCAN_H
#define ARCA_JSCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct jscan {
    int fd;
    uint64_t pos, end;      /* next byte to consume and end of the region (file offsets) */
    unsigned char *buf;
    uint64_t bstart;        /* file offset of buf[0] */
    size_t blen;            /* valid bytes in buf */
    int ioerr;              /* errno of a failed read, else 0 */
} jscan;

void js_init(jscan *s, int fd, uint64_t off, uint64_t len);
void js_free(jscan *s);
/* Moves to absolute offset `pos` inside the region. */
void js_seek(jscan *s, uint64_t pos);
/* The next byte after whitespace, not consumed; -1 at the end or on error. */
int js_peek(jscan *s);
/* Consumes the next non-space byte if it is `c`: 0, else -1. */
int js_expect(jscan *s, int c);
/* One complete JSON value (after whitespace): 0 with a NUL-terminated copy in
 * *text (caller frees), its length and its file offset; -1 if the text is
 * malformed, ends early, or the value is longer than `max` bytes. With
 * text == NULL the value is skipped (no size limit). */
int js_value(jscan *s, size_t max, char **text, size_t *len, uint64_t *at);
/* Consumes trailing whitespace: 0 if nothing else is left, else -1. */
int js_at_end(jscan *s);

/* Arrays, element by element: js_expect(s, '[') first, then js_next_elem until 0. */
/* 1 with the next element (as js_value), 0 after the closing ']', -1 on error. */
int js_next_elem(jscan *s, int first, size_t max, char **text, size_t *len, uint64_t *at);

#endif
