/* plugins/common: errno -> arca status. */
#include "pc_status.h"

#include <errno.h>

int pc_status_of_errno(int err)
{
    switch (err) {
    case ENOENT:
        return ARCA_ENOENT;
    case EEXIST:
    case ENOTEMPTY:
        return ARCA_EEXIST;
    case ENOMEM:
        return ARCA_ENOMEM;
    case ECANCELED:
        return ARCA_ECANCELED;
    default:
        return ARCA_EFAIL;
    }
}
