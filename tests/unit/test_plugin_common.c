/* plugins/common, compiled in directly: the errno mapping, the object-name
 * rules, where a handle's failure is reported, the growable buffer, the child
 * runner and the HTTP retry budget. Each test's name says what it pins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "fakehost.h"

#include "../../plugins/common/pc_buf.c"
#include "../../plugins/common/pc_error.c"
#include "../../plugins/common/pc_name.c"
#include "../../plugins/common/pc_proc.c"
#include "../../plugins/common/pc_retry.c"
#include "../../plugins/common/pc_status.c"

/* ---- pc_status ---- */

static void errno_maps_to_the_five_statuses(void **state)
{
    (void)state;
    assert_int_equal(pc_status_of_errno(ENOENT), ARCA_ENOENT);
    assert_int_equal(pc_status_of_errno(EEXIST), ARCA_EEXIST);
    assert_int_equal(pc_status_of_errno(ENOTEMPTY), ARCA_EEXIST);
    assert_int_equal(pc_status_of_errno(ENOMEM), ARCA_ENOMEM);
    assert_int_equal(pc_status_of_errno(ECANCELED), ARCA_ECANCELED);
    assert_int_equal(pc_status_of_errno(EIO), ARCA_EFAIL);
    assert_int_equal(pc_status_of_errno(EACCES), ARCA_EFAIL);
    assert_int_equal(pc_status_of_errno(0), ARCA_EFAIL);
}

/* ---- pc_name ---- */

static void the_cores_object_names_are_accepted(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    char longest[PC_NAME_MAX + 1];
    memset(longest, 'n', PC_NAME_MAX);
    longest[PC_NAME_MAX] = '\0';
    const char *good[] = {"nightly.20261129T170128.123Z-1a2b3c.arca", "nightly.20261129T170128.123Z-1a2b3c.manifest.json",
                          "A-Z_a.z-0.9", "x", "a..b", longest};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_null(pc_name_problem(good[i]));
        assert_int_equal(pc_check_name(fh_host(fh), good[i]), 0);
    }
    assert_int_equal(fh_error_count(fh), 0);
    fh_free(fh);
}

static void names_that_could_escape_or_hit_a_temporary_are_econfig_naming_them(void **state)
{
    (void)state;
    char toolong[PC_NAME_MAX + 2];
    memset(toolong, 'n', PC_NAME_MAX + 1);
    toolong[PC_NAME_MAX + 1] = '\0';
    static const struct {
        const char *name, *shown, *why;
    } bad[] = {
        {"", "''", "empty"},
        {".hidden", "'.hidden'", "starts with '.'"},
        {"..", "'..'", "starts with '.'"},
        {"a/b", "'a/b'", "contains '/'"},
        {"../x", "'../x'", "starts with '.'"},
        {"tab\there", "'tab\\x09here'", "control byte"},
        {"del\x7f", "'del\\x7f'", "control byte"},
        {"nl\n", "'nl\\x0a'", "control byte"},
    };
    for (size_t i = 0; i <= sizeof bad / sizeof *bad; i++) {
        fakehost *fh = fh_new();
        const char *name = i < sizeof bad / sizeof *bad ? bad[i].name : toolong;
        assert_int_equal(pc_check_name(fh_host(fh), name), ARCA_ECONFIG);
        assert_int_equal(fh_last_code(fh), ARCA_ECONFIG);
        if (i < sizeof bad / sizeof *bad) {
            if (!strstr(fh_last_error(fh), bad[i].shown) || !strstr(fh_last_error(fh), bad[i].why))
                fail_msg("name %zu: '%s' lacks %s or %s", i, fh_last_error(fh), bad[i].shown, bad[i].why);
        } else {
            assert_non_null(strstr(fh_last_error(fh), "longer than 1024"));
            assert_non_null(strstr(fh_last_error(fh), "nnnnnnnn..."));
            assert_true(strlen(fh_last_error(fh)) < 300); /* cut, not 1025 bytes of name */
        }
        fh_free(fh);
    }
    assert_non_null(pc_name_problem(NULL));
}

static void list_prefixes_with_a_slash_are_econfig(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    assert_int_equal(pc_check_prefix(fh_host(fh), NULL), 0);
    assert_int_equal(pc_check_prefix(fh_host(fh), ""), 0);
    assert_int_equal(pc_check_prefix(fh_host(fh), "nightly."), 0);
    assert_int_equal(pc_check_prefix(fh_host(fh), "a/"), ARCA_ECONFIG);
    assert_non_null(strstr(fh_last_error(fh), "'a/'"));
    fh_free(fh);
}

/* ---- pc_error ---- */

static void a_handle_failure_lands_on_its_handle_with_an_abi_1_1_host(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    int a, b;
    assert_int_equal(pc_handle_error(fh_host(fh), &a, ARCA_EFAIL, "put of '%s' failed", "a.arca"), ARCA_EFAIL);
    assert_int_equal(pc_handle_error(fh_host(fh), &b, ARCA_EINTEGRITY, "get of '%s' failed", "b.arca"),
                     ARCA_EINTEGRITY);
    assert_non_null(fh_handle_error(fh, &a));
    assert_non_null(fh_handle_error(fh, &b));
    assert_string_equal(fh_handle_error(fh, &a), "put of 'a.arca' failed");
    assert_int_equal(fh_handle_code(fh, &a), ARCA_EFAIL);
    assert_string_equal(fh_handle_error(fh, &b), "get of 'b.arca' failed");
    assert_int_equal(fh_handle_code(fh, &b), ARCA_EINTEGRITY);
    assert_int_equal(fh_error_count(fh), 0);
    /* no handle (an open that failed): the instance's error */
    assert_int_equal(pc_handle_error(fh_host(fh), NULL, ARCA_ENOENT, "open of '%s'", "c.arca"), ARCA_ENOENT);
    assert_string_equal(fh_last_error(fh), "open of 'c.arca'");
    assert_int_equal(fh_handle_error_count(fh), 2);
    fh_free(fh);
}

static void a_handle_failure_falls_back_to_error_on_a_1_0_host(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    int a;
    fh_set_abi_minor(fh, 0);
    assert_false(pc_has_handle_error(fh_host(fh)));
    assert_int_equal(pc_handle_error(fh_host(fh), &a, ARCA_EFAIL, "put of '%s' failed", "a.arca"), ARCA_EFAIL);
    assert_string_equal(fh_last_error(fh), "put of 'a.arca' failed");
    assert_null(fh_handle_error(fh, &a));
    assert_int_equal(fh_handle_error_count(fh), 0);
    fh_free(fh);
}

static void a_host_of_1_1_size_without_handle_error_gets_error(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    arca_host *h = (arca_host *)fh_host(fh);
    int a;
    h->handle_error = NULL; /* the size says 1.1, the slot is empty */
    assert_int_equal(pc_handle_error(h, &a, ARCA_EFAIL, "x"), ARCA_EFAIL);
    assert_string_equal(fh_last_error(fh), "x");
    fh_free(fh);
}

/* ---- pc_buf ---- */

static void buffer_grows_formats_and_hands_over_its_contents(void **state)
{
    (void)state;
    pc_buf b = {0};
    char *s = pc_buf_take(&b);
    assert_string_equal(s, ""); /* nothing added is an empty string, not NULL */
    free(s);
    for (int i = 0; i < 1000; i++)
        pc_buf_printf(&b, "%d,", i);
    pc_buf_add(&b, "\0x", 2);
    assert_int_equal(b.oom, 0);
    assert_true(b.len > 3000);
    assert_memory_equal(b.p, "0,1,2,", 6);
    assert_memory_equal(b.p + b.len - 6, "999,\0x", 6);
    size_t len = b.len;
    s = pc_buf_take(&b);
    assert_non_null(s);
    assert_int_equal(s[len], '\0');
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    free(s);
    b.oom = 1; /* an earlier append failed: the contents are not handed out */
    pc_buf_str(&b, "lost");
    assert_null(pc_buf_take(&b));
}

/* ---- pc_proc ---- */

static int run_sh(const char *script, pc_proc *p, int *status, char *err, size_t errlen)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    p->argv = argv;
    return pc_proc_run(p, status, err, errlen);
}

static void a_child_reads_stdin_writes_stdout_and_its_stderr_head_is_kept(void **state)
{
    (void)state;
    size_t n = 3 << 20; /* more than a pipe holds: both directions must flow at once */
    char *in = malloc(n), err[512];
    pc_buf out = {0}, errb = {0};
    int st = -1;
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    pc_proc p = {.input = in, .input_len = n, .out = &out, .err = &errb, .err_keep = 100};
    assert_int_equal(run_sh("head -c 300 /dev/zero | tr '\\0' E >&2; cat; exit 3", &p, &st, err, sizeof err), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.p, in, n);
    assert_int_equal(errb.len, 100);
    assert_false(pc_proc_succeeded(st));
    char text[64];
    pc_proc_status_text(st, text, sizeof text);
    assert_string_equal(text, "exit status 3");
    char msg[256];
    pc_proc_failure("cat", st, &errb, 10, msg, sizeof msg);
    assert_string_equal(msg, "cat failed with exit status 3: ...EEEEEEEEEE");
    pc_buf_free(&out);
    pc_buf_free(&errb);
    free(in);
}

static void a_child_sees_env_additions_and_not_the_dropped_names(void **state)
{
    (void)state;
    const char *set[] = {"PC_TEST_ADDED=yes", "PC_TEST_REPLACED=new", NULL};
    const char *unset[] = {"PC_TEST_DROPPED", NULL};
    pc_buf out = {0};
    char err[256];
    int st;
    setenv("PC_TEST_DROPPED", "secret", 1);
    setenv("PC_TEST_REPLACED", "old", 1);
    pc_proc p = {.env_set = set, .env_unset = unset, .out = &out};
    assert_int_equal(run_sh("echo \"$PC_TEST_ADDED,$PC_TEST_REPLACED,${PC_TEST_DROPPED-none}\"; env | grep -c PC_TEST_REPLACED",
                            &p, &st, err, sizeof err), 0);
    assert_true(pc_proc_succeeded(st));
    assert_string_equal(out.p, "yes,new,none\n1\n");
    unsetenv("PC_TEST_DROPPED");
    unsetenv("PC_TEST_REPLACED");
    pc_buf_free(&out);
}

static void a_child_that_outlives_its_timeout_is_stopped_and_named(void **state)
{
    (void)state;
    char err[256];
    int st;
    time_t t0 = time(NULL);
    pc_proc p = {.timeout_ms = 300};
    assert_int_equal(run_sh("exec sleep 30", &p, &st, err, sizeof err), ARCA_EFAIL);
    assert_true(time(NULL) - t0 < 10);
    assert_non_null(strstr(err, "/bin/sh did not finish within 1 s"));
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
}

static void a_child_that_ignores_sigterm_is_killed_after_the_grace_period(void **state)
{
    (void)state;
    char err[256];
    int st;
    time_t t0 = time(NULL);
    pc_proc p = {.timeout_ms = 200};
    /* the shell ignores TERM; its sleep is a child of its own, left to exit */
    assert_int_equal(run_sh("trap '' TERM; while :; do sleep 1; done", &p, &st, err, sizeof err), ARCA_EFAIL);
    assert_true(time(NULL) - t0 >= 4 && time(NULL) - t0 < 20);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void cancellation_stops_the_child(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    char err[256];
    int st;
    fh_cancel_after(fh, 2);
    pc_proc p = {.host = fh_host(fh)};
    assert_int_equal(run_sh("exec sleep 30", &p, &st, err, sizeof err), ARCA_ECANCELED);
    assert_non_null(strstr(err, "cancelled while /bin/sh was running"));
    fh_free(fh);
}

static int refuse_after_first(void *ud, const void *data, size_t len)
{
    (void)data;
    *(size_t *)ud += len;
    return ARCA_EINTEGRITY;
}

static void a_stdout_callback_can_stop_the_child_with_its_own_code(void **state)
{
    (void)state;
    char err[256];
    int st;
    size_t seen = 0;
    pc_proc p = {.on_out = refuse_after_first, .ud = &seen};
    assert_int_equal(run_sh("while :; do echo data; done", &p, &st, err, sizeof err), ARCA_EINTEGRITY);
    assert_true(seen > 0);
    assert_non_null(strstr(err, "/bin/sh"));
}

static void a_program_that_cannot_start_is_named(void **state)
{
    (void)state;
    char *argv[] = {"/nonexistent/tool", NULL}, err[256];
    int st;
    pc_proc p = {.argv = argv};
    assert_int_equal(pc_proc_run(&p, &st, err, sizeof err), ARCA_EFAIL);
    assert_non_null(strstr(err, "cannot run /nonexistent/tool"));
    char *sh = pc_which("sh");
    assert_non_null(sh);
    assert_non_null(strchr(sh, '/'));
    free(sh);
    assert_null(pc_which("no-such-tool-anywhere"));
}

/* ---- pc_retry ---- */

static void http_answers_are_done_again_or_fail(void **state)
{
    (void)state;
    assert_int_equal(pc_http_classify(1, 0), PC_RETRY_AGAIN);
    assert_int_equal(pc_http_classify(0, 200), PC_RETRY_DONE);
    assert_int_equal(pc_http_classify(0, 206), PC_RETRY_DONE);
    assert_int_equal(pc_http_classify(0, 500), PC_RETRY_AGAIN);
    assert_int_equal(pc_http_classify(0, 503), PC_RETRY_AGAIN);
    assert_int_equal(pc_http_classify(0, 429), PC_RETRY_AGAIN);
    assert_int_equal(pc_http_classify(0, 408), PC_RETRY_AGAIN);
    assert_int_equal(pc_http_classify(0, 400), PC_RETRY_FAIL);
    assert_int_equal(pc_http_classify(0, 403), PC_RETRY_FAIL);
    assert_int_equal(pc_http_classify(0, 404), PC_RETRY_FAIL);
}

static void the_retry_budget_counts_attempts_and_seconds(void **state)
{
    (void)state;
    pc_retry r;
    uint64_t wait = 0;
    pc_retry_start(&r, 2, 300);
    pc_retry_attempt(&r);
    assert_true(pc_retry_next(&r, &wait));
    assert_in_range(wait, 50, 100);
    pc_retry_attempt(&r);
    assert_true(pc_retry_next(&r, &wait));
    assert_in_range(wait, 100, 200);
    pc_retry_attempt(&r);
    assert_false(pc_retry_next(&r, &wait)); /* two retries were allowed, both used */
    assert_int_equal(r.tries, 3);
    pc_retry_start(&r, 100, 0); /* no time at all: no retry */
    pc_retry_attempt(&r);
    assert_false(pc_retry_next(&r, &wait));
}

static void a_retry_wait_ends_early_on_cancellation(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    uint64_t t0 = pc_now_ms();
    assert_int_equal(pc_retry_sleep(fh_host(fh), 150), ARCA_OK);
    assert_true(pc_now_ms() - t0 >= 140);
    fh_cancel_after(fh, 0);
    t0 = pc_now_ms();
    assert_int_equal(pc_retry_sleep(fh_host(fh), 20000), ARCA_ECANCELED);
    assert_true(pc_now_ms() - t0 < 2000);
    assert_int_equal(pc_retry_sleep(NULL, 10), ARCA_OK); /* cleanup calls wait regardless */
    fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errno_maps_to_the_five_statuses),
        cmocka_unit_test(the_cores_object_names_are_accepted),
        cmocka_unit_test(names_that_could_escape_or_hit_a_temporary_are_econfig_naming_them),
        cmocka_unit_test(list_prefixes_with_a_slash_are_econfig),
        cmocka_unit_test(a_handle_failure_lands_on_its_handle_with_an_abi_1_1_host),
        cmocka_unit_test(a_handle_failure_falls_back_to_error_on_a_1_0_host),
        cmocka_unit_test(a_host_of_1_1_size_without_handle_error_gets_error),
        cmocka_unit_test(buffer_grows_formats_and_hands_over_its_contents),
        cmocka_unit_test(a_child_reads_stdin_writes_stdout_and_its_stderr_head_is_kept),
        cmocka_unit_test(a_child_sees_env_additions_and_not_the_dropped_names),
        cmocka_unit_test(a_child_that_outlives_its_timeout_is_stopped_and_named),
        cmocka_unit_test(a_child_that_ignores_sigterm_is_killed_after_the_grace_period),
        cmocka_unit_test(cancellation_stops_the_child),
        cmocka_unit_test(a_stdout_callback_can_stop_the_child_with_its_own_code),
        cmocka_unit_test(a_program_that_cannot_start_is_named),
        cmocka_unit_test(http_answers_are_done_again_or_fail),
        cmocka_unit_test(the_retry_budget_counts_attempts_and_seconds),
        cmocka_unit_test(a_retry_wait_ends_early_on_cancellation),
    };
    return cmocka_run_group_tests_name("plugins/common", tests, NULL, NULL);
}
