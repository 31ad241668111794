/* arca destination kit: the destination contract of <arca/plugin.h> as one set
 * of named checks, run against a loaded plugin and a config struct the caller
 * filled. Compile destkit.c (`pkg-config --variable=destkit arca-plugin`) into
 * your test program; see docs/PLUGINS.md, "Testing a plugin". */
#ifndef ARCA_DESTKIT_H
#define ARCA_DESTKIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <arca/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the kit needs besides the plugin and its config. Zero-fill, set
 * `size`, then what you need: ARCA_DESTKIT_OPTS_INIT does the first two. */
typedef struct arca_destkit_opts {
    uint32_t size;        /* sizeof(arca_destkit_opts) */
    FILE *out;            /* where arca_destkit_run prints; NULL: stdout */
    /* Every object name the kit uses starts with `prefix` and a '.', so that
     * runs can share a store: 1 to 64 of [A-Za-z0-9_-]; NULL: "destkit". Objects
     * left under it by an interrupted run are removed before each check. */
    const char *prefix;
    uint64_t big_size;    /* bytes of the large object; 0: 3 MiB + 12345 */
    /* Failure injection for the checks of failing puts: make the open put of
     * `name` fail from now on (its next write or its commit must fail), for
     * instance by removing its temporary behind the plugin's back. Return 0
     * once armed. NULL: those checks are skipped, saying why. */
    int (*break_put)(void *ud, const char *name);
    void *ud;             /* break_put's first argument */
    /* Bytes written to each put before break_put is called (a store that
     * starts its upload only after a first part wants more than a part);
     * 0: 64 KiB. */
    uint64_t break_after;
    int verbose;          /* the plugin's log lines as "# log: ..." on `out` */
    /* A write-once store (GCS with ifGenerationMatch=0, a bucket with
     * retention): a commit never replaces an object. The replace check then
     * pins that a second put of a stored name fails at commit with
     * ARCA_EEXIST naming it on its handle, the first object stays whole and
     * listed once, and no temporary is left. Later field: check the size. */
    int write_once;
} arca_destkit_opts;

#define ARCA_DESTKIT_OPTS_INIT {sizeof(arca_destkit_opts), NULL, NULL, 0, NULL, NULL, 0, 0, 0}

/* Results of one check. */
enum { ARCA_DESTKIT_PASS = 0, ARCA_DESTKIT_FAIL = 1, ARCA_DESTKIT_SKIP = 2 };

/* The checks, in order: count and names (static strings). */
size_t arca_destkit_count(void);
const char *arca_destkit_name(size_t i);

/* 1 when check i concerns this plugin; 0 for a check of an optional
 * operation the plugin does not offer (why says which). */
int arca_destkit_applies(const arca_plugin *p, size_t i, char *why, size_t cap);

/* Runs check i on fresh instances: p->create(host, config, ...) with the
 * kit's own host (log, error, handle_error, cancelled; no sink or feed),
 * destroy at the end. `config` is the plugin's option struct, filled by the
 * caller (all options, defaults included) and valid throughout. Returns
 * ARCA_DESTKIT_PASS, _FAIL or _SKIP, with the reason in why for the last two. */
int arca_destkit_check(const arca_plugin *p, const void *config, const arca_destkit_opts *o, size_t i, char *why,
                       size_t cap);

/* Runs every check that applies and prints TAP to o->out: a plan "1..N",
 * then "ok N - NAME", "not ok N - NAME: WHY" or "ok N - NAME # SKIP WHY";
 * optional operations the plugin lacks show as "# ..." comments. Returns the
 * number of failed checks. */
int arca_destkit_run(const arca_plugin *p, const void *config, const arca_destkit_opts *o);

#ifdef __cplusplus
}
#endif
#endif
