/* ysql plugin: the table catalog (schema/catalog.json) - every table the backup
 * selected with what a restore needs before the data arrives (columns, owned
 * sequences and indexes to pick its entries out of the schema scripts,
 * partition parent, number of data objects), the database's own properties,
 * the roles the backup names and how many large objects it holds. Format 2
 * (this arca) drops format 1's lists of constraint, trigger, policy and rule
 * names (entries are matched through their SQL now) and reads both. */
#include "pure.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT_FORMAT 2

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (; a && v && *v; v++) {
        json_t *s = json_string(*v);
        if (!s || json_array_append_new(a, s) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* json_object_set_new that remembers a failure (a NULL value: oom or a name
 * that is not UTF-8). */
static void put(json_t *o, const char *key, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, key, v) < 0)
        *bad = 1;
}

static json_t *table_json(const cat_table *t)
{
    json_t *o = json_object();
    int bad = !o;
    if (bad)
        return NULL;
    char kind[2] = {t->kind, 0};
    put(o, "schema", json_string(t->schema), &bad);
    put(o, "name", json_string(t->name), &bad);
    put(o, "kind", json_string(kind), &bad);
    if (t->parent_name) {
        put(o, "parent_schema", json_string(t->parent_schema), &bad);
        put(o, "parent_name", json_string(t->parent_name), &bad);
    }
    put(o, "columns", strv_json(t->columns), &bad);
    if (t->wide)
        put(o, "wide", json_string(t->wide), &bad);
    if (t->sequences && t->sequences[0])
        put(o, "sequences", strv_json(t->sequences), &bad);
    if (t->indexes && t->indexes[0])
        put(o, "indexes", strv_json(t->indexes), &bad);
    put(o, "slices", json_integer(t->slices), &bad);
    put(o, "bytes", json_integer(t->bytes), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *database_json(const cat_database *d)
{
    json_t *o = json_object(), *acl = json_array(), *set = json_array();
    int bad = !o || !acl || !set;
    put(o, "owner", d->owner ? json_string(d->owner) : json_null(), &bad);
    put(o, "comment", d->comment ? json_string(d->comment) : json_null(), &bad);
    put(o, "connection_limit", json_integer(d->connlimit), &bad);
    for (size_t i = 0; !bad && i < d->nacl; i++) {
        const cat_acl *a = &d->acl[i];
        json_t *x = json_pack("{s:s, s:s, s:s, s:b}", "grantor", a->grantor, "grantee", a->grantee,
                              "privilege", a->privilege, "grantable", a->grantable);
        if (!x || json_array_append_new(acl, x) < 0)
            bad = 1;
    }
    if (d->acl_default) {
        json_decref(acl);
        acl = json_null();
    }
    put(o, "acl", acl, &bad);
    for (size_t i = 0; !bad && i < d->nsettings; i++) {
        const cat_setting *s = &d->settings[i];
        json_t *x = json_pack("{s:s?, s:s, s:s}", "role", s->role, "name", s->name, "value", s->value);
        if (!x || json_array_append_new(set, x) < 0)
            bad = 1;
    }
    put(o, "settings", set, &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *cat_to_json(const catalog *c)
{
    json_t *root = json_object(), *tables = json_array(), *roles = json_array();
    int bad = !root || !tables || !roles;
    put(root, "format", json_integer(CAT_FORMAT), &bad);
    if (c->db.present)
        put(root, "database", database_json(&c->db), &bad);
    for (size_t i = 0; !bad && i < c->nroles; i++) {
        json_t *x = json_pack("{s:s, s:s}", "name", c->roles[i].name, "uses", c->roles[i].uses);
        if (!x || json_array_append_new(roles, x) < 0)
            bad = 1;
    }
    put(root, "roles", roles, &bad);
    put(root, "large_objects", json_integer(c->large_objects > 0 ? c->large_objects : 0), &bad);
    put(root, "tables", tables, &bad);
    for (size_t i = 0; !bad && i < c->n; i++) {
        json_t *o = table_json(&c->v[i]);
        if (!o || json_array_append_new(tables, o) < 0)
            bad = 1;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    return text;
}

static int json_strv(json_t *o, const char *key, char ***out, int optional)
{
    json_t *a = json_object_get(o, key);
    *out = NULL;
    if (!a && optional)
        a = json_array();
    else if (!json_is_array(a))
        return -1;
    else
        json_incref(a);
    char **v = a ? calloc(json_array_size(a) + 1, sizeof *v) : NULL;
    if (!v) {
        json_decref(a);
        return -1;
    }
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) {
        if (!json_is_string(x) || !(v[i] = strdup(json_string_value(x)))) {
            ysql_strv_free(v);
            json_decref(a);
            return -1;
        }
    }
    json_decref(a);
    *out = v;
    return 0;
}

static char *json_str(json_t *o, const char *key)
{
    json_t *s = json_object_get(o, key);
    return json_is_string(s) ? strdup(json_string_value(s)) : NULL;
}

void cat_table_free(cat_table *t)
{
    free(t->schema);
    free(t->name);
    free(t->parent_schema);
    free(t->parent_name);
    free(t->wide);
    ysql_strv_free(t->columns);
    ysql_strv_free(t->sequences);
    ysql_strv_free(t->indexes);
}

static int table_from_json(json_t *o, cat_table *t)
{
    char *kind = json_str(o, "kind");
    json_t *slices = json_object_get(o, "slices"), *bytes = json_object_get(o, "bytes");
    t->schema = json_str(o, "schema");
    t->name = json_str(o, "name");
    t->kind = kind && strlen(kind) == 1 ? kind[0] : 0;
    free(kind);
    t->parent_schema = json_str(o, "parent_schema");
    t->parent_name = json_str(o, "parent_name");
    t->wide = json_str(o, "wide");
    t->slices = json_is_integer(slices) ? (int)json_integer_value(slices) : -1;
    t->bytes = json_is_integer(bytes) ? (int64_t)json_integer_value(bytes) : 0;
    if (!t->schema || !t->name || (t->kind != 'r' && t->kind != 'p') || t->slices < 0 ||
        (!t->parent_schema) != (!t->parent_name) || json_strv(o, "columns", &t->columns, 0) ||
        json_strv(o, "sequences", &t->sequences, 1) || json_strv(o, "indexes", &t->indexes, 1))
        return -1;
    size_t ncol = 0;
    while (t->columns[ncol])
        ncol++;
    return t->wide && strlen(t->wide) != ncol ? -1 : 0;
}

static int database_from_json(json_t *o, cat_database *d)
{
    json_t *acl = json_object_get(o, "acl"), *set = json_object_get(o, "settings");
    json_t *lim = json_object_get(o, "connection_limit");
    d->present = 1;
    d->owner = json_str(o, "owner");
    d->comment = json_str(o, "comment");
    d->connlimit = json_is_integer(lim) ? (int64_t)json_integer_value(lim) : -1;
    d->acl_default = json_is_null(acl);
    if ((!d->acl_default && !json_is_array(acl)) || !json_is_array(set))
        return -1;
    if (!d->acl_default) {
        d->acl = calloc(json_array_size(acl) + 1, sizeof *d->acl);
        if (!d->acl)
            return -1;
        size_t i;
        json_t *x;
        json_array_foreach(acl, i, x) {
            cat_acl *a = &d->acl[d->nacl++];
            a->grantor = json_str(x, "grantor");
            a->grantee = json_str(x, "grantee");
            a->privilege = json_str(x, "privilege");
            a->grantable = json_is_true(json_object_get(x, "grantable"));
            if (!a->grantor || !a->grantee || !a->privilege)
                return -1;
        }
    }
    d->settings = calloc(json_array_size(set) + 1, sizeof *d->settings);
    if (!d->settings)
        return -1;
    size_t i;
    json_t *x;
    json_array_foreach(set, i, x) {
        cat_setting *s = &d->settings[d->nsettings++];
        s->role = json_str(x, "role");
        s->name = json_str(x, "name");
        s->value = json_str(x, "value");
        if (!s->name || !s->value)
            return -1;
    }
    return 0;
}

int cat_from_json(const char *text, size_t len, catalog *c, char *err, size_t errlen)
{
    *c = (catalog){0};
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) {
        snprintf(err, errlen, "schema/catalog.json is not JSON: %s (line %d)", je.text, je.line);
        return -1;
    }
    json_t *tables = json_object_get(root, "tables");
    json_t *fmt = json_object_get(root, "format");
    if (!json_is_integer(fmt) || json_integer_value(fmt) < 1 || json_integer_value(fmt) > CAT_FORMAT ||
        !json_is_array(tables)) {
        snprintf(err, errlen, "schema/catalog.json: unknown catalog format (this arca reads formats 1 "
                 "to %d)", CAT_FORMAT);
        json_decref(root);
        return -1;
    }
    c->format = (int)json_integer_value(fmt);
    json_t *lo = json_object_get(root, "large_objects");
    c->large_objects = c->format == 1 ? -1 : json_is_integer(lo) ? (int64_t)json_integer_value(lo) : 0;
    const char *what = "out of memory";
    c->v = calloc(json_array_size(tables) + 1, sizeof *c->v);
    int rc = c->v ? 0 : -1;
    size_t i;
    json_t *o;
    json_array_foreach(tables, i, o) {
        if (rc < 0)
            break;
        if (table_from_json(o, &c->v[c->n++]) < 0) {
            snprintf(err, errlen, "schema/catalog.json: table %zu is malformed", i);
            what = NULL;
            rc = -1;
        }
    }
    json_t *db = json_object_get(root, "database");
    if (rc == 0 && db && database_from_json(db, &c->db) < 0) {
        snprintf(err, errlen, "schema/catalog.json: the database's properties are malformed");
        what = NULL;
        rc = -1;
    }
    json_t *roles = json_object_get(root, "roles");
    json_array_foreach(roles, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *uses = json_string_value(json_object_get(o, "uses"));
        if (rc < 0)
            break;
        if (!name || !uses) {
            snprintf(err, errlen, "schema/catalog.json: role %zu is malformed", i);
            what = NULL;
            rc = -1;
        }
        for (const char *u = uses; rc == 0 && *u; u++)
            rc = cat_role_use(c, name, *u);
    }
    if (rc < 0 && what)
        snprintf(err, errlen, "%s", what);
    json_decref(root);
    if (rc < 0)
        cat_free(c);
    return rc;
}

/* ---- lookups ---------------------------------------------------------------------- */

/* Open addressing over "K schema\0name" keys (K: t table, i index, s sequence). */
typedef struct cat_slot {
    char *key;
    size_t keylen;
    size_t table;
} cat_slot;

struct cat_index {
    cat_slot *slots;
    size_t cap; /* a power of two */
};

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static char *make_key(char kind, const char *schema, const char *name, size_t *n)
{
    size_t a = strlen(schema), b = strlen(name);
    char *k = malloc(a + b + 3);
    if (!k)
        return NULL;
    k[0] = kind;
    memcpy(k + 1, schema, a + 1);
    memcpy(k + 2 + a, name, b);
    *n = a + b + 2;
    return k;
}

static int idx_put(cat_index *x, char kind, const char *schema, const char *name, size_t table)
{
    size_t n;
    char *k = make_key(kind, schema, name, &n);
    if (!k)
        return -1;
    for (size_t h = key_hash(k, n) & (x->cap - 1);; h = (h + 1) & (x->cap - 1)) {
        cat_slot *s = &x->slots[h];
        if (!s->key) {
            *s = (cat_slot){k, n, table};
            return 0;
        }
        if (s->keylen == n && !memcmp(s->key, k, n)) { /* first one wins */
            free(k);
            return 0;
        }
    }
}

static void idx_free(cat_index *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->cap; i++)
        free(x->slots[i].key);
    free(x->slots);
    free(x);
}

static cat_index *idx_build(const catalog *c)
{
    size_t keys = 0;
    for (size_t i = 0; i < c->n; i++) {
        keys++;
        for (char **s = c->v[i].indexes; s && *s; s++)
            keys++;
        for (char **s = c->v[i].sequences; s && *s; s++)
            keys++;
    }
    cat_index *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    for (x->cap = 16; x->cap < keys * 2; x->cap *= 2)
        ;
    if (!(x->slots = calloc(x->cap, sizeof *x->slots))) {
        free(x);
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        const cat_table *t = &c->v[i];
        rc = idx_put(x, 't', t->schema, t->name, i);
        for (char **s = t->indexes; rc == 0 && s && *s; s++)
            rc = idx_put(x, 'i', t->schema, *s, i);
        for (char **s = t->sequences; rc == 0 && s && *s; s++)
            rc = idx_put(x, 's', t->schema, *s, i);
    }
    if (rc < 0) {
        idx_free(x);
        return NULL;
    }
    return x;
}

static cat_table *lookup(catalog *c, char kind, const char *schema, const char *name)
{
    if (!c->idx && !(c->idx = idx_build(c)))
        return NULL;
    size_t n;
    char *k = make_key(kind, schema, name, &n);
    if (!k)
        return NULL;
    cat_table *t = NULL;
    for (size_t h = key_hash(k, n) & (c->idx->cap - 1);; h = (h + 1) & (c->idx->cap - 1)) {
        cat_slot *s = &c->idx->slots[h];
        if (!s->key)
            break;
        if (s->keylen == n && !memcmp(s->key, k, n)) {
            t = &c->v[s->table];
            break;
        }
    }
    free(k);
    return t;
}

cat_table *cat_find(catalog *c, const char *schema, const char *name)
{
    return lookup(c, 't', schema, name);
}

cat_table *cat_find_index(catalog *c, const char *schema, const char *name)
{
    return lookup(c, 'i', schema, name);
}

cat_table *cat_find_sequence(catalog *c, const char *schema, const char *name)
{
    return lookup(c, 's', schema, name);
}

int cat_role_use(catalog *c, const char *name, char use)
{
    cat_role *r = NULL;
    for (size_t i = 0; i < c->nroles && !r; i++)
        if (!strcmp(c->roles[i].name, name))
            r = &c->roles[i];
    if (!r) {
        cat_role *v = realloc(c->roles, (c->nroles + 1) * sizeof *v);
        if (!v)
            return -1;
        c->roles = v;
        r = &v[c->nroles];
        *r = (cat_role){0};
        if (!(r->name = strdup(name)))
            return -1;
        c->nroles++;
    }
    if (!strchr(r->uses, use) && strlen(r->uses) + 1 < sizeof r->uses)
        r->uses[strlen(r->uses)] = use;
    return 0;
}

void cat_free(catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        cat_table_free(&c->v[i]);
    free(c->v);
    free(c->db.owner);
    free(c->db.comment);
    for (size_t i = 0; i < c->db.nacl; i++) {
        free(c->db.acl[i].grantor);
        free(c->db.acl[i].grantee);
        free(c->db.acl[i].privilege);
    }
    free(c->db.acl);
    for (size_t i = 0; i < c->db.nsettings; i++) {
        free(c->db.settings[i].role);
        free(c->db.settings[i].name);
        free(c->db.settings[i].value);
    }
    free(c->db.settings);
    for (size_t i = 0; i < c->nroles; i++)
        free(c->roles[i].name);
    free(c->roles);
    idx_free(c->idx);
    *c = (catalog){0};
}
