/* plugins/common: HTTP retry policy, backoff and the per-request budget. */
#include "pc_retry.h"

#include <sys/random.h>
#include <time.h>

pc_verdict pc_http_classify(int transport, long status)
{
    if (transport)
        return PC_RETRY_AGAIN; /* reset, timeout, refused, truncated answer */
    if (status >= 200 && status < 300)
        return PC_RETRY_DONE;
    if (status >= 500 || status == 429 || status == 408)
        return PC_RETRY_AGAIN; /* server errors, proxies' 502/504, throttling, request timeout */
    return PC_RETRY_FAIL;      /* 400, 403, 404, 409, 412 ...: the same request gets the same answer */
}

uint64_t pc_backoff_ms(unsigned attempt, uint32_t rnd)
{
    uint64_t cap = 100;
    for (unsigned i = 1; i < attempt && cap < 20000; i++)
        cap *= 2;
    if (cap > 20000)
        cap = 20000;
    return cap / 2 + (uint64_t)rnd % (cap / 2 + 1);
}

uint64_t pc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pc_retry_start(pc_retry *r, int64_t max_retries, int64_t max_seconds)
{
    r->tries = 0;
    r->max_retries = max_retries;
    r->start_ms = pc_now_ms();
    r->deadline_ms = r->start_ms + (uint64_t)(max_seconds > 0 ? max_seconds : 0) * 1000;
}

void pc_retry_attempt(pc_retry *r)
{
    r->tries++;
}

int pc_retry_next(pc_retry *r, uint64_t *wait_ms)
{
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)pc_now_ms() * 2654435761u;
    uint64_t wait = pc_backoff_ms(r->tries, rnd), now = pc_now_ms();
    if ((int64_t)r->tries > r->max_retries || now + wait > r->deadline_ms)
        return 0;
    *wait_ms = wait;
    return 1;
}

double pc_retry_elapsed(const pc_retry *r)
{
    return (double)(pc_now_ms() - r->start_ms) / 1000.0;
}

int pc_retry_sleep(const arca_host *h, uint64_t ms)
{
    while (ms) {
        uint64_t slice = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
        if (h && h->cancelled(h))
            return ARCA_ECANCELED;
    }
    return ARCA_OK;
}
