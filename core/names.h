/* Object names and other source-given bytes, carried losslessly through JSON
 * and tar. A source may name an object with any bytes the kernel allows (all
 * but NUL; '/' separates components), so names are not always UTF-8 and may
 * hold newlines or escape sequences. In the archive (member names) and in the
 * manifest they are percent-encoded: '%', control bytes (0x00-0x1f, 0x7f), C1
 * controls and bytes that are not part of valid UTF-8 become %XX (two
 * uppercase hex digits); everything else, including valid non-ASCII UTF-8,
 * stays as it is. The encoding is canonical (one spelling per name), so an
 * encoded name is printable on one line and decodes to exactly the original
 * bytes. See docs/FORMAT.md, "Names". */
#ifndef ARCA_NAMES_H
#define ARCA_NAMES_H

#include <jansson.h>
#include <stddef.h>

/* Longest object name or link target, in raw bytes (a path 4,000 directories
 * deep); every record of a manifest fits in ARCA_MAX_RECORD. */
#define ARCA_MAX_NAME (256u << 10)
#define ARCA_MAX_RECORD (4u << 20)

/* NULL when `name` is a usable object name: not empty, at most ARCA_MAX_NAME
 * bytes, relative, no empty, "." or ".." component, no trailing '/'. Else a
 * short reason ("has a '..' component"). */
const char *name_problem(const char *name);

/* The canonical percent-encoding of `name` (caller frees). */
char *name_encode(const char *name);
/* Decodes `enc` (of length `len`, which may hold no NUL) into *out (caller
 * frees). -1 when `enc` is not the canonical encoding of a NUL-free name. */
int name_decode(const char *enc, size_t len, char **out);
/* 1 when `s` is valid UTF-8 (strict: no overlong forms, surrogates or code
 * points past U+10FFFF). */
int utf8_valid(const char *s, size_t len);

/* Source-given text (sink_info values, object metadata): a JSON string when the
 * bytes are valid UTF-8, else {"hex": "<lowercase hex>"}. */
json_t *jbytes_new(const char *s);
/* The bytes back (caller frees), or NULL when `v` is neither form or would
 * decode to bytes holding a NUL. */
char *jbytes_get(const json_t *v);

/* `s` with control characters (C0, DEL, C1 and ESC sequences) shown as \xHH,
 * for printing text that came from an archive or a server on a terminal
 * (caller frees). */
char *text_printable(const char *s);

#endif
