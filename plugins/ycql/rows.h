/* ycql plugin: the archive's row format (docs/YCQL.md, "Row format"). A data object
 * holds the rows of one token range of one table, every cell as the exact bytes the
 * server sent (CQL's own serialization of its type, so nothing is converted either
 * way), with its write time and TTL when they are kept. Big-endian throughout:
 *
 *   "ARCQ" u8 version(1) u8 flags(bit 0: cells carry write time and TTL)
 *   u16 ncols, then per column: [string] name, [string] CQL type, u8 kind
 *       (0 partition key, 1 clustering, 2 static, 3 regular), u8 meta (1: its cells
 *       carry write time and TTL)
 *   rows: u8 'R', then per column [bytes] value (i32 length, -1 null) and, where meta,
 *       i64 write time in microseconds (INT64_MIN: none) and i32 TTL in seconds (0: none)
 *   end: u8 'E', i64 number of rows
 *
 * A reader refuses a stream whose end is missing or whose count differs: a cut
 * object is never read as a shorter table. */
#ifndef ARCA_YCQL_ROWS_H
#define ARCA_YCQL_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "cqlwire.h"

enum { YR_PARTITION = 0, YR_CLUSTERING = 1, YR_STATIC = 2, YR_REGULAR = 3 };
#define YR_NO_WRITETIME INT64_MIN

typedef struct yr_col {
    char *name, *type;
    int kind, meta;
} yr_col;

typedef struct yr_cell {
    const unsigned char *p; /* NULL: null */
    int32_t len;
    int64_t writetime;      /* where meta */
    int32_t ttl;
} yr_cell;

/* Writing: the header, then rows, then the end. */
int yr_write_header(cql_buf *b, const yr_col *cols, uint16_t ncols, int meta);
void yr_write_row(cql_buf *b, const yr_col *cols, uint16_t ncols, const yr_cell *cells);
void yr_write_end(cql_buf *b, int64_t rows);

/* Reading a whole object held in memory (the restore streams; see yr_next). */
typedef struct yr_reader {
    cql_rd rd;
    yr_col *cols;
    uint16_t ncols;
    int meta;
    int64_t rows;    /* read so far */
    int ended;
    const char *err;
} yr_reader;
/* 0 ok, -1 (why in r->err). */
int yr_open(yr_reader *r, const void *p, size_t len);
/* 1 a row in cells[ncols], 0 the end (its count checked), -1 error (r->err). */
int yr_next(yr_reader *r, yr_cell *cells);
void yr_close(yr_reader *r);

#endif
