/* ycql plugin: the export of one range of one table into the row format (rows.h):
 * SELECT of every column (and, when kept, WRITETIME and TTL of the columns that have
 * them) prepared once, executed with the range's bounds as bound values, page by page
 * (page_size rows, the paging state sent back); each page's rows are written out
 * before the next is asked for, so memory is a page, whatever the table. */
#ifndef ARCA_YCQL_EXPORT_H
#define ARCA_YCQL_EXPORT_H

#include "cqlconn.h"
#include "ranges.h"
#include "rows.h"
#include "schema.h"

typedef struct ycql_export_opts {
    uint16_t consistency;
    int32_t page_size;
    int writetime_ttl;
    int yb;            /* YugabyteDB: partition_hash ranges */
} ycql_export_opts;

/* Where an object's bytes go; 0 or -1 (the export stops). */
typedef int (*ycql_sink)(void *ud, const void *p, size_t n);

/* The columns of table t in the row format's order (partition key, clustering,
 * static, regular; by position, then name), meta set where write time and TTL are
 * kept: regular and static columns that are not counters, not non-frozen
 * collections and not non-frozen user types (WRITETIME takes one cell). Caller frees
 * with ycql_row_columns_free; NULL on oom. */
yr_col *ycql_row_columns(const ycql_schema *s, const ycql_table *t, int writetime_ttl, uint16_t *n);
void ycql_row_columns_free(yr_col *v, uint16_t n);
/* SELECT ... FROM ks.t WHERE <range> (ranges.h); caller frees, NULL on oom. */
char *ycql_select(const char *ks, const ycql_table *t, const yr_col *cols, uint16_t n, const ycql_range *r,
                  int yb);
/* Exports one range: 0 with *rows, or -1 with err naming the table and statement. */
int ycql_export_range(cql_conn *c, const char *ks, const ycql_table *t, const yr_col *cols, uint16_t n,
                      const ycql_range *r, const ycql_export_opts *o, ycql_sink sink, void *ud, int64_t *rows,
                      char *err, size_t errlen);

#endif
