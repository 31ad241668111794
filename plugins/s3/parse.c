/* s3 plugin: small scanners for what S3 and AWS hand back (S3's XML answers,
 * the shared config/credentials INI files, the instance-metadata JSON), dates,
 * and the part size schedule. No network, no curl: unit tests compile it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3util.h"

/* ---- XML: S3 answers are flat and machine-made; elements are found by name
 * (no namespaces, no attributes we need, no CDATA from S3). ---------------- */

const char *s3_xml_elem(const char *p, const char *end, const char *tag, const char **val, size_t *vlen)
{
    size_t tl = strlen(tag);
    while (p && p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < tl + 2)
            return NULL;
        if (!strncmp(lt + 1, tag, tl)) {
            const char *after = lt + 1 + tl;
            if (*after == '/' && after + 1 < end && after[1] == '>') { /* <tag/> */
                *val = after;
                *vlen = 0;
                return after + 2;
            }
            if (*after == '>' || *after == ' ' || *after == '\t' || *after == '\n' || *after == '\r') {
                const char *gt = memchr(after, '>', (size_t)(end - after));
                if (!gt)
                    return NULL;
                if (gt[-1] == '/') { /* <tag attr="..."/> */
                    *val = gt;
                    *vlen = 0;
                    return gt + 1;
                }
                /* the matching close tag: S3 never nests an element in one of its own name */
                const char *q = gt + 1;
                while (q < end) {
                    const char *c = memchr(q, '<', (size_t)(end - q));
                    if (!c || (size_t)(end - c) < tl + 3)
                        return NULL;
                    if (c[1] == '/' && !strncmp(c + 2, tag, tl) && c[2 + tl] == '>') {
                        *val = gt + 1;
                        *vlen = (size_t)(c - (gt + 1));
                        return c + 3 + tl;
                    }
                    q = c + 1;
                }
                return NULL;
            }
        }
        p = lt + 1;
    }
    return NULL;
}

char *s3_xml_decode(const char *p, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    const char *end = p + n;
    if (!out)
        return NULL;
    while (p < end) {
        if (*p != '&') {
            *o++ = *p++;
            continue;
        }
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t el = semi ? (size_t)(semi - p) + 1 : 0;
        if (el == 5 && !strncmp(p, "&amp;", 5))
            *o++ = '&';
        else if (el == 4 && !strncmp(p, "&lt;", 4))
            *o++ = '<';
        else if (el == 4 && !strncmp(p, "&gt;", 4))
            *o++ = '>';
        else if (el == 6 && !strncmp(p, "&quot;", 6))
            *o++ = '"';
        else if (el == 6 && !strncmp(p, "&apos;", 6))
            *o++ = '\'';
        else if (el > 3 && p[1] == '#') {
            unsigned long cp = (p[2] == 'x' || p[2] == 'X') ? strtoul(p + 3, NULL, 16) : strtoul(p + 2, NULL, 10);
            /* UTF-8 encode; a reference never makes the text longer than itself */
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
        } else {
            *o++ = *p++;
            continue;
        }
        p += el;
    }
    *o = 0;
    return out;
}

int s3_xml_text(const char *p, const char *end, const char *tag, char *out, size_t cap)
{
    const char *v;
    size_t n;
    char *d;
    if (cap)
        out[0] = 0;
    if (!s3_xml_elem(p, end, tag, &v, &n))
        return 0;
    if (!(d = s3_xml_decode(v, n)))
        return 0;
    if (cap)
        snprintf(out, cap, "%s", d);
    free(d);
    return 1;
}

char *s3_xml_text_dup(const char *p, const char *end, const char *tag)
{
    const char *v;
    size_t n;
    if (!s3_xml_elem(p, end, tag, &v, &n))
        return NULL;
    return s3_xml_decode(v, n);
}

char *s3_xml_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += (*p == '&') ? 5 : (*p == '<' || *p == '>') ? 4 : (*p == '"' || *p == '\'') ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        const char *r = NULL;
        switch (*p) {
        case '&': r = "&amp;"; break;
        case '<': r = "&lt;"; break;
        case '>': r = "&gt;"; break;
        case '"': r = "&quot;"; break;
        case '\'': r = "&apos;"; break;
        }
        if (r) {
            memcpy(o, r, strlen(r));
            o += strlen(r);
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

/* ---- dates ------------------------------------------------------------------- */

int64_t s3_parse_iso8601(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    struct tm tm;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    s += n;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            ;
    int64_t off = 0;
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int oh, om, m = 0;
        if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * (*s == '+' ? 1 : -1);
        s += 6;
    } else {
        return -1;
    }
    if (*s)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm) - off;
}

void s3_format_iso8601(time_t t, char out[21])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- AWS shared files: [section] then key = value lines; '#' or ';' comments ---- */

static const char *trim_span(const char *b, const char *e, const char **te)
{
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    *te = e;
    return b;
}

int s3_ini_get(const char *text, const char *section, const char *key, char *out, size_t cap)
{
    int in = 0;
    const char *p = text;
    if (cap)
        out[0] = 0;
    while (p && *p) {
        const char *nl = strchr(p, '\n'), *le = nl ? nl : p + strlen(p), *e;
        const char *b = trim_span(p, le, &e);
        p = nl ? nl + 1 : NULL;
        if (b == e || *b == '#' || *b == ';')
            continue;
        if (*b == '[') {
            const char *se;
            if (e[-1] != ']') {
                in = 0;
                continue;
            }
            const char *sb = trim_span(b + 1, e - 1, &se);
            in = (size_t)(se - sb) == strlen(section) && !strncmp(sb, section, (size_t)(se - sb));
            continue;
        }
        if (!in)
            continue;
        const char *eq = memchr(b, '=', (size_t)(e - b)), *ke, *ve;
        if (!eq)
            continue;
        const char *kb = trim_span(b, eq, &ke), *vb = trim_span(eq + 1, e, &ve);
        if ((size_t)(ke - kb) == strlen(key) && !strncmp(kb, key, (size_t)(ke - kb))) {
            if (cap)
                snprintf(out, cap, "%.*s", (int)(ve - vb), vb);
            return 1;
        }
    }
    return 0;
}

/* ---- flat JSON (instance metadata): "key" : "value" --------------------------- */

int s3_json_str(const char *json, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = json;
    if (cap)
        out[0] = 0;
    while ((p = strchr(p, '"'))) {
        if (!strncmp(p + 1, key, kl) && p[1 + kl] == '"') {
            const char *q = p + 2 + kl;
            while (isspace((unsigned char)*q))
                q++;
            if (*q != ':') {
                p++;
                continue;
            }
            q++;
            while (isspace((unsigned char)*q))
                q++;
            if (*q != '"')
                return 0;
            q++;
            size_t o = 0;
            for (; *q && *q != '"'; q++) {
                char c = *q;
                if (c == '\\' && q[1]) {
                    q++;
                    c = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q == 'r' ? '\r' : *q;
                }
                if (o + 1 < cap)
                    out[o++] = c;
            }
            if (cap)
                out[o] = 0;
            return *q == '"';
        }
        /* skip this string entirely */
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
                p++;
        if (!*p)
            return 0;
        p++;
    }
    return 0;
}

/* ---- part sizes ------------------------------------------------------------------ */

uint64_t s3_part_size_for(uint64_t base, uint32_t n)
{
    uint32_t step = n ? (n - 1) / S3_PART_STEP : 0;
    uint64_t size = base < S3_MIN_PART ? S3_MIN_PART : base;
    for (uint32_t i = 0; i < step && size < S3_MAX_PART; i++)
        size *= 2;
    return size > S3_MAX_PART ? S3_MAX_PART : size;
}
