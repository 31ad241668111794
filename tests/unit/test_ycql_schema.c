/* ycql plugin, the schema's DDL (plugins/ycql/schema.c) from a schema built here, with
 * no server: names quoted where CQL needs it, literals with quotes doubled, the keyspace
 * renamed, composite keys and clustering order, static columns, custom indexes, indexes
 * apart from the rest, and types put after the types their fields use (a cycle refused).
 * Reading system_schema for real is in tests/e2e/cql_peers.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/common/pc_buf.c"
#include "../../plugins/ycql/cqlconn.c"
#include "../../plugins/ycql/cqlwire.c"
#include "../../plugins/ycql/schema.c"
#include "../../plugins/ycql/export.c"
#include "../../plugins/ycql/ranges.c"
#include "../../plugins/ycql/rows.c"

static ycql_column col(const char *name, const char *kind, int pos, const char *order, const char *type)
{
    ycql_column c = {strdup(name), strdup(kind), strdup(type), strdup(order), pos};
    return c;
}

static char **strs(int n, ...)
{
    va_list ap;
    char **v = calloc((size_t)n + 1, sizeof *v);
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        v[i] = strdup(va_arg(ap, const char *));
    va_end(ap);
    return v;
}

static void build(ycql_schema *s)
{
    memset(s, 0, sizeof *s);
    s->keyspace = strdup("shop");
    s->replication = strdup("{'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '1'}");
    s->durable_writes = 1;
    s->ntypes = 3; /* as system_schema lists them: by name */
    s->types = calloc(3, sizeof *s->types);
    s->types[0] = (ycql_udt){strdup("Address"), strs(2, "street", "geo"), strs(2, "text", "frozen<point>"), 2};
    s->types[1] = (ycql_udt){strdup("order_line"), strs(2, "sku", "ship_to"), strs(2, "text", "frozen<\"Address\">"), 2};
    s->types[2] = (ycql_udt){strdup("point"), strs(2, "x", "y"), strs(2, "double", "double"), 2};
    s->ntables = 1;
    s->tables = calloc(1, sizeof *s->tables);
    ycql_table *t = &s->tables[0];
    t->name = strdup("Orders");
    t->comment = strdup("it's the orders");
    t->default_ttl = 86400;
    t->ncols = 6;
    t->cols = calloc(6, sizeof *t->cols);
    t->cols[0] = col("customer", "partition_key", 0, "none", "uuid");
    t->cols[1] = col("Region", "partition_key", 1, "none", "text");
    t->cols[2] = col("placed", "clustering", 0, "desc", "timestamp");
    t->cols[3] = col("id", "clustering", 1, "asc", "timeuuid");
    t->cols[4] = col("note", "static", 0, "none", "text");
    t->cols[5] = col("lines", "regular", -1, "none", "list<frozen<order_line>>");
    s->nindexes = 2;
    s->indexes = calloc(2, sizeof *s->indexes);
    s->indexes[0] = (ycql_index){strdup("orders_note"), strdup("Orders"), strdup("COMPOSITES"), strdup("note")};
    s->indexes[1] = (ycql_index){strdup("orders_lines"), strdup("Orders"),
                                 strdup("CUSTOM:org.apache.cassandra.index.sai.StorageAttachedIndex"),
                                 strdup("values(lines)")};
}

/* the export's columns: keys first in key order, then static and regular by name; write time
 * and TTL for the cells that have one (not collections, counters, non-frozen user types) */
static void export_columns_and_select(void **state)
{
    (void)state;
    ycql_schema s;
    build(&s);
    ycql_table *t = &s.tables[0];
    t->cols = realloc(t->cols, 9 * sizeof *t->cols);
    t->cols[6] = col("addr", "regular", -1, "none", "\"Address\"");
    t->cols[7] = col("Total", "regular", -1, "none", "decimal");
    t->cols[8] = col("hits", "regular", -1, "none", "counter");
    t->ncols = 9;
    uint16_t n;
    yr_col *v = ycql_row_columns(&s, t, 1, &n);
    assert_non_null(v);
    assert_int_equal(n, 9);
    static const char *const names[] = {"customer", "Region", "placed", "id", "note", "Total", "addr", "hits", "lines"};
    static const int kinds[] = {YR_PARTITION, YR_PARTITION, YR_CLUSTERING, YR_CLUSTERING, YR_STATIC,
                                YR_REGULAR, YR_REGULAR, YR_REGULAR, YR_REGULAR};
    static const int metas[] = {0, 0, 0, 0, 1, 1, 0, 0, 0};
    for (int i = 0; i < 9; i++) {
        assert_string_equal(v[i].name, names[i]);
        assert_int_equal(v[i].kind, kinds[i]);
        if (v[i].meta != metas[i])
            fail_msg("%s: meta %d", names[i], v[i].meta);
    }
    ycql_range r[2];
    ycql_split_tokens(2, r);
    char *q = ycql_select("Shop", t, v, n, &r[1], 0);
    assert_string_equal(q, "SELECT customer, \"Region\", placed, id, note, \"Total\", addr, hits, lines, "
                           "writetime(note), ttl(note), writetime(\"Total\"), ttl(\"Total\") FROM \"Shop\".\"Orders\" "
                           "WHERE token(customer, \"Region\") > ? AND token(customer, \"Region\") <= ?");
    free(q);
    ycql_row_columns_free(v, n);
    /* without write time and TTL: no meta at all */
    v = ycql_row_columns(&s, t, 0, &n);
    for (int i = 0; i < 9; i++)
        assert_int_equal(v[i].meta, 0);
    q = ycql_select("shop", t, v, n, &r[0], 1);
    assert_non_null(strstr(q, "lines FROM shop.\"Orders\" WHERE partition_hash(customer, \"Region\") >= ?"));
    free(q);
    ycql_row_columns_free(v, n);
    ycql_schema_free(&s);
}

static void ddl_recreates_types_in_order_tables_and_indexes_under_another_name(void **state)
{
    (void)state;
    ycql_schema s;
    char err[200];
    build(&s);
    assert_int_equal(order_types(&s, err, sizeof err), 0);
    char *ddl = ycql_schema_ddl(&s, "Shop Copy", 0);
    assert_non_null(ddl);
    assert_string_equal(ddl,
        "CREATE KEYSPACE \"Shop Copy\" WITH replication = {'class': 'org.apache.cassandra.locator.SimpleStrategy', "
        "'replication_factor': '1'} AND durable_writes = true;\n"
        "CREATE TYPE \"Shop Copy\".point (x double, y double);\n"
        "CREATE TYPE \"Shop Copy\".\"Address\" (street text, geo frozen<point>);\n"
        "CREATE TYPE \"Shop Copy\".order_line (sku text, ship_to frozen<\"Address\">);\n"
        "CREATE TABLE \"Shop Copy\".\"Orders\" (\n"
        "    customer uuid,\n"
        "    \"Region\" text,\n"
        "    placed timestamp,\n"
        "    id timeuuid,\n"
        "    note text STATIC,\n"
        "    lines list<frozen<order_line>>,\n"
        "    PRIMARY KEY ((customer, \"Region\"), placed, id)\n"
        ") WITH CLUSTERING ORDER BY (placed DESC, id ASC)\n"
        "    AND default_time_to_live = 86400\n"
        "    AND comment = 'it''s the orders';\n");
    free(ddl);
    ddl = ycql_schema_ddl(&s, NULL, 2);
    assert_string_equal(ddl, "CREATE INDEX orders_note ON shop.\"Orders\" (note);\n"
                             "CREATE CUSTOM INDEX orders_lines ON shop.\"Orders\" (values(lines)) USING "
                             "'org.apache.cassandra.index.sai.StorageAttachedIndex';\n");
    free(ddl);
    ycql_schema_free(&s);
}

static void a_single_partition_key_without_clustering_has_no_order_clause(void **state)
{
    (void)state;
    ycql_schema s;
    build(&s);
    ycql_table *t = &s.tables[0];
    for (size_t i = 1; i < t->ncols; i++) { /* keep the first column only, plus one regular */
        free(t->cols[i].name);
        free(t->cols[i].kind);
        free(t->cols[i].type);
        free(t->cols[i].order);
    }
    t->cols[1] = col("n", "regular", -1, "none", "counter");
    t->ncols = 2;
    t->default_ttl = 0;
    free(t->comment);
    t->comment = strdup("");
    s.nindexes = 0;
    for (size_t i = 0; i < 2; i++) {
        free(s.indexes[i].name);
        free(s.indexes[i].table);
        free(s.indexes[i].kind);
        free(s.indexes[i].target);
    }
    char *ddl = ycql_schema_ddl(&s, NULL, 1);
    assert_non_null(strstr(ddl, "CREATE TABLE shop.\"Orders\" (\n    customer uuid,\n    n counter,\n"
                                "    PRIMARY KEY (customer)\n) WITH default_time_to_live = 0\n    AND comment = '';\n"));
    assert_null(strstr(ddl, "CLUSTERING"));
    free(ddl);
    ycql_schema_free(&s);
}

static void types_that_use_each_other_in_a_cycle_are_refused(void **state)
{
    (void)state;
    ycql_schema s;
    char err[200];
    build(&s);
    free(s.types[2].types[0]);
    s.types[2].types[0] = strdup("frozen<order_line>"); /* point -> order_line -> Address -> point */
    assert_int_equal(order_types(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "cycle"));
    /* a name that only contains another type's name is not a use of it */
    assert_false(uses_type("frozen<points>", "point"));
    assert_true(uses_type("map<text, frozen<point>>", "point"));
    assert_false(uses_type("frozen<\"Point\">", "point"));
    assert_true(uses_type("frozen<\"Address\">", "Address"));
    ycql_schema_free(&s);
}

static void cells_of_system_schema_decode_and_bad_ones_are_refused(void **state)
{
    (void)state;
    /* map<text, text> {'class': 'S', 'rf': '1'} as the server sends it */
    static const unsigned char m[] = {0, 0, 0, 2, 0, 0, 0, 5, 'c', 'l', 'a', 's', 's', 0, 0, 0, 1, 'S',
                                      0, 0, 0, 2, 'r', 'f', 0, 0, 0, 1, '1'};
    size_t n;
    char **v = cell_strings(m, sizeof m, 1, &n);
    assert_non_null(v);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "class");
    assert_string_equal(v[3], "1");
    free_strings(v, n);
    assert_null(cell_strings(m, sizeof m - 1, 1, &n)); /* cut short */
    static const unsigned char huge[] = {0x7f, 0xff, 0xff, 0xff};
    assert_null(cell_strings(huge, sizeof huge, 0, &n));
    static const unsigned char nul[] = {0, 0, 0, 1, 0, 0, 0, 2, 'a', 0};
    assert_null(cell_strings(nul, sizeof nul, 0, &n));
    static const unsigned char i4[] = {0, 1, 0x51, 0x80};
    assert_int_equal(cell_int(i4, 4), 86400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ddl_recreates_types_in_order_tables_and_indexes_under_another_name),
        cmocka_unit_test(export_columns_and_select),
        cmocka_unit_test(a_single_partition_key_without_clustering_has_no_order_clause),
        cmocka_unit_test(types_that_use_each_other_in_a_cycle_are_refused),
        cmocka_unit_test(cells_of_system_schema_decode_and_bad_ones_are_refused),
    };
    return cmocka_run_group_tests_name("ycql_schema", tests, NULL, NULL);
}
