/* Unit tests for plugins/common/pc_ranges.c (parallel ranged reads handed out
 * in order): a fake fetch instead of HTTP, so that order, the window, failures
 * and early stops can be forced. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* the curl handles of the pool: not used by a fake fetch */
#include "pc_http.h"
CURL *pc_curl_get(pc_curl_pool *p)
{
    (void)p;
    return (CURL *)(uintptr_t)1;
}
void pc_curl_put(pc_curl_pool *p, CURL *easy)
{
    (void)p;
    (void)easy;
}

#include "../../plugins/common/pc_ranges.c"

/* byte at absolute offset o */
static char byte_at(uint64_t o)
{
    return (char)((o * 131 + o / 7) & 0xff);
}

typedef struct fake {
    pthread_mutex_t mu;
    uint64_t consumed;    /* bytes the reader has taken (absolute end) */
    uint64_t max_ahead;   /* the furthest a fetch started past consumed */
    uint64_t fail_at;     /* a fetch at this offset fails (UINT64_MAX: none) */
    int fetches;
    int bad; /* a check inside a worker failed (cmocka asserts only on the main thread) */
} fake;

static int fake_fetch(void *ud, CURL *easy, uint64_t off, pc_range_buf *b, char *err, size_t errlen)
{
    fake *f = ud;
    pthread_mutex_lock(&f->mu);
    f->bad |= easy == NULL || b->len != 0;
    f->fetches++;
    if (off + b->want - f->consumed > f->max_ahead)
        f->max_ahead = off + b->want - f->consumed;
    pthread_mutex_unlock(&f->mu);
    /* later ranges finish first now and then: the reader must still get them in order */
    struct timespec ts = {0, (long)((off / b->want) % 3) * 2000000L};
    nanosleep(&ts, NULL);
    if (off == f->fail_at) {
        snprintf(err, errlen, "range at %llu: HTTP 503", (unsigned long long)off);
        return ARCA_EFAIL;
    }
    int bad = 0;
    for (size_t i = 0; i < b->want; i++)
        bad |= pc_range_buf_add(b, (char[]){byte_at(off + i)}, 1) != 1;
    pthread_mutex_lock(&f->mu);
    f->bad |= bad;
    pthread_mutex_unlock(&f->mu);
    return ARCA_OK;
}

static void read_all(uint64_t start, uint64_t end, uint64_t chunk, int nslots)
{
    fake f = {.fail_at = UINT64_MAX, .consumed = start};
    pthread_mutex_init(&f.mu, NULL);
    pc_ranges *r;
    assert_int_equal(pc_ranges_start(NULL, start, end, chunk, nslots, fake_fetch, &f, &r), ARCA_OK);
    char buf[97], err[200];
    size_t got;
    uint64_t at = start;
    do {
        assert_int_equal(pc_ranges_read(r, buf, sizeof buf, &got, err, sizeof err), ARCA_OK);
        for (size_t i = 0; i < got; i++)
            assert_int_equal(buf[i], byte_at(at + i));
        at += got;
        pthread_mutex_lock(&f.mu);
        f.consumed = at;
        pthread_mutex_unlock(&f.mu);
    } while (got);
    assert_int_equal(at, end);
    pc_ranges_free(r);
    assert_false(f.bad);
    assert_int_equal(f.fetches, (int)((end - start + chunk - 1) / chunk));
    /* never more than nslots ranges in memory: a fetch starts at most nslots
     * ranges past the byte the reader is at (plus the range it is in) */
    assert_true(f.max_ahead <= (uint64_t)(nslots + 1) * chunk);
    pthread_mutex_destroy(&f.mu);
}

static void every_byte_arrives_in_order_whatever_the_cut(void **state)
{
    (void)state;
    read_all(0, 10000, 1000, 4);  /* whole ranges */
    read_all(0, 10001, 1000, 4);  /* a short last range */
    read_all(777, 5000, 256, 3);  /* from an offset */
    read_all(0, 500, 1000, 8);    /* one range, fewer slots than asked */
    read_all(0, 4096, 64, 1);     /* one thread */
    read_all(100, 100, 64, 4);    /* nothing to read */
}

static void a_failed_range_is_what_the_reader_gets(void **state)
{
    (void)state;
    fake f = {.fail_at = 3000};
    pthread_mutex_init(&f.mu, NULL);
    pc_ranges *r;
    assert_int_equal(pc_ranges_start(NULL, 0, 10000, 1000, 2, fake_fetch, &f, &r), ARCA_OK);
    char buf[500], err[200] = "";
    size_t got, total = 0;
    int rc;
    while ((rc = pc_ranges_read(r, buf, sizeof buf, &got, err, sizeof err)) == ARCA_OK && got)
        total += got;
    assert_int_equal(rc, ARCA_EFAIL);
    assert_string_equal(err, "range at 3000: HTTP 503");
    assert_true(total <= 3000); /* nothing past the failed range was handed out */
    /* it stays failed */
    assert_int_equal(pc_ranges_read(r, buf, sizeof buf, &got, err, sizeof err), ARCA_EFAIL);
    pc_ranges_free(r);
    pthread_mutex_destroy(&f.mu);
}

static void a_reader_that_stops_early_frees_without_waiting_for_the_rest(void **state)
{
    (void)state;
    fake f = {.fail_at = UINT64_MAX};
    pthread_mutex_init(&f.mu, NULL);
    pc_ranges *r;
    assert_int_equal(pc_ranges_start(NULL, 0, 1000000, 100, 4, fake_fetch, &f, &r), ARCA_OK);
    char buf[150], err[200];
    size_t got;
    assert_int_equal(pc_ranges_read(r, buf, sizeof buf, &got, err, sizeof err), ARCA_OK);
    assert_int_equal(got, 100); /* one range at a time */
    pc_ranges_free(r);          /* the workers wait on the window: they must be woken and stop */
    assert_true(f.fetches <= 1 + 4 + 4);
    pthread_mutex_destroy(&f.mu);
}

static void the_sink_refuses_bytes_past_the_range_and_resets(void **state)
{
    (void)state;
    char mem[4];
    pc_range_buf b = {.buf = mem, .want = 4};
    assert_int_equal(pc_range_buf_add(&b, "abc", 3), 3);
    assert_int_equal(pc_range_buf_add(&b, "de", 2), 0);
    assert_true(b.too_much);
    pc_range_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_false(b.too_much);
    assert_int_equal(pc_range_buf_add(&b, "wxyz", 4), 4);
    assert_memory_equal(mem, "wxyz", 4);
}

int main(void)
{
    alarm(60); /* a reader left waiting for a range that never comes is a failure, not a hang */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_byte_arrives_in_order_whatever_the_cut),
        cmocka_unit_test(a_failed_range_is_what_the_reader_gets),
        cmocka_unit_test(a_reader_that_stops_early_frees_without_waiting_for_the_rest),
        cmocka_unit_test(the_sink_refuses_bytes_past_the_range_and_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
