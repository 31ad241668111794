/* ysql plugin: what a restore does about the database itself - the SQL that
 * gives the target database (whatever its name) the backed-up owner,
 * privileges, comment, connection limit and settings (what pg_restore -C
 * carries), and which of the roles a backup names the target cluster lacks. */
#include "pure.h"

#include <stdlib.h>
#include <string.h>

/* Settings whose value is a list of names, each quoted on its own (the
 * server keeps them as `"$user", public`); any other value is one literal. */
static int list_setting(const char *name)
{
    static const char *const lists[] = {
        "search_path", "temp_tablespaces", "session_preload_libraries",
        "shared_preload_libraries", "local_preload_libraries", "unix_socket_directories", NULL,
    };
    for (const char *const *l = lists; *l; l++)
        if (!strcmp(*l, name))
            return 1;
    return 0;
}

void db_setting_value(pc_buf *b, const char *name, const char *value)
{
    if (!list_setting(name)) {
        ysql_buf_literal(b, value);
        return;
    }
    const char *p = value;
    int first = 1;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        pc_buf item = {0};
        pc_buf_add(&item, "", 0);
        if (*p == '"') {
            for (p++; *p; p++) {
                if (*p == '"') {
                    if (p[1] != '"') {
                        p++;
                        break;
                    }
                    p++;
                }
                pc_buf_add(&item, p, 1);
            }
            while (*p && *p != ',')
                p++;
        } else {
            const char *s = p;
            while (*p && *p != ',')
                p++;
            const char *e = p;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
                e--;
            pc_buf_add(&item, s, (size_t)(e - s));
        }
        if (!first)
            pc_buf_str(b, ", ");
        first = 0;
        ysql_buf_literal(b, item.p ? item.p : "");
        pc_buf_free(&item);
        if (*p != ',')
            break;
        p++;
    }
}

/* "a"."b" for a setting name (custom settings have a dot) */
static void setting_name(pc_buf *b, const char *name)
{
    const char *p = name;
    for (;;) {
        const char *dot = strchr(p, '.');
        char *part = dot ? strndup(p, (size_t)(dot - p)) : strdup(p);
        ysql_buf_ident(b, part ? part : "");
        free(part);
        if (!dot)
            break;
        pc_buf_add(b, ".", 1);
        p = dot + 1;
    }
}

char *db_props_sql(const cat_database *d, const char *target, int no_owner, int no_privileges)
{
    pc_buf b = {0};
    pc_buf_add(&b, "", 0);
    if (!d->present)
        return pc_buf_take(&b);
    if (d->owner && !no_owner) {
        pc_buf_str(&b, "ALTER DATABASE ");
        ysql_buf_ident(&b, target);
        pc_buf_str(&b, " OWNER TO ");
        ysql_buf_ident(&b, d->owner);
        pc_buf_str(&b, ";\n");
    }
    if (!d->acl_default && !no_privileges) {
        /* from nothing: the defaults (PUBLIC: CONNECT, TEMPORARY; the owner: all) revoked */
        pc_buf_str(&b, "REVOKE ALL ON DATABASE ");
        ysql_buf_ident(&b, target);
        pc_buf_str(&b, " FROM PUBLIC;\nREVOKE ALL ON DATABASE ");
        ysql_buf_ident(&b, target);
        pc_buf_str(&b, " FROM ");
        if (d->owner && !no_owner)
            ysql_buf_ident(&b, d->owner);
        else
            pc_buf_str(&b, "CURRENT_USER");
        pc_buf_str(&b, ";\n");
        for (size_t i = 0; i < d->nacl; i++) {
            const cat_acl *a = &d->acl[i];
            /* a grant made by the owner is what a superuser's GRANT records; one
             * made by another role (holding the grant option) is made as that role */
            int as_other = !d->owner || strcmp(a->grantor, d->owner);
            if (as_other) {
                pc_buf_str(&b, "SET ROLE ");
                ysql_buf_ident(&b, a->grantor);
                pc_buf_str(&b, ";\n");
            }
            pc_buf_printf(&b, "GRANT %s ON DATABASE ", a->privilege);
            ysql_buf_ident(&b, target);
            pc_buf_str(&b, " TO ");
            if (*a->grantee)
                ysql_buf_ident(&b, a->grantee);
            else
                pc_buf_str(&b, "PUBLIC");
            pc_buf_str(&b, a->grantable ? " WITH GRANT OPTION;\n" : ";\n");
            if (as_other)
                pc_buf_str(&b, "RESET ROLE;\n");
        }
    }
    if (d->comment) {
        pc_buf_str(&b, "COMMENT ON DATABASE ");
        ysql_buf_ident(&b, target);
        pc_buf_str(&b, " IS ");
        ysql_buf_literal(&b, d->comment);
        pc_buf_str(&b, ";\n");
    }
    if (d->connlimit != -1) {
        pc_buf_str(&b, "ALTER DATABASE ");
        ysql_buf_ident(&b, target);
        pc_buf_printf(&b, " WITH CONNECTION LIMIT %lld;\n", (long long)d->connlimit);
    }
    for (size_t i = 0; i < d->nsettings; i++) {
        const cat_setting *s = &d->settings[i];
        if (s->role) {
            pc_buf_str(&b, "ALTER ROLE ");
            ysql_buf_ident(&b, s->role);
            pc_buf_str(&b, " IN DATABASE ");
        } else {
            pc_buf_str(&b, "ALTER DATABASE ");
        }
        ysql_buf_ident(&b, target);
        pc_buf_str(&b, " SET ");
        setting_name(&b, s->name);
        pc_buf_str(&b, " TO ");
        db_setting_value(&b, s->name, s->value);
        pc_buf_str(&b, ";\n");
    }
    return pc_buf_take(&b);
}

static const char *use_text(char u)
{
    switch (u) {
    case 'o': return "owns objects";
    case 'd': return "owns the database";
    case 'a': return "privileges";
    case 'p': return "policies";
    case 's': return "settings";
    default: return NULL;
    }
}

char *db_missing_roles(const catalog *c, char *const *have, int no_owner, int no_privileges,
                       int roles_restored, size_t *count)
{
    pc_buf b = {0};
    pc_buf_add(&b, "", 0);
    *count = 0;
    for (size_t i = 0; i < c->nroles; i++) {
        const cat_role *r = &c->roles[i];
        if (ysql_strv_has(have, r->name) || (roles_restored && strchr(r->uses, 'r')))
            continue;
        int first = 1;
        for (const char *u = r->uses; *u; u++) {
            if (((*u == 'o' || *u == 'd') && no_owner) || (*u == 'a' && no_privileges) || !use_text(*u))
                continue;
            if (first) {
                pc_buf_str(&b, *count ? "\n  " : "  ");
                ysql_buf_ident(&b, r->name);
                pc_buf_str(&b, " (");
                (*count)++;
            }
            pc_buf_printf(&b, "%s%s", first ? "" : ", ", use_text(*u));
            first = 0;
        }
        if (!first)
            pc_buf_str(&b, ")");
    }
    return pc_buf_take(&b);
}
