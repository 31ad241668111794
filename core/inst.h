/* A configured plugin instance ([source s] / [destination d]) with its own host
 * table, so every error a plugin reports lands on the instance that made it. */
#ifndef ARCA_INST_H
#define ARCA_INST_H

#include <pthread.h>
#include <signal.h>

#include "loader.h"

typedef struct inst {
    arca_host host;     /* handed to the plugin; host.core points back here */
    char *kind, *name;  /* "source"/"destination", section name */
    char *label;        /* "destination 'd' (nfs)" for messages */
    plug *plug;
    void *cfg;          /* the plugin's option struct, owned (opt_free) */
    void *state;        /* what create returned */
    pthread_mutex_t mu;
    char *err;          /* last error message the plugin reported for the instance */
    int errcode;
    struct herr *herrs; /* messages reported for one handle (host->handle_error) */
} inst;

/* Set on SIGINT/SIGTERM; every host->cancelled sees it. */
extern volatile sig_atomic_t g_interrupted;
/* The operation in progress may also cancel (a failure elsewhere in the pipeline). */
extern volatile int g_op_failed;

/* Takes ownership of cfg. On failure returns NULL and *err holds the plugin's message. */
inst *inst_create(plug *p, const char *kind, const char *name, void *cfg, char **err);
void inst_destroy(inst *in);
/* The plugin's message for the failure just returned (caller frees), or a
 * generic one naming the instance and `what` if the plugin set none. */
char *inst_take_error(inst *in, int code, const char *what);
/* The same for a failure of one handle (a put or get): the message reported
 * for that handle if there is one, else the instance's, else a generic one. */
char *inst_take_handle_error(inst *in, const void *handle, int code, const char *what);
/* Forget whatever was reported for `handle` (it is being freed). */
void inst_drop_handle(inst *in, const void *handle);

#endif
