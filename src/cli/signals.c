/*
 * signals.c — the signals that stop a run: SIGINT, SIGTERM, SIGHUP (the
 * terminal closed), SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM and SIGXFSZ (a
 * file grew past `ulimit -f`).  Each sets cli_cancel; the library polls
 * it, stops, removes its temporaries and returns TIMBER_ERR_INTERRUPTED,
 * and the command exits 128 + the signal's number (SIGXFSZ: 1, as for
 * any other write that failed).  A second signal while the first is
 * being honoured takes its default action at once: a run wedged in a
 * library call can always be stopped (its temporary is then left, and
 * swept by the next run: tempfile.h).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

volatile sig_atomic_t cli_cancel;

static const int stop_signals[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                                   SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ};
enum { NSTOP = sizeof stop_signals / sizeof *stop_signals };

static void on_signal(int sig)
{
    if (cli_cancel && sig != SIGXFSZ) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    if (!cli_cancel)
        cli_cancel = sig;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NSTOP; i++)
        sigaction(stop_signals[i], &sa, NULL);
}

const char *cli_signal_name(void)
{
    static char name[32];
    const char *abbrev = sigabbrev_np(cli_cancel);
    snprintf(name, sizeof name, "SIG%s", abbrev ? abbrev : "?");
    return name;
}

int cli_interrupted_exit(void)
{
    return cli_cancel == SIGXFSZ ? EXIT_FAIL : 128 + cli_cancel;
}
