/* ycql plugin: a keyspace's schema, read from system_schema and written back as CQL
 * DDL that recreates it (optionally under another keyspace name): the keyspace with its
 * replication, user-defined types in dependency order (a type after the types its
 * fields use), tables with their columns (static ones marked), partition and clustering
 * keys, clustering order and default_time_to_live / comment, then secondary indexes
 * (created last, after the data, by the restore). Names are quoted where CQL needs it. */
#ifndef ARCA_YCQL_SCHEMA_H
#define ARCA_YCQL_SCHEMA_H

#include <stddef.h>

#include "cqlconn.h"

typedef struct ycql_column {
    char *name, *kind, *type, *order; /* kind: partition_key, clustering, regular, static */
    int position;
} ycql_column;

typedef struct ycql_table {
    char *name, *comment;
    int default_ttl;
    ycql_column *cols;
    size_t ncols;
} ycql_table;

typedef struct ycql_udt {
    char *name;
    char **fields, **types;
    size_t n;
} ycql_udt;

typedef struct ycql_index {
    char *name, *table, *kind, *target;
} ycql_index;

typedef struct ycql_schema {
    char *keyspace;
    char *replication; /* "{'class': '...', 'replication_factor': '1'}" */
    int durable_writes;
    ycql_udt *types;   /* in dependency order */
    size_t ntypes;
    ycql_table *tables; /* by name */
    size_t ntables;
    ycql_index *indexes;
    size_t nindexes;
} ycql_schema;

/* qsort order of a table's columns: partition key, clustering (by position), static,
 * regular (by name); ycql_schema_read leaves every table's columns in it. */
int ycql_column_cmp(const void *a, const void *b);

/* Reads keyspace `ks` over c. 0, or -1 with err (the keyspace does not exist: says so). */
int ycql_schema_read(cql_conn *c, const char *ks, ycql_schema *out, char *err, size_t errlen);
void ycql_schema_free(ycql_schema *s);

/* The DDL, statements ending in ";\n", into a malloc'd string: as_keyspace renames the
 * keyspace (NULL: the same name); with_indexes 0 leaves the indexes out, 2 gives only them. */
char *ycql_schema_ddl(const ycql_schema *s, const char *as_keyspace, int with_indexes);

/* a name as CQL needs it (quoted unless lower-case letters, digits and _), appended to a
 * malloc'd string growing in *buf (len/cap); -1 when out of memory */
int ycql_quote_name(char **buf, size_t *len, size_t *cap, const char *name);

#endif
