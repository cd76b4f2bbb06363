/*
 * streams.c — the standard streams, made safe before anything else runs.
 *
 * A descriptor 0, 1 or 2 that is closed at start would be handed to the
 * next file timber opens (a shard, the SVD cache), and warnings meant for
 * stderr would be written into it: each closed one is reopened on
 * /dev/null first.  SIGPIPE is ignored, so a reader that goes away
 * (`| head`) turns into a failed write (EPIPE) that timber handles, never
 * a death by signal in the middle of a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int cli_setup_streams(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        /* The lowest free descriptor is fd itself. */
        int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (got != fd) {
            if (got >= 0)
                close(got);
            return -1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Whether fd is a pipe or socket whose reader has gone (poll reports
 * POLLERR for a pipe without readers). */
static int reader_gone(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !(S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
        return 0;
    struct pollfd p = {fd, POLLOUT, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

int cli_finish_stdout(int code)
{
    int e = 0;
    if (fflush(stdout) != 0)
        e = errno;
    if (!e && !ferror(stdout))
        return code;
    /* The reader went away: exit as a filter killed by SIGPIPE would
     * (141), silently: whoever closed the pipe wanted no more. */
    if (e == EPIPE || reader_gone(1))
        return EXIT_PIPE;
    cli_errorf("error writing to standard output: %s",
               strerror(e ? e : EIO));
    return code ? code : EXIT_FAIL;
}
