/* ysql plugin: the table catalog (schema/catalog.json) - every table the backup
 * selected with what a restore needs before the data arrives: columns, owned
 * sequences, the names of its indexes, constraints, triggers, policies and
 * rules (to pick its entries out of the schema scripts), partition parent and
 * number of data slices. */
#include "pure.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT_FORMAT 1

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (; a && v && *v; v++)
        if (json_array_append_new(a, json_string(*v)) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

char *cat_to_json(const catalog *c)
{
    json_t *root = json_object(), *tables = json_array();
    if (!root || !tables) {
        json_decref(root);
        json_decref(tables);
        return NULL;
    }
    json_object_set_new(root, "format", json_integer(CAT_FORMAT));
    json_object_set_new(root, "tables", tables);
    for (size_t i = 0; i < c->n; i++) {
        const cat_table *t = &c->v[i];
        json_t *o = json_object();
        if (!o)
            break;
        char kind[2] = {t->kind, 0};
        json_object_set_new(o, "schema", json_string(t->schema));
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "kind", json_string(kind));
        if (t->parent_name) {
            json_object_set_new(o, "parent_schema", json_string(t->parent_schema));
            json_object_set_new(o, "parent_name", json_string(t->parent_name));
        }
        json_object_set_new(o, "columns", strv_json(t->columns));
        json_object_set_new(o, "sequences", strv_json(t->sequences));
        json_object_set_new(o, "indexes", strv_json(t->indexes));
        json_object_set_new(o, "constraints", strv_json(t->constraints));
        json_object_set_new(o, "triggers", strv_json(t->triggers));
        json_object_set_new(o, "policies", strv_json(t->policies));
        json_object_set_new(o, "rules", strv_json(t->rules));
        json_object_set_new(o, "slices", json_integer(t->slices));
        json_object_set_new(o, "bytes", json_integer(t->bytes));
        json_array_append_new(tables, o);
    }
    char *text = json_array_size(tables) == c->n ? json_dumps(root, JSON_INDENT(1) | JSON_ENSURE_ASCII)
                                                 : NULL;
    json_decref(root);
    return text;
}

static int json_strv(json_t *o, const char *key, char ***out)
{
    json_t *a = json_object_get(o, key);
    *out = NULL;
    if (!json_is_array(a))
        return -1;
    char **v = calloc(json_array_size(a) + 1, sizeof *v);
    if (!v)
        return -1;
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) {
        if (!json_is_string(x) || !(v[i] = strdup(json_string_value(x)))) {
            ysql_strv_free(v);
            return -1;
        }
    }
    *out = v;
    return 0;
}

static char *json_str(json_t *o, const char *key)
{
    json_t *s = json_object_get(o, key);
    return json_is_string(s) ? strdup(json_string_value(s)) : NULL;
}

static void table_free(cat_table *t)
{
    free(t->schema);
    free(t->name);
    free(t->parent_schema);
    free(t->parent_name);
    ysql_strv_free(t->columns);
    ysql_strv_free(t->sequences);
    ysql_strv_free(t->indexes);
    ysql_strv_free(t->constraints);
    ysql_strv_free(t->triggers);
    ysql_strv_free(t->policies);
    ysql_strv_free(t->rules);
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
    if (!json_is_integer(fmt) || json_integer_value(fmt) != CAT_FORMAT || !json_is_array(tables)) {
        snprintf(err, errlen, "schema/catalog.json: unknown catalog format (this arca reads format %d)",
                 CAT_FORMAT);
        json_decref(root);
        return -1;
    }
    c->v = calloc(json_array_size(tables) + 1, sizeof *c->v);
    if (!c->v) {
        snprintf(err, errlen, "out of memory");
        json_decref(root);
        return -1;
    }
    size_t i;
    json_t *o;
    json_array_foreach(tables, i, o) {
        cat_table *t = &c->v[c->n++];
        char *kind = json_str(o, "kind");
        json_t *slices = json_object_get(o, "slices"), *bytes = json_object_get(o, "bytes");
        t->schema = json_str(o, "schema");
        t->name = json_str(o, "name");
        t->kind = kind && strlen(kind) == 1 ? kind[0] : 0;
        free(kind);
        t->parent_schema = json_str(o, "parent_schema");
        t->parent_name = json_str(o, "parent_name");
        t->slices = json_is_integer(slices) ? (int)json_integer_value(slices) : -1;
        t->bytes = json_is_integer(bytes) ? (int64_t)json_integer_value(bytes) : 0;
        if (!t->schema || !t->name || (t->kind != 'r' && t->kind != 'p') || t->slices < 0 ||
            (!t->parent_schema) != (!t->parent_name) || json_strv(o, "columns", &t->columns) ||
            json_strv(o, "sequences", &t->sequences) || json_strv(o, "indexes", &t->indexes) ||
            json_strv(o, "constraints", &t->constraints) || json_strv(o, "triggers", &t->triggers) ||
            json_strv(o, "policies", &t->policies) || json_strv(o, "rules", &t->rules)) {
            snprintf(err, errlen, "schema/catalog.json: table %zu is malformed", i);
            json_decref(root);
            cat_free(c);
            return -1;
        }
    }
    json_decref(root);
    return 0;
}

void cat_free(catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        table_free(&c->v[i]);
    free(c->v);
    *c = (catalog){0};
}

cat_table *cat_find(const catalog *c, const char *schema, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].schema, schema) && !strcmp(c->v[i].name, name))
            return &c->v[i];
    return NULL;
}
