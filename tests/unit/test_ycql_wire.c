/* ycql plugin, the CQL wire format (plugins/ycql/cqlwire.c) with no server: requests
 * byte for byte as native_protocol_v4.spec lays them out (its STARTUP example), response
 * headers, RESULT Rows and Prepared metadata with nested collection, UDT, tuple, custom
 * and JSONB types, ERROR bodies with their extras, and every truncation of a valid Rows
 * body refused without reading past it (each prefix in a buffer of its own size, so that
 * valgrind sees any overread). Each test's name says what it pins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/ycql/cqlwire.c"

static void startup_frame_is_the_specs_example(void **state)
{
    (void)state;
    static const unsigned char want[] = {0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x16, 0x00, 0x01,
                                         0x00, 0x0b, 'C',  'Q',  'L',  '_',  'V',  'E',  'R',  'S',  'I',
                                         'O',  'N',  0x00, 0x05, '3',  '.',  '0',  '.',  '0'};
    cql_buf b = {0};
    assert_int_equal(cql_req_startup(&b, 4, 0), 0);
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    /* a second frame in the same buffer gets its own length */
    assert_int_equal(cql_req_options(&b, 4, 7), 0);
    static const unsigned char opt[] = {0x04, 0x00, 0x00, 0x07, 0x05, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(b.len, sizeof want + sizeof opt);
    assert_memory_equal(b.p + sizeof want, opt, sizeof opt);
    cql_buf_free(&b);
}

static void response_headers_parse_and_bad_ones_are_refused(void **state)
{
    (void)state;
    cql_header h;
    const char *why = NULL;
    static const unsigned char ready[] = {0x84, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(cql_header_parse(ready, &h, &why), 0);
    assert_true(h.response);
    assert_int_equal(h.version, 4);
    assert_int_equal(h.opcode, CQL_OP_READY);
    assert_int_equal(h.length, 0);
    static const unsigned char event[] = {0x83, 0x08, 0xff, 0xff, 0x0c, 0x00, 0x00, 0x01, 0x00};
    assert_int_equal(cql_header_parse(event, &h, &why), 0);
    assert_int_equal(h.stream, -1);
    assert_int_equal(h.version, 3);
    assert_int_equal(h.flags, CQL_FLAG_WARNING);
    assert_int_equal(h.length, 256);
    static const unsigned char v5[] = {0x85, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(cql_header_parse(v5, &h, &why), -1);
    assert_non_null(strstr(why, "version"));
    static const unsigned char big[] = {0x84, 0x00, 0x00, 0x01, 0x08, 0x10, 0x00, 0x00, 0x01};
    assert_int_equal(cql_header_parse(big, &h, &why), -1);
    assert_non_null(strstr(why, "256 MiB"));
}

static void auth_response_is_sasl_plain_and_the_buffer_can_be_wiped(void **state)
{
    (void)state;
    cql_buf b = {0};
    assert_int_equal(cql_req_auth_plain(&b, 4, 1, "user", "pässword"), 0);
    static const unsigned char want[] = {0x04, 0x00, 0x00, 0x01, 0x0f, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x0f,
                                         0x00, 'u',  's',  'e',  'r',  0x00, 'p',  0xc3, 0xa4, 's',  's',  'w',  'o',
                                         'r',  'd'};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    cql_buf_wipe(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
}

static void query_and_execute_carry_consistency_values_paging_and_timestamp(void **state)
{
    (void)state;
    cql_buf b = {0}, v = {0};
    static const unsigned char ps[] = {1, 2, 3};
    cql_params qp = {.consistency = CQL_QUORUM, .page_size = 100, .paging = ps, .paging_len = 3};
    assert_int_equal(cql_req_query(&b, 4, 2, "SELECT k FROM t", &qp), 0);
    static const unsigned char want[] = {0x04, 0x00, 0x00, 0x02, 0x07, 0x00, 0x00, 0x00, 0x21, /* header */
                                         0x00, 0x00, 0x00, 0x0f, 'S',  'E',  'L',  'E',  'C',  'T',  ' ',
                                         'k',  ' ',  'F',  'R',  'O',  'M',  ' ',  't',  /* query */
                                         0x00, 0x04, 0x0c,                               /* QUORUM, flags */
                                         0x00, 0x00, 0x00, 0x64,                         /* page size */
                                         0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03};      /* paging state */
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    cql_buf_free(&b);

    /* EXECUTE: two values (an int and a null), a default timestamp */
    int32_t one = 1;
    unsigned char be[4] = {0, 0, 0, (unsigned char)one};
    cql_put_bytes(&v, be, 4);
    cql_put_bytes(&v, NULL, -1);
    static const unsigned char id[] = {0xab, 0xcd};
    cql_params ep = {.consistency = CQL_LOCAL_ONE, .nvalues = 2, .values = &v, .timestamp = 1700000000000001};
    assert_int_equal(cql_req_execute(&b, 4, 3, id, 2, &ep), 0);
    static const unsigned char want2[] = {0x04, 0x00, 0x00, 0x03, 0x0a, 0x00, 0x00, 0x00, 0x1d, /* header */
                                          0x00, 0x02, 0xab, 0xcd,                               /* id */
                                          0x00, 0x0a, 0x21,                                     /* LOCAL_ONE, flags */
                                          0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
                                          0xff, 0xff, 0xff, 0xff,                               /* values */
                                          0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x40, 0x01};     /* timestamp */
    assert_int_equal(b.len, sizeof want2);
    assert_memory_equal(b.p, want2, sizeof want2);
    cql_buf_free(&b);
    cql_buf_free(&v);
}

/* BATCH, spec 4.1.7: an unlogged batch of a prepared statement (two values) and
 * a query text (none), QUORUM, a default timestamp; the count patched in */
static void batch_holds_prepared_and_text_statements_and_its_count(void **state)
{
    (void)state;
    cql_buf b = {0}, v = {0};
    unsigned char seven[4] = {0, 0, 0, 7};
    cql_put_bytes(&v, seven, 4);
    cql_put_bytes(&v, NULL, -1);
    static const unsigned char id[] = {0x01, 0x02, 0x03};
    cql_batch_begin(&b, 4, 5, CQL_BATCH_UNLOGGED);
    cql_batch_add_prepared(&b, id, 3, 2, v.p, v.len);
    cql_batch_add_query(&b, "DELETE", 0, NULL, 0);
    assert_int_equal(cql_batch_end(&b, 2, CQL_QUORUM, 258), 0);
    static const unsigned char want[] = {
        0x04, 0x00, 0x00, 0x05, 0x0d, 0x00, 0x00, 0x00, 0x2f, /* header: BATCH, 47 bytes */
        0x01, 0x00, 0x02,                                     /* UNLOGGED, 2 statements */
        0x01, 0x00, 0x03, 0x01, 0x02, 0x03,                   /* prepared, its id */
        0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x07, 0xff, 0xff, 0xff, 0xff, /* 2 values */
        0x00, 0x00, 0x00, 0x00, 0x06, 'D', 'E', 'L', 'E', 'T', 'E', 0x00, 0x00, /* text, no values */
        0x00, 0x04, 0x20,                                     /* QUORUM, flags: timestamp */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02};      /* timestamp */
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.p, want, sizeof want);
    cql_buf_free(&b);
    /* no statement, or a failed allocation: no frame */
    cql_batch_begin(&b, 4, 1, CQL_BATCH_LOGGED);
    assert_int_equal(cql_batch_end(&b, 0, CQL_ONE, 0), -1);
    cql_buf_free(&b);
    cql_buf_free(&v);
}

/* A RESULT Rows body: global spec k.t, more pages ("ps"), columns
 * a int, b list<map<text, k."Addr"(street text, zip int)>>, c tuple<int, blob>,
 * d 'org.apache.cassandra.db.marshal.DurationType', e jsonb; one row. */
static void rows_body(cql_buf *b)
{
    cql_put_i32(b, CQL_RESULT_ROWS);
    cql_put_i32(b, CQL_RF_GLOBAL_SPEC | CQL_RF_HAS_MORE_PAGES);
    cql_put_i32(b, 5);
    cql_put_bytes(b, "ps", 2);
    cql_put_string(b, "k");
    cql_put_string(b, "t");
    cql_put_string(b, "a");
    cql_put_u16(b, CQL_T_INT);
    cql_put_string(b, "b");
    cql_put_u16(b, CQL_T_LIST);
    cql_put_u16(b, CQL_T_MAP);
    cql_put_u16(b, CQL_T_VARCHAR);
    cql_put_u16(b, CQL_T_UDT);
    cql_put_string(b, "k");
    cql_put_string(b, "Addr");
    cql_put_u16(b, 2);
    cql_put_string(b, "street");
    cql_put_u16(b, CQL_T_VARCHAR);
    cql_put_string(b, "zip");
    cql_put_u16(b, CQL_T_INT);
    cql_put_string(b, "c");
    cql_put_u16(b, CQL_T_TUPLE);
    cql_put_u16(b, 2);
    cql_put_u16(b, CQL_T_INT);
    cql_put_u16(b, CQL_T_BLOB);
    cql_put_string(b, "d");
    cql_put_u16(b, CQL_T_CUSTOM);
    cql_put_string(b, "org.apache.cassandra.db.marshal.DurationType");
    cql_put_string(b, "e");
    cql_put_u16(b, CQL_T_JSONB);
    cql_put_i32(b, 1); /* rows */
    unsigned char a[4] = {0, 0, 0, 42};
    cql_put_bytes(b, a, 4);
    cql_put_bytes(b, "", 0);     /* b: empty, not null */
    cql_put_bytes(b, NULL, -1);  /* c: null */
    cql_put_bytes(b, "\x02\x04\x06", 3);
    cql_put_bytes(b, "{\"a\":1}", 7);
}

static void rows_metadata_reads_nested_types_and_the_cells_follow(void **state)
{
    (void)state;
    cql_buf b = {0};
    rows_body(&b);
    assert_false(b.oom);
    cql_rd r;
    cql_rd_init(&r, b.p, b.len);
    assert_int_equal(cql_get_i32(&r), CQL_RESULT_ROWS);
    cql_meta m;
    assert_int_equal(cql_get_meta(&r, &m), 0);
    assert_int_equal(m.ncols, 5);
    assert_int_equal(m.paging_len, 2);
    assert_memory_equal(m.paging, "ps", 2);
    char t[200];
    const char *want[] = {"int", "list<frozen<map<text, frozen<k.\"Addr\">>>>", "tuple<int, blob>",
                          "'org.apache.cassandra.db.marshal.DurationType'", "jsonb"};
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(m.cols[i].ks, "k");
        assert_string_equal(m.cols[i].table, "t");
        assert_string_equal(m.cols[i].name, names[i]);
        size_t n = cql_type_format(m.cols[i].type, t, sizeof t);
        assert_int_equal(n, strlen(want[i]));
        assert_string_equal(t, want[i]);
    }
    assert_string_equal(m.cols[1].type->sub[0]->sub[1]->fields[1], "zip");
    /* a buffer too small: truncated, NUL-terminated, the length it needed */
    assert_int_equal(cql_type_format(m.cols[1].type, t, 10), strlen(want[1]));
    assert_string_equal(t, "list<froz");
    assert_int_equal(cql_get_i32(&r), 1);
    int32_t n;
    const unsigned char *c = cql_get_bytes(&r, &n);
    assert_int_equal(n, 4);
    assert_int_equal(c[3], 42);
    c = cql_get_bytes(&r, &n);
    assert_non_null(c);
    assert_int_equal(n, 0); /* empty */
    c = cql_get_bytes(&r, &n);
    assert_null(c);
    assert_int_equal(n, -1); /* null */
    cql_get_bytes(&r, &n);
    c = cql_get_bytes(&r, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(c, "{\"a\":1}", 7);
    assert_null(r.err);
    assert_int_equal(r.off, r.len);
    cql_meta_free(&m);
    cql_buf_free(&b);
}

static void every_truncation_of_a_rows_body_is_refused_without_reading_past_it(void **state)
{
    (void)state;
    cql_buf b = {0};
    rows_body(&b);
    for (size_t k = 0; k < b.len; k++) {
        unsigned char *p = malloc(k ? k : 1);
        assert_non_null(p);
        memcpy(p, b.p, k);
        cql_rd r;
        cql_rd_init(&r, p, k);
        cql_get_i32(&r);
        cql_meta m;
        if (cql_get_meta(&r, &m) == 0) {
            int32_t rows = cql_get_i32(&r), n;
            for (int32_t i = 0; i < rows * m.ncols && !r.err; i++)
                cql_get_bytes(&r, &n);
            cql_meta_free(&m);
        }
        if (!r.err)
            fail_msg("a prefix of %zu of %zu bytes was read without an error", k, b.len);
        free(p);
    }
    cql_buf_free(&b);
}

static void types_too_deep_unknown_or_removed_are_refused(void **state)
{
    (void)state;
    cql_buf b = {0};
    for (int i = 0; i < 40; i++)
        cql_put_u16(&b, CQL_T_LIST);
    cql_put_u16(&b, CQL_T_INT);
    cql_rd r;
    cql_rd_init(&r, b.p, b.len);
    assert_null(cql_get_type(&r));
    assert_string_equal(r.err, "types nested too deep");
    cql_buf_free(&b);
    unsigned char unknown[] = {0x00, 0x99};
    cql_rd_init(&r, unknown, 2);
    assert_null(cql_get_type(&r));
    assert_non_null(strstr(r.err, "unknown type"));
    unsigned char text[] = {0x00, 0x0a};
    cql_rd_init(&r, text, 2);
    assert_null(cql_get_type(&r));
    assert_non_null(strstr(r.err, "removed"));
    /* a column count no frame could hold fails before anything is allocated for it */
    cql_buf m = {0};
    cql_put_i32(&m, 0);
    cql_put_i32(&m, 0x7fffffff);
    cql_rd_init(&r, m.p, m.len);
    cql_meta meta;
    assert_int_equal(cql_get_meta(&r, &meta), -1);
    assert_non_null(strstr(r.err, "column count"));
    cql_buf_free(&m);
}

static void prepared_results_give_the_id_bind_markers_and_partition_key(void **state)
{
    (void)state;
    cql_buf b = {0};
    cql_put_short_bytes(&b, "\x01\x02\x03", 3);
    cql_put_i32(&b, CQL_RF_GLOBAL_SPEC);
    cql_put_i32(&b, 2);
    cql_put_i32(&b, 1);
    cql_put_u16(&b, 1); /* the partition key is the second marker */
    cql_put_string(&b, "ks");
    cql_put_string(&b, "tb");
    cql_put_string(&b, "v");
    cql_put_u16(&b, CQL_T_VARCHAR);
    cql_put_string(&b, "id");
    cql_put_u16(&b, CQL_T_BIGINT);
    cql_put_i32(&b, CQL_RF_NO_METADATA);
    cql_put_i32(&b, 0);
    cql_rd r;
    cql_rd_init(&r, b.p, b.len);
    cql_prepared p;
    assert_int_equal(cql_get_prepared(&r, &p), 0);
    assert_int_equal(p.idlen, 3);
    assert_memory_equal(p.id, "\x01\x02\x03", 3);
    assert_int_equal(p.nbind, 2);
    assert_int_equal(p.npk, 1);
    assert_int_equal(p.pk[0], 1);
    assert_string_equal(p.bind[1].name, "id");
    assert_int_equal(p.bind[1].type->id, CQL_T_BIGINT);
    assert_string_equal(p.bind[0].table, "tb");
    assert_null(p.result.cols);
    cql_prepared_free(&p);
    /* more partition key markers than markers */
    b.p[2 + 3 + 4 + 4 + 3] = 9; /* the last byte of the partition key count */
    cql_rd_init(&r, b.p, b.len);
    assert_int_equal(cql_get_prepared(&r, &p), -1);
    cql_buf_free(&b);
}

static void errors_give_code_message_and_extras(void **state)
{
    (void)state;
    char msg[300];
    int32_t code;
    cql_rd r;
    cql_buf b = {0};
    cql_put_i32(&b, 0x1000);
    cql_put_string(&b, "Cannot achieve consistency level QUORUM");
    cql_put_u16(&b, CQL_QUORUM);
    cql_put_i32(&b, 2);
    cql_put_i32(&b, 1);
    cql_rd_init(&r, b.p, b.len);
    assert_int_equal(cql_get_error(&r, &code, msg, sizeof msg), 0);
    assert_int_equal(code, 0x1000);
    assert_string_equal(cql_error_name(code), "unavailable");
    assert_string_equal(msg, "Cannot achieve consistency level QUORUM (consistency QUORUM: 2 replicas required, 1 alive)");
    cql_buf_free(&b);

    cql_put_i32(&b, 0x2400);
    cql_put_string(&b, "Cannot add existing table \"t\"");
    cql_put_string(&b, "ks");
    cql_put_string(&b, "t");
    cql_rd_init(&r, b.p, b.len);
    assert_int_equal(cql_get_error(&r, &code, msg, sizeof msg), 0);
    assert_string_equal(msg, "Cannot add existing table \"t\" (ks.t)");
    cql_buf_free(&b);

    cql_put_i32(&b, 0x0100);
    cql_put_string(&b, "Provided username cassandra and/or password are incorrect");
    cql_rd_init(&r, b.p, b.len);
    assert_int_equal(cql_get_error(&r, &code, msg, 20), 0); /* truncated to the buffer */
    assert_string_equal(msg, "Provided username c");
    assert_string_equal(cql_error_name(code), "bad credentials");
    cql_buf_free(&b);

    unsigned char cut[] = {0x00, 0x00, 0x20, 0x00, 0x00, 0x10, 'x'};
    cql_rd_init(&r, cut, sizeof cut);
    assert_int_equal(cql_get_error(&r, &code, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "cut short"));
}

static void strings_with_a_nul_and_negative_lengths_are_refused(void **state)
{
    (void)state;
    unsigned char s[] = {0x00, 0x03, 'a', 0x00, 'b'};
    cql_rd r;
    cql_rd_init(&r, s, sizeof s);
    assert_null(cql_get_strdup(&r));
    assert_non_null(strstr(r.err, "NUL"));
    unsigned char neg[] = {0xff, 0xff, 0xff, 0xfd};
    int32_t n;
    cql_rd_init(&r, neg, sizeof neg);
    assert_null(cql_get_bytes(&r, &n));
    assert_non_null(r.err);
    unsigned char unset[] = {0xff, 0xff, 0xff, 0xfe};
    cql_rd_init(&r, unset, sizeof unset);
    assert_null(cql_get_bytes(&r, &n));
    assert_null(r.err);
    assert_int_equal(n, -2);
    size_t len;
    cql_rd_init(&r, neg, sizeof neg);
    assert_null(cql_get_long_string(&r, &len));
    assert_non_null(r.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(startup_frame_is_the_specs_example),
        cmocka_unit_test(response_headers_parse_and_bad_ones_are_refused),
        cmocka_unit_test(auth_response_is_sasl_plain_and_the_buffer_can_be_wiped),
        cmocka_unit_test(query_and_execute_carry_consistency_values_paging_and_timestamp),
        cmocka_unit_test(batch_holds_prepared_and_text_statements_and_its_count),
        cmocka_unit_test(rows_metadata_reads_nested_types_and_the_cells_follow),
        cmocka_unit_test(every_truncation_of_a_rows_body_is_refused_without_reading_past_it),
        cmocka_unit_test(types_too_deep_unknown_or_removed_are_refused),
        cmocka_unit_test(prepared_results_give_the_id_bind_markers_and_partition_key),
        cmocka_unit_test(errors_give_code_message_and_extras),
        cmocka_unit_test(strings_with_a_nul_and_negative_lengths_are_refused),
    };
    return cmocka_run_group_tests_name("ycql_wire", tests, NULL, NULL);
}
