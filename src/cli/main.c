/*
 * main.c — the `timber` command line: dispatch to the commands, help and
 * version.  What the commands share is in common.c (cli.h).
 *
 * Exit codes: 0 success; 1 bad input, I/O failure or other runtime error;
 * 2 usage error; 130/143 interrupted by SIGINT/SIGTERM (nothing written).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char main_help[] =
    "usage: timber BASE INSTRUCT OUT [--gamma G] [options]\n"
    "       timber <command> [arguments]\n"
    "\n"
    "Refines an Instruct checkpoint with its paired Base checkpoint, without\n"
    "training (Timber, arXiv 2509.23595): for every weight matrix the delta\n"
    "D = Instruct - Base keeps its top k = ceil(eRank(D)) singular\n"
    "components whole and its tail is multiplied by gamma.\n"
    "\n"
    "commands:\n"
    "  refine BASE INSTRUCT OUT   write the refined checkpoint (the default)\n"
    "  inspect PATH               list the tensors of a checkpoint or shard\n"
    "  erank BASE INSTRUCT        effective ranks of Base, Instruct and delta\n"
    "  erank MODEL                effective rank of each weight matrix\n"
    "  cache info|verify PATH     describe or check an SVD cache (a file or\n"
    "                             a directory)\n"
    "  plan BASE INSTRUCT --parts N   how a run splits into N parts\n"
    "  finalize OUT               publish OUT once all its parts are done\n"
    "  help [COMMAND]             show help for a command\n"
    "\n"
    "options:\n"
    "  -h, --help                 show this help\n"
    "  -V, --version              show the version\n"
    "  --version --verbose        also the BLAS and LAPACK loaded, the BLAS\n"
    "                             threads, the compiler and the build type\n"
    "\n"
    "exit codes: 0 success, 1 bad input or I/O failure, 2 usage error,\n"
    "128+N stopped by signal N (130 SIGINT, 143 SIGTERM; nothing is left\n"
    "behind), 141 stdout's reader went away.\n"
    "Results go to stdout; errors, warnings, progress and summaries to\n"
    "stderr.  Documentation: man timber, docs/cli.md\n";

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"refine", cmd_refine, cli_refine_help},
    {"inspect", cmd_inspect, cli_inspect_help},
    {"erank", cmd_erank, cli_erank_help},
    {"cache", cmd_cache, cli_cache_help},
    {"finalize", cmd_finalize, cli_finalize_help},
    {"plan", cmd_plan, cli_plan_help},
    {"help", cmd_help, main_help},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc <= 1)
        return cli_print_help(main_help);
    if (argc > 2)
        return cli_usage(NULL, "help takes at most one command name");
    const struct command *c = find_command(argv[1]);
    if (!c)
        return cli_usage(NULL, "unknown command '%s'", argv[1]);
    return cli_print_help(c->help);
}

int main(int argc, char **argv)
{
    /* Before anything opens a file: see streams.c. */
    if (cli_setup_streams() != 0)
        return EXIT_FAIL;
    if (argc < 2)
        return cli_usage(NULL, "missing arguments");
    const char *first = argv[1];
    if (cli_is_help(first))
        return cli_print_help(main_help);
    if (strcmp(first, "-V") == 0 || strcmp(first, "--version") == 0) {
        if (argc > 3 || (argc == 3 && strcmp(argv[2], "--verbose") != 0))
            return cli_usage(NULL, "%s takes only --verbose", first);
        return cli_print_version(argc == 3);
    }
    const struct command *c = find_command(first);
    if (c)
        return c->run(argc - 1, argv + 1);
    /* No command word: `timber BASE INSTRUCT OUT ...` means refine. */
    return cmd_refine(argc, argv);
}
