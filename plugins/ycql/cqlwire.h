/* ycql plugin: the CQL native protocol's wire format (v4, and v3 where a server
 * refuses v4), as the public spec (native_protocol_v4.spec) defines it: frame
 * headers, the notation's primitives, the requests arca sends (STARTUP,
 * AUTH_RESPONSE, OPTIONS, QUERY, PREPARE, EXECUTE, BATCH) and the responses it
 * reads (ERROR, AUTHENTICATE, SUPPORTED, RESULT with its Rows and Prepared
 * metadata and every type option, YugabyteDB's JSONB 0x0080 included). No I/O:
 * bytes in, bytes out, so that every part is unit-tested from the spec's
 * examples; the connection code sits on top.
 *
 * Reading never goes past what it was given: every reader call checks the
 * bytes left and sets an error (the first one is kept) instead. */
#ifndef ARCA_YCQL_CQLWIRE_H
#define ARCA_YCQL_CQLWIRE_H

#include <stddef.h>
#include <stdint.h>

#define CQL_HEADER_LEN 9
#define CQL_MAX_BODY (256u << 20) /* the spec's limit on a frame's body */
#define CQL_TYPE_DEPTH 32         /* nesting of collection, UDT and tuple types arca accepts */

enum {
    CQL_OP_ERROR = 0x00, CQL_OP_STARTUP = 0x01, CQL_OP_READY = 0x02, CQL_OP_AUTHENTICATE = 0x03,
    CQL_OP_OPTIONS = 0x05, CQL_OP_SUPPORTED = 0x06, CQL_OP_QUERY = 0x07, CQL_OP_RESULT = 0x08,
    CQL_OP_PREPARE = 0x09, CQL_OP_EXECUTE = 0x0A, CQL_OP_REGISTER = 0x0B, CQL_OP_EVENT = 0x0C,
    CQL_OP_BATCH = 0x0D, CQL_OP_AUTH_CHALLENGE = 0x0E, CQL_OP_AUTH_RESPONSE = 0x0F, CQL_OP_AUTH_SUCCESS = 0x10
};

enum { /* header flags */
    CQL_FLAG_COMPRESSION = 0x01, CQL_FLAG_TRACING = 0x02, CQL_FLAG_CUSTOM_PAYLOAD = 0x04, CQL_FLAG_WARNING = 0x08
};

enum { /* query parameter flags */
    CQL_QF_VALUES = 0x01, CQL_QF_SKIP_METADATA = 0x02, CQL_QF_PAGE_SIZE = 0x04, CQL_QF_PAGING_STATE = 0x08,
    CQL_QF_SERIAL_CONSISTENCY = 0x10, CQL_QF_TIMESTAMP = 0x20, CQL_QF_NAMES = 0x40
};

enum { /* consistency levels */
    CQL_ANY = 0, CQL_ONE = 1, CQL_TWO = 2, CQL_THREE = 3, CQL_QUORUM = 4, CQL_ALL = 5, CQL_LOCAL_QUORUM = 6,
    CQL_EACH_QUORUM = 7, CQL_SERIAL = 8, CQL_LOCAL_SERIAL = 9, CQL_LOCAL_ONE = 10
};

enum { /* RESULT kinds */
    CQL_RESULT_VOID = 1, CQL_RESULT_ROWS = 2, CQL_RESULT_SET_KEYSPACE = 3, CQL_RESULT_PREPARED = 4,
    CQL_RESULT_SCHEMA_CHANGE = 5
};

enum { /* Rows metadata flags */
    CQL_RF_GLOBAL_SPEC = 0x0001, CQL_RF_HAS_MORE_PAGES = 0x0002, CQL_RF_NO_METADATA = 0x0004
};

enum { /* type option ids */
    CQL_T_CUSTOM = 0x0000, CQL_T_ASCII = 0x0001, CQL_T_BIGINT = 0x0002, CQL_T_BLOB = 0x0003, CQL_T_BOOLEAN = 0x0004,
    CQL_T_COUNTER = 0x0005, CQL_T_DECIMAL = 0x0006, CQL_T_DOUBLE = 0x0007, CQL_T_FLOAT = 0x0008, CQL_T_INT = 0x0009,
    CQL_T_TIMESTAMP = 0x000B, CQL_T_UUID = 0x000C, CQL_T_VARCHAR = 0x000D, CQL_T_VARINT = 0x000E,
    CQL_T_TIMEUUID = 0x000F, CQL_T_INET = 0x0010, CQL_T_DATE = 0x0011, CQL_T_TIME = 0x0012, CQL_T_SMALLINT = 0x0013,
    CQL_T_TINYINT = 0x0014, CQL_T_DURATION = 0x0015, CQL_T_LIST = 0x0020, CQL_T_MAP = 0x0021, CQL_T_SET = 0x0022,
    CQL_T_UDT = 0x0030, CQL_T_TUPLE = 0x0031, CQL_T_JSONB = 0x0080 /* YugabyteDB */
};

/* ---- writing: a growing buffer; an allocation failure sticks in `oom` ---- */
typedef struct cql_buf {
    unsigned char *p;
    size_t len, cap;
    size_t frame; /* where the frame being written starts */
    int oom;
} cql_buf;

void cql_buf_free(cql_buf *b);
void cql_buf_wipe(cql_buf *b); /* zeroes the bytes (a password was in them), then frees */
void cql_put_u8(cql_buf *b, uint8_t v);
void cql_put_u16(cql_buf *b, uint16_t v);
void cql_put_i32(cql_buf *b, int32_t v);
void cql_put_i64(cql_buf *b, int64_t v);
void cql_put_raw(cql_buf *b, const void *p, size_t n);
void cql_put_string(cql_buf *b, const char *s);                   /* [string] */
void cql_put_long_string(cql_buf *b, const char *s, size_t n);    /* [long string] */
void cql_put_bytes(cql_buf *b, const void *p, int32_t n);         /* [bytes]; n < 0: null */
void cql_put_short_bytes(cql_buf *b, const void *p, uint16_t n);  /* [short bytes] */
void cql_put_string_map(cql_buf *b, const char *const *kv, size_t pairs); /* [string map] */

/* A frame: begin writes the header with length 0, end patches the body's length in
 * (frames may follow one another in one buffer, written one at a time).
 * 0, or -1 when the body is over CQL_MAX_BODY or memory ran out. */
void cql_frame_begin(cql_buf *b, uint8_t version, int16_t stream, uint8_t opcode);
int cql_frame_end(cql_buf *b);

/* Requests (each one whole frame appended to b; 0 or -1 as cql_frame_end). */
int cql_req_startup(cql_buf *b, uint8_t version, int16_t stream);
int cql_req_options(cql_buf *b, uint8_t version, int16_t stream);
/* SASL PLAIN for PasswordAuthenticator: "\0user\0password"; wipe b after sending it */
int cql_req_auth_plain(cql_buf *b, uint8_t version, int16_t stream, const char *user, const char *password);
/* the query parameters of QUERY and EXECUTE: values as [value]s already encoded
 * (nvalues of them, in `values`), page_size <= 0 for none, paging state when paging_len >= 0 */
typedef struct cql_params {
    uint16_t consistency;
    uint16_t nvalues;
    const cql_buf *values;
    int32_t page_size;
    const void *paging;
    int32_t paging_len;
    int skip_metadata;
    int64_t timestamp; /* 0: none */
} cql_params;
int cql_req_query(cql_buf *b, uint8_t version, int16_t stream, const char *query, const cql_params *qp);
int cql_req_prepare(cql_buf *b, uint8_t version, int16_t stream, const char *query);
int cql_req_execute(cql_buf *b, uint8_t version, int16_t stream, const void *id, uint16_t idlen,
                    const cql_params *qp);

/* BATCH: begin, add statements (a prepared id, or query text; values as
 * [value]s already encoded), end with their count (1..65535), the consistency
 * and a default timestamp (0: none; statements' USING TIMESTAMP win). */
enum { CQL_BATCH_LOGGED = 0, CQL_BATCH_UNLOGGED = 1, CQL_BATCH_COUNTER = 2 };
void cql_batch_begin(cql_buf *b, uint8_t version, int16_t stream, uint8_t type);
void cql_batch_add_prepared(cql_buf *b, const void *id, uint16_t idlen, uint16_t nvalues, const void *values,
                            size_t len);
void cql_batch_add_query(cql_buf *b, const char *query, uint16_t nvalues, const void *values, size_t len);
int cql_batch_end(cql_buf *b, uint16_t count, uint16_t consistency, int64_t timestamp);

/* ---- reading ---- */
typedef struct cql_rd {
    const unsigned char *p;
    size_t len, off;
    const char *err; /* the first problem, a static text; NULL while all is well */
} cql_rd;

void cql_rd_init(cql_rd *r, const void *p, size_t len);
const unsigned char *cql_get_raw(cql_rd *r, size_t n); /* n bytes as they are (a tracing id) */
uint8_t cql_get_u8(cql_rd *r);
uint16_t cql_get_u16(cql_rd *r);
int32_t cql_get_i32(cql_rd *r);
int64_t cql_get_i64(cql_rd *r);
/* [string] / [long string]: a pointer into the input (not NUL-terminated) and its length */
const char *cql_get_string(cql_rd *r, size_t *n);
const char *cql_get_long_string(cql_rd *r, size_t *n);
/* [bytes]: a pointer into the input, *n = length, or -1 for null (-2 "unset" in [value]s) */
const unsigned char *cql_get_bytes(cql_rd *r, int32_t *n);
const unsigned char *cql_get_short_bytes(cql_rd *r, uint16_t *n);
/* duplicates a [string] (malloc'd, NUL-terminated; NULL on error or a NUL inside) */
char *cql_get_strdup(cql_rd *r);

typedef struct cql_header {
    uint8_t version; /* without the response bit */
    uint8_t response;
    uint8_t flags;
    int16_t stream;
    uint8_t opcode;
    uint32_t length;
} cql_header;
/* 0, or -1 with *why set: a version other than 3 or 4, a body over the limit */
int cql_header_parse(const unsigned char h[CQL_HEADER_LEN], cql_header *out, const char **why);

/* A type option, read recursively (at most CQL_TYPE_DEPTH deep). */
typedef struct cql_type {
    uint16_t id;
    char *custom;               /* CQL_T_CUSTOM: the Java class */
    char *ks, *name;            /* CQL_T_UDT */
    uint16_t n;                 /* sub-types: 1 list/set, 2 map, fields of a UDT or tuple */
    char **fields;              /* CQL_T_UDT: field names */
    struct cql_type **sub;
} cql_type;

cql_type *cql_get_type(cql_rd *r);
void cql_type_free(cql_type *t);
/* 1 when CQL takes the name as it is (lower-case letters, digits and _, not first a
 * digit); otherwise it must be written in double quotes, inner ones doubled. */
int cql_name_is_bare(const char *s);

/* The type as CQL writes it ("map<text, frozen<list<int>>>", "ks.udt", "tuple<int, text>",
 * "jsonb", custom classes quoted); collections nested in collections are frozen, as CQL
 * requires. Returns the length it needed (snprintf's convention). */
size_t cql_type_format(const cql_type *t, char *out, size_t cap);

typedef struct cql_col {
    char *ks, *table, *name;
    cql_type *type;
} cql_col;

/* RESULT Rows metadata (also the result metadata of Prepared). The rows follow in the
 * reader: rows_count x columns_count [bytes]. */
typedef struct cql_meta {
    int32_t flags;
    int32_t ncols;
    const unsigned char *paging; /* has_more_pages: the state to send back */
    int32_t paging_len;          /* -1 when there are no more pages */
    cql_col *cols;               /* NULL with No_metadata */
} cql_meta;

int cql_get_meta(cql_rd *r, cql_meta *m);
void cql_meta_free(cql_meta *m);

typedef struct cql_prepared {
    const unsigned char *id;
    uint16_t idlen;
    int32_t nbind, npk;
    uint16_t *pk;      /* partition key indexes among the bind markers */
    cql_col *bind;
    cql_meta result;
} cql_prepared;

int cql_get_prepared(cql_rd *r, cql_prepared *p);
void cql_prepared_free(cql_prepared *p);

/* An ERROR body: its code and message (into msg, truncated to cap) and, for the codes
 * that carry them, the extras as text ("consistency QUORUM, 1 of 2 replicas responded"). */
int cql_get_error(cql_rd *r, int32_t *code, char *msg, size_t cap);
const char *cql_error_name(int32_t code);
const char *cql_consistency_name(uint16_t c);

#endif
