/* plugins/common: the retry policy of HTTP object stores (s3, later gcs): which
 * answers are worth another try, how long to wait before it (exponential
 * backoff with jitter), and the budget of one request (attempts and seconds). */
#ifndef PC_RETRY_H
#define PC_RETRY_H

#include <stdint.h>

#include <arca/plugin.h>

typedef enum { PC_RETRY_DONE = 0, PC_RETRY_AGAIN = 1, PC_RETRY_FAIL = 2 } pc_verdict;

/* What to do with an answer by its HTTP status alone: `transport` is nonzero
 * when no complete answer came (connection reset, timeout, refused): again.
 * 2xx: done. 408, 429 and 5xx: again. Anything else: the same request would
 * get the same answer. A store refines this with its own error codes first. */
pc_verdict pc_http_classify(int transport, long status);

/* Milliseconds to wait before retry number `attempt` (1-based): a ceiling
 * doubling from 100 ms up to 20 s, and a wait drawn (from `rnd`) uniformly
 * between half the ceiling and the ceiling, so that requests which failed
 * together do not come back together, yet every wait still grows. */
uint64_t pc_backoff_ms(unsigned attempt, uint32_t rnd);

/* The budget of one request: at most max_retries retries and max_seconds in all. */
typedef struct pc_retry {
    unsigned tries; /* attempts started */
    int64_t max_retries;
    uint64_t start_ms, deadline_ms;
} pc_retry;

void pc_retry_start(pc_retry *r, int64_t max_retries, int64_t max_seconds);
/* Counts the attempt about to be made. */
void pc_retry_attempt(pc_retry *r);
/* After a failed attempt worth retrying: 1 with the wait before the next one
 * when the budget allows it, 0 when it does not (the caller gives up). */
int pc_retry_next(pc_retry *r, uint64_t *wait_ms);
/* Seconds since pc_retry_start, for "gave up after N attempts in S s". */
double pc_retry_elapsed(const pc_retry *r);

/* Sleeps `ms` in slices of 100 ms. ARCA_ECANCELED as soon as h->cancelled()
 * answers yes (h NULL: never), else ARCA_OK. */
int pc_retry_sleep(const arca_host *h, uint64_t ms);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t pc_now_ms(void);

#endif
