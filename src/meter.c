/*
 * meter.c — per-tensor phase timing and progress ticks (see meter.h).
 * Two clocks per switch: CLOCK_MONOTONIC for the wall time, the thread's
 * CPU clock for the share of it spent computing.
 */
#include "meter.h"

#include <stddef.h>
#include <time.h>

static const char *const phase_names[TIMBER_PHASE_COUNT] = {
    "read",    "gram",    "reduce", "values", "vectors",
    "back",    "project", "write",  "cache",  "wait"};

const char *timber_phase_name(int phase)
{
    return phase >= 0 && phase < TIMBER_PHASE_COUNT ? phase_names[phase]
                                                    : NULL;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tb_meter_start(tb_meter *m, double *acc, int phase)
{
    m->acc = acc;
    m->phase = phase;
    m->wall = clock_s(CLOCK_MONOTONIC);
    m->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID);
}

void tb_meter_flush(tb_meter *m)
{
    if (!m || !m->acc)
        return;
    double wall = clock_s(CLOCK_MONOTONIC);
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID);
    double dw = wall - m->wall, dc = cpu - m->cpu;
    /* The two clocks tick apart: CPU time may come out a hair above the
     * wall time; never more than the wall time, never negative. */
    if (dw < 0)
        dw = 0;
    if (dc < 0)
        dc = 0;
    if (dc > dw)
        dc = dw;
    m->acc[m->phase] += dc;
    m->acc[TIMBER_PHASE_WAIT] += dw - dc;
    m->wall = wall;
    m->cpu = cpu;
}

void tb_meter_phase(tb_meter *m, int phase)
{
    if (!m || !m->acc || m->phase == phase)
        return;
    tb_meter_flush(m);
    m->phase = phase;
}

void tb_meter_tick(const tb_meter *m, uint64_t done, uint64_t total)
{
    if (m && m->tick && total)
        m->tick(m->ctx, done, total);
}
