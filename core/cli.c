/* arca command line: global flags, the config, dispatch to one command, and the
 * output helpers the commands share. Exit codes: util.h. */
#include <inttypes.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"

extern int g_quiet;
int g_json;
const char *g_config_arg;
static int g_verbosity; /* -v count minus -q count; applied over the config's level */

static void usage(FILE *f)
{
    fputs("usage: arca [-c FILE] [--json] [-v|-q] COMMAND ...\n"
          "  backup PIPELINE                     run a backup, print its id\n"
          "  list PIPELINE [--all]               the pipeline's backups (--all: every pipeline's, marked)\n"
          "  verify PIPELINE [ID|latest] [--destination NAME]\n"
          "  verify FILE.arca | -                a file, or an archive on stdin (one pass)\n"
          "  inspect FILE.arca | PIPELINE ID     header and manifest summary\n"
          "  restore PIPELINE [ID|latest] [--into SOURCE] [--destination NAME] [source flags]\n"
          "  restore --from FILE.arca|- --into SOURCE [source flags]\n"
          "  delete PIPELINE ID\n"
          "  cleanup PIPELINE [--older-than AGE] [--dry-run]   leftovers of interrupted backups (AGE: 24h)\n"
          "  plugins [NAME]                      found plugins, their options\n"
          "  config check                        validate every section of the config\n"
          "Config: -c FILE, else $ARCA_CONFIG, else ./arca.ini, else /etc/arca/arca.ini;\n"
          "it must not be writable by anyone but its owner (you or root).\n"
          "Exit codes: 0 ok, 1 failed, 2 usage or configuration, 3 integrity.\n",
          f);
}

int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "arca: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see arca --help)\n");
    return EXIT_USAGE;
}

void print_errors(errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(stderr, "arca: error: %s\n", e->msg[i]);
}

int fail_msg(int status, char *msg)
{
    fprintf(stderr, "arca: error: %s\n", msg ? msg : "failed");
    free(msg);
    return exit_code_for(status);
}

static void apply_log_level(int config_level)
{
    int lvl = config_level + g_verbosity;
    g_log_level = lvl < 0 ? -1 : lvl > ARCA_LOG_DEBUG ? ARCA_LOG_DEBUG : lvl;
    g_quiet = g_verbosity < 0;
}

session *open_session(int *rc)
{
    errlist e = {0};
    const char *path = cfg_locate(g_config_arg, &e);
    if (!path) {
        if (!e.n)
            errlist_add(&e, "no config file: give -c FILE, set ARCA_CONFIG, or create /etc/arca/arca.ini");
        print_errors(&e);
        errlist_free(&e);
        *rc = EXIT_USAGE;
        return NULL;
    }
    session *s = session_open(path, &e);
    if (s)
        apply_log_level(s->g->log_level);
    if (e.n) {
        print_errors(&e);
        errlist_free(&e);
        session_close(s);
        *rc = EXIT_USAGE;
        return NULL;
    }
    return s;
}

pipeline *open_pipeline(const char *name, session **sp, int *rc)
{
    session *s = open_session(rc);
    *sp = s;
    if (!s)
        return NULL;
    errlist e = {0};
    pipeline *p = session_pipeline(s, name, &e);
    if (!p) {
        print_errors(&e);
        errlist_free(&e);
        session_close(s);
        *sp = NULL;
        *rc = EXIT_USAGE;
    }
    return p;
}

void close_pipeline(pipeline *p, session *s)
{
    pipeline_free(p);
    session_close(s);
}

void human_size(uint64_t b, char *buf, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, n, "%" PRIu64 " B", b);
    else
        snprintf(buf, n, "%.1f %s", v, u[i]);
}

void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    puts(s);
    free(s);
}

void print_text(FILE *f, const char *s)
{
    char *p = text_printable(s ? s : "");
    fputs(p, f);
    free(p);
}

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    {"backup", cmd_backup}, {"list", cmd_list},       {"verify", cmd_verify}, {"inspect", cmd_inspect},
    {"restore", cmd_restore}, {"delete", cmd_delete}, {"cleanup", cmd_cleanup}, {"plugins", cmd_plugins},
    {"config", cmd_config},
};

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    /* no SA_RESTART: a read blocked on a pipe returns EINTR, so Ctrl-C is seen at once */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    g_log_level = ARCA_LOG_WARN;

    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-c") && i + 1 < argc)
            g_config_arg = argv[++i];
        else if (!strncmp(a, "--config=", 9))
            g_config_arg = a + 9;
        else if (!strcmp(a, "--json"))
            g_json = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
            g_verbosity--;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            g_verbosity++;
        else if (!strcmp(a, "-vv"))
            g_verbosity += 2;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("arca %s (plugin ABI %d.%d, archive format %d)\n", ARCA_VERSION, ARCA_ABI_MAJOR, ARCA_ABI_MINOR,
                   ARCA_FORMAT_VERSION);
            return EXIT_OK;
        } else
            return usage_error("unknown option '%s'", a);
    }
    apply_log_level(ARCA_LOG_WARN);
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i++];
    if (!strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    for (size_t k = 0; k < sizeof commands / sizeof *commands; k++)
        if (!strcmp(cmd, commands[k].name))
            return commands[k].fn(argc - i, argv + i);
    return usage_error("unknown command '%s'", cmd);
}
