/* s3 plugin: what S3 and AWS hand back, read with libraries: S3's XML answers
 * (libxml2), the shared config/credentials INI files (inih), the
 * instance-metadata JSON (jansson); dates and the part size schedule. No
 * network, no curl: unit tests compile it. */
#include <ctype.h>
#include <ini.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3util.h"

/* ---- XML: libxml2, with no DTD, no external entities and no network -------- */

s3x_doc *s3x_parse(const char *body, size_t len)
{
    /* S3 may keep a slow CompleteMultipartUpload alive with leading blanks */
    while (body && len && (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')) {
        body++;
        len--;
    }
    if (!body || !len || len > (64u << 20))
        return NULL;
    /* a truncated or otherwise malformed answer is no answer: the caller says so */
    return xmlReadMemory(body, (int)len, "s3-answer.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
}

void s3x_free(s3x_doc *doc)
{
    if (doc)
        xmlFreeDoc(doc);
}

const char *s3x_root_name(s3x_doc *doc)
{
    xmlNodePtr r = doc ? xmlDocGetRootElement(doc) : NULL;
    return r ? (const char *)r->name : "";
}

/* S3 answers carry a default namespace (and RGW/moto may or may not): elements
 * are matched by local name. */
static int named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

s3x_node *s3x_child(s3x_doc *doc, s3x_node *parent, const char *name)
{
    xmlNodePtr p = parent ? parent : (doc ? xmlDocGetRootElement(doc) : NULL);
    for (xmlNodePtr c = p ? p->children : NULL; c; c = c->next)
        if (named(c, name))
            return c;
    return NULL;
}

s3x_node *s3x_next(s3x_node *node)
{
    for (xmlNodePtr c = node ? node->next : NULL; c; c = c->next)
        if (named(c, (const char *)node->name))
            return c;
    return NULL;
}

char *s3x_text(s3x_doc *doc, s3x_node *parent, const char *name)
{
    xmlNodePtr c = s3x_child(doc, parent, name);
    if (!c)
        return NULL;
    xmlChar *t = xmlNodeGetContent(c);
    char *r = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return r;
}

int s3x_text_buf(s3x_doc *doc, s3x_node *parent, const char *name, char *out, size_t cap)
{
    char *t = s3x_text(doc, parent, name);
    if (!t)
        return 0;
    snprintf(out, cap, "%s", t);
    free(t);
    return 1;
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

/* ---- the AWS shared config/credentials files: inih ------------------------------ */

typedef struct ini_want {
    const char *section, *key;
    char *out;
    size_t cap;
    int found;
} ini_want;

/* Section names compare without surrounding blanks, as the AWS CLI reads them. */
static int same_section(const char *a, const char *b)
{
    while (*a == ' ' || *a == '\t')
        a++;
    size_t n = strlen(a);
    while (n && (a[n - 1] == ' ' || a[n - 1] == '\t'))
        n--;
    return strlen(b) == n && !strncmp(a, b, n);
}

static int ini_take(void *ud, const char *section, const char *name, const char *value)
{
    ini_want *w = ud;
    if (same_section(section, w->section) && !strcmp(name, w->key)) {
        snprintf(w->out, w->cap, "%s", value ? value : "");
        w->found = 1; /* the last one wins, as in the AWS CLI */
    }
    return 1;
}

int s3_ini_get(const char *text, const char *section, const char *key, char *out, size_t cap)
{
    ini_want w = {section, key, out, cap, 0};
    ini_parse_string(text, ini_take, &w);
    return w.found;
}

/* ---- instance metadata JSON: jansson ----------------------------------------------- */

int s3_json_str(const char *json, const char *key, char *out, size_t cap)
{
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    const char *v = json_string_value(json_object_get(root, key));
    if (v)
        snprintf(out, cap, "%s", v);
    json_decref(root);
    return v != NULL;
}

uint64_t s3_part_size_for(uint64_t base, uint32_t n)
{
    uint32_t step = n ? (n - 1) / S3_PART_STEP : 0;
    uint64_t size = base < S3_MIN_PART ? S3_MIN_PART : base;
    for (uint32_t i = 0; i < step && size < S3_MAX_PART; i++)
        size *= 2;
    return size > S3_MAX_PART ? S3_MAX_PART : size;
}
