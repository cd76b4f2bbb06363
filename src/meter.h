/*
 * meter.h — where one tensor's time goes, and how far it got: a worker
 * attributes its time to the phases of timber_phase as it moves through
 * them (refine.c, matrix.c, spectrum.c switch phases), and the streamed
 * passes tick their progress within the tensor, so a progress line moves
 * during a minute-long embedding.
 *
 * A phase gets the worker's thread CPU time spent in it; the rest of the
 * wall time since the last switch (the thread was off the CPU: I/O, a
 * lock, no free core) goes to TIMBER_PHASE_WAIT.  Every switch is
 * attributed, so the phases of a tensor add up to its wall time.  A NULL
 * meter is allowed everywhere and measures nothing (erank, tests).
 */
#ifndef TIMBER_METER_H
#define TIMBER_METER_H

#include <stdint.h>

#include "timber.h"

typedef struct tb_meter {
    double *acc;      /* TIMBER_PHASE_COUNT seconds, added to */
    int phase;        /* the phase being timed */
    double wall, cpu; /* the clocks at the last switch */
    /* Progress within the current pass: `done` of `total` of its rows,
     * columns or blocks are through.  NULL: nobody asked. */
    void (*tick)(void *ctx, uint64_t done, uint64_t total);
    void *ctx;
} tb_meter;

/* Starts timing into acc (not cleared), in `phase`. */
void tb_meter_start(tb_meter *m, double *acc, int phase);
/* From now on the time goes to `phase` (a no-op when it already does). */
void tb_meter_phase(tb_meter *m, int phase);
/* Attributes the time since the last switch; the meter stays usable. */
void tb_meter_flush(tb_meter *m);
/* Passes a pass's progress on to the tick callback, if any. */
void tb_meter_tick(const tb_meter *m, uint64_t done, uint64_t total);

/* The least seconds between two progress calls from within tensors
 * (refine.c; 0.25).  A variable only so tests can see every tick (0). */
extern double tb_progress_interval;

#endif /* TIMBER_METER_H */
