/* plugins/common: the one errno -> arca status mapping in-tree plugins use. */
#ifndef PC_STATUS_H
#define PC_STATUS_H

#include <arca/plugin.h>

/* ENOENT -> ARCA_ENOENT, EEXIST and ENOTEMPTY -> ARCA_EEXIST, ENOMEM ->
 * ARCA_ENOMEM, ECANCELED -> ARCA_ECANCELED, anything else (0 included) ->
 * ARCA_EFAIL. `err` is a positive errno value. */
int pc_status_of_errno(int err);

#endif
