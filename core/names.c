/* Lossless names: the rules and the canonical percent-encoding of names.h. */
#include "names.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *name_problem(const char *name)
{
    if (!name || !*name)
        return "is empty";
    size_t len = strlen(name);
    if (len > ARCA_MAX_NAME)
        return "is longer than 256 KiB";
    if (name[0] == '/')
        return "is absolute";
    if (name[len - 1] == '/')
        return "ends with '/'";
    for (const char *c = name;;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0)
            return "has an empty component";
        if (n == 1 && c[0] == '.')
            return "has a '.' component";
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "has a '..' component";
        if (!end)
            return NULL;
        c = end + 1;
    }
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

static const char HEX[] = "0123456789ABCDEF";

char *name_encode(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t len = strlen(name);
    char *out = xmalloc(len * 3 + 1), *o = out;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : utf8_seq(p + i, len - i);
        /* C1 controls (U+0080..U+009F, 0xc2 0x80..0x9f) act as escapes on some terminals */
        int c1 = n == 2 && c == 0xc2 && p[i + 1] < 0xa0;
        if (c == '%' || c < 0x20 || c == 0x7f || n == 0 || c1) {
            *o++ = '%';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
            i++;
            continue;
        }
        memcpy(o, p + i, n);
        o += n;
        i += n;
    }
    *o = 0;
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int name_decode(const char *enc, size_t len, char **out)
{
    *out = NULL;
    if (memchr(enc, 0, len))
        return -1;
    char *d = xmalloc(len + 1), *o = d;
    for (size_t i = 0; i < len; i++) {
        if (enc[i] != '%') {
            *o++ = enc[i];
            continue;
        }
        int hi = i + 2 < len ? hexval(enc[i + 1]) : -1;
        int lo = i + 2 < len ? hexval(enc[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(d);
            return -1;
        }
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    *o = 0;
    /* canonical: encoding the result must give back exactly what we read */
    char *again = name_encode(d);
    int same = strlen(again) == len && !memcmp(again, enc, len);
    free(again);
    if (!same) {
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

json_t *jbytes_new(const char *s)
{
    size_t len = strlen(s);
    if (utf8_valid(s, len))
        return json_stringn(s, len);
    char *hex = xmalloc(len * 2 + 1);
    hex_encode((const unsigned char *)s, len, hex);
    json_t *o = json_pack("{s:s}", "hex", hex);
    free(hex);
    return o;
}

char *jbytes_get(const json_t *v)
{
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        return memchr(s, 0, n) ? NULL : xstrdup(s);
    }
    const char *hex = json_string_value(json_object_get(v, "hex"));
    if (!json_is_object(v) || json_object_size(v) != 1 || !hex)
        return NULL;
    size_t n = strlen(hex);
    if (n % 2)
        return NULL;
    char *out = xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n; i += 2) {
        char a = hex[i] >= 'a' && hex[i] <= 'f' ? (char)(hex[i] - 32) : hex[i];
        char b = hex[i + 1] >= 'a' && hex[i + 1] <= 'f' ? (char)(hex[i + 1] - 32) : hex[i + 1];
        int hi = hexval(a), lo = hexval(b);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[n / 2] = 0;
    return out;
}

char *text_printable(const char *s)
{
    if (!s)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    char *out = xmalloc(len * 4 + 1), *o = out;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : utf8_seq(p + i, len - i);
        int c1 = n == 2 && c == 0xc2 && p[i + 1] < 0xa0;
        if (c < 0x20 || c == 0x7f || n == 0 || c1) {
            o += sprintf(o, "\\x%02x", c);
            i++;
            continue;
        }
        memcpy(o, p + i, n);
        o += n;
        i += n;
    }
    *o = 0;
    return out;
}
