/* ysql plugin: the descriptor, its option tables and the per-section instance.
 * Backs up one YSQL (YugabyteDB or PostgreSQL) database: schema through the
 * dump command, data through parallel COPY in one snapshot; restores it. */
#include "ysql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ARCA_VERSION
#define ARCA_VERSION "0.0.0"
#endif

#define OPT(field) offsetof(ysql_config, field)

static const arca_option ysql_options[] = {
    {"host", ARCA_OPT_STRING, 0, OPT(host), "127.0.0.1", NULL, 0, 0,
     "server host name or address (a directory: a Unix socket)"},
    {"port", ARCA_OPT_INT, 0, OPT(port), "5433", NULL, 1, 65535,
     "server port (YugabyteDB YSQL: 5433, PostgreSQL: 5432)"},
    {"user", ARCA_OPT_STRING, 0, OPT(user), "yugabyte", NULL, 0, 0, "user to connect as"},
    {"password", ARCA_OPT_STRING, ARCA_OPT_SECRET, OPT(password), NULL, NULL, 0, 0,
     "password (passed to child tools as PGPASSWORD, never on a command line)"},
    {"dbname", ARCA_OPT_STRING, 0, OPT(dbname), "yugabyte", NULL, 0, 0,
     "database to back up, and the default database to restore into"},
    {"sslmode", ARCA_OPT_ENUM, 0, OPT(sslmode), "prefer", YSQL_SSLMODES, 0, 0,
     "libpq sslmode"},
    {"sslrootcert", ARCA_OPT_STRING, 0, OPT(sslrootcert), NULL, NULL, 0, 0,
     "CA certificate file for sslmode verify-ca / verify-full"},
    {"jobs", ARCA_OPT_INT, 0, OPT(jobs), "2", NULL, 1, 64,
     "parallel connections for COPY (backup and restore)"},
    {"tables", ARCA_OPT_STRING, 0, OPT(tables), NULL, NULL, 0, 0,
     "back up only these tables: comma-separated psql patterns (app.*, \"My Schema\".t?); "
     "a partitioned table brings its partitions"},
    {"exclude_tables", ARCA_OPT_STRING, 0, OPT(exclude_tables), NULL, NULL, 0, 0,
     "leave these tables out (definition and data): comma-separated psql patterns"},
    {"include_roles", ARCA_OPT_BOOL, 0, OPT(include_roles), "false", NULL, 0, 0,
     "also back up the cluster's roles (dumpall --roles-only, without password hashes)"},
    {"large_objects", ARCA_OPT_BOOL, 0, OPT(large_objects), "true", NULL, 0, 0,
     "back up the large objects (contents, owners, privileges, comments); false leaves them out"},
    {"dump_command", ARCA_OPT_STRING, 0, OPT(dump_command), NULL, NULL, 0, 0,
     "schema dump tool (default: ysql_dump when on PATH, else pg_dump)"},
    {"dumpall_command", ARCA_OPT_STRING, 0, OPT(dumpall_command), NULL, NULL, 0, 0,
     "roles dump tool (default: ysql_dumpall when on PATH, else pg_dumpall)"},
    {"restore_command", ARCA_OPT_STRING, 0, OPT(restore_command), NULL, NULL, 0, 0,
     "SQL script runner for restores (default: ysqlsh when on PATH, else psql)"},
    {"as_of", ARCA_OPT_STRING, 0, OPT(as_of), NULL, NULL, 0, 0,
     "YugabyteDB only: read schema and data as of this time (microseconds since the epoch or "
     "ISO-8601 UTC, e.g. 2025-03-13T09:48:46Z); an error on PostgreSQL"},
    {"slice_size", ARCA_OPT_SIZE, 0, OPT(slice_size), "256M", NULL, 1 << 20, (int64_t)1 << 40,
     "split tables larger than this into slices that several connections copy at once"},
    {"catalog_retries", ARCA_OPT_INT, 0, OPT(catalog_retries), "3", NULL, 0, 100,
     "YugabyteDB: schema dumps retried when a DDL changes the catalog version meanwhile"},
    {"connect_timeout", ARCA_OPT_INT, 0, OPT(connect_timeout), "10", NULL, 1, 3600,
     "seconds to wait for a connection"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

#define ROPT(field) offsetof(ysql_restore_opts, field)

static const arca_option ysql_restore_options[] = {
    {"target_database", ARCA_OPT_STRING, 0, ROPT(target_database), NULL, NULL, 0, 0,
     "restore into this database (created when missing) instead of the source's dbname"},
    {"clean", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(clean), "false", NULL, 0, 0,
     "replace what is there: drop and recreate the target database (table-level restores: "
     "empty the existing tables)"},
    {"table", ARCA_OPT_STRING, 0, ROPT(table), NULL, NULL, 0, 0,
     "restore only this table (schema.name; a partitioned table brings its partitions)"},
    {"drop_on_failure", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(drop_on_failure), "false", NULL, 0, 0,
     "drop the database this restore created if the restore fails (default: keep it for inspection)"},
    {"verify_data", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(verify_data), "false", NULL, 0, 0,
     "after loading, re-read every table and compare its digest with the backup's"},
    {"no_roles", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(no_roles), "false", NULL, 0, 0,
     "do not restore the roles the backup holds"},
    {"no_owner", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(no_owner), "false", NULL, 0, 0,
     "do not give objects (and the database) their backed-up owners: the restoring user owns them "
     "(as pg_restore --no-owner)"},
    {"no_privileges", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(no_privileges), "false", NULL, 0, 0,
     "do not restore privileges (GRANT/REVOKE), of objects and of the database (as pg_restore "
     "--no-privileges)"},
    {"no_large_objects", ARCA_OPT_BOOL, ARCA_OPT_FLAG, ROPT(no_large_objects), "false", NULL, 0, 0,
     "leave the backup's large objects out"},
    {"jobs", ARCA_OPT_INT, 0, ROPT(jobs), "0", NULL, 0, 64,
     "parallel connections (0: the source's jobs option)"},
    {NULL, 0, 0, 0, NULL, NULL, 0, 0, NULL},
};

static void ysql_inst_free(ysql_inst *yi)
{
    ysql_strv_free(yi->tables);
    ysql_strv_free(yi->exclude);
    free(yi);
}

/* Parses a pattern list option and checks every pattern; 0 or ARCA_ECONFIG. */
static int parse_patterns(const arca_host *h, const char *option, const char *text, char ***out)
{
    *out = NULL;
    if (!text)
        return ARCA_OK;
    char **v = NULL;
    int n = ysql_split_list(text, &v);
    if (n < 0)
        return h->error(h, ARCA_ECONFIG, "option '%s': unbalanced double quote in '%s'", option, text);
    if (n == 0) {
        ysql_strv_free(v);
        return h->error(h, ARCA_ECONFIG, "option '%s' is empty: give at least one pattern", option);
    }
    for (int i = 0; i < n; i++) {
        char *s = NULL, *t = NULL, err[256];
        int rc = ysql_pattern_regex(v[i], &s, &t, err, sizeof err);
        free(s);
        free(t);
        if (rc < 0) {
            ysql_strv_free(v);
            return h->error(h, ARCA_ECONFIG, "option '%s': %s", option, err);
        }
    }
    *out = v;
    return ARCA_OK;
}

static int ysql_create(const arca_host *host, const void *config, void **inst)
{
    const ysql_config *cfg = config;
    *inst = NULL;
    if (!cfg->host || !*cfg->host || !cfg->user || !*cfg->user || !cfg->dbname || !*cfg->dbname)
        return host->error(host, ARCA_ECONFIG, "options 'host', 'user' and 'dbname' must not be empty");
    ysql_inst *yi = calloc(1, sizeof *yi);
    if (!yi)
        return host->error(host, ARCA_ENOMEM, "out of memory");
    yi->host = host;
    yi->cfg = cfg;
    if (cfg->as_of) {
        char err[256];
        if (ybx_parse_as_of(cfg->as_of, &yi->as_of_micros, err, sizeof err) < 0) {
            ysql_inst_free(yi);
            return host->error(host, ARCA_ECONFIG, "option 'as_of': %s", err);
        }
    }
    int rc = parse_patterns(host, "tables", cfg->tables, &yi->tables);
    if (rc == ARCA_OK)
        rc = parse_patterns(host, "exclude_tables", cfg->exclude_tables, &yi->exclude);
    if (rc != ARCA_OK) {
        ysql_inst_free(yi);
        return rc;
    }
    *inst = yi;
    return ARCA_OK;
}

static void ysql_destroy(void *inst)
{
    if (inst)
        ysql_inst_free(inst);
}

static const arca_source_ops ysql_source_ops = {
    .size = sizeof(arca_source_ops),
    .backup = ysql_backup,
    .restore = ysql_restore,
};

static const arca_plugin ysql_plugin = {
    .abi_major = ARCA_ABI_MAJOR,
    .abi_minor = ARCA_ABI_MINOR,
    .size = sizeof(arca_plugin),
    .roles = ARCA_ROLE_SOURCE,
    .name = "ysql",
    .version = ARCA_VERSION,
    .description = "a YSQL database (YugabyteDB or PostgreSQL): schema via ysql_dump/pg_dump, "
                   "data via parallel COPY in one snapshot",
    .options = ysql_options,
    .config_size = sizeof(ysql_config),
    .create = ysql_create,
    .destroy = ysql_destroy,
    .source = &ysql_source_ops,
    .restore_options = ysql_restore_options,
    .restore_config_size = sizeof(ysql_restore_opts),
};

ARCA_PLUGIN_DEFINE(ysql_plugin)
