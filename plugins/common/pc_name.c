/* plugins/common: the object-name check nfs and s3 share. */
#include "pc_name.h"

#include <stdio.h>
#include <string.h>

const char *pc_name_problem(const char *name)
{
    if (!name || !*name)
        return "it is empty";
    if (name[0] == '.')
        return "it starts with '.' (reserved for temporaries)";
    if (strchr(name, '/'))
        return "it contains '/' (objects are flat names)";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "it contains a control byte";
    if (strlen(name) > PC_NAME_MAX)
        return "it is longer than 1024 bytes";
    return NULL;
}

void pc_name_shown(const char *name, char *out, size_t cap)
{
    size_t n = 0;

    if (!cap)
        return;
    for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++) {
        char esc[8];
        size_t k;
        if (*p < 0x20 || *p == 0x7f)
            k = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
        else
            esc[0] = (char)*p, esc[1] = 0, k = 1;
        if (n + k + 4 > cap || n >= 80) {
            snprintf(out + n, cap - n, "%s", cap - n > 3 ? "..." : "");
            return;
        }
        memcpy(out + n, esc, k);
        n += k;
    }
    out[n] = '\0';
}

int pc_check_name(const arca_host *h, const char *name)
{
    const char *why = pc_name_problem(name);
    char shown[128];

    if (!why)
        return 0;
    pc_name_shown(name, shown, sizeof shown);
    return h->error(h, ARCA_ECONFIG, "object name '%s' refused: %s", shown, why);
}

int pc_check_prefix(const arca_host *h, const char *prefix)
{
    char shown[128];

    if (!prefix || !strchr(prefix, '/'))
        return 0;
    pc_name_shown(prefix, shown, sizeof shown);
    return h->error(h, ARCA_ECONFIG, "list prefix '%s' contains '/': objects are flat names", shown);
}
