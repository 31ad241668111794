/* Turns a config file into validated sections and ready pipelines: the core's own
 * option tables for [arca] and [pipeline], plugin tables for the rest. */
#ifndef ARCA_PIPELINE_H
#define ARCA_PIPELINE_H

#include "config.h"
#include "engine.h"

typedef struct arca_globals {
    const char *plugin_path;
    int log_level; /* enum index: error|warn|info|debug */
    int64_t workers;
    uint64_t chunk_size;
} arca_globals;

typedef struct pipeline_cfg {
    const char *source;
    const char *destination;
    const char *compression;
    uint64_t chunk_size; /* 0: from [arca] */
    int64_t workers;     /* 0: from [arca] */
} pipeline_cfg;

extern const arca_option arca_global_options[];
extern const arca_option pipeline_options[];

typedef struct session {
    cfg_file *cfg;
    arca_globals *g;
    loader *ld;
} session;

/* Load the config, [arca] and the loader. Errors appended; returns NULL if unusable. */
session *session_open(const char *path, errlist *errs);
void session_close(session *s);
/* Validate every section of the file (config check). */
void session_check_all(session *s, errlist *errs);
/* Instantiate one [source]/[destination] section. */
inst *session_instance(session *s, const char *kind, const char *name, errlist *errs);
/* Build a pipeline with instances of its source and destinations. */
pipeline *session_pipeline(session *s, const char *name, errlist *errs);
void pipeline_free(pipeline *p);
/* Parse "zstd:N" (or "zstd"); -1 if bad. */
int parse_compression(const char *s, int *level);

#endif
