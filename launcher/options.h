/*
 * Declarative command-line settings. Each subcommand lists its settings once in a table
 * (name, environment variable, type, range or choices, default, help, where to store it);
 * the same table drives parsing, --help and the dump of the effective configuration.
 *
 * Precedence: the table's default, then the environment variable, then the command line.
 * A bad value names the option (or the variable) and what was expected; the caller exits 2.
 */
#ifndef MU_LAUNCHER_OPTIONS_H
#define MU_LAUNCHER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

enum { MU_LIST_MAX = 32, MU_POSITIONAL_MAX = 8, MU_PARSED_STORAGE = 4096 };

typedef enum mu_opt_type {
    MU_OPT_FLAG,   /* bool; takes no value */
    MU_OPT_INT,    /* long, range-checked */
    MU_OPT_DOUBLE, /* double, range-checked */
    MU_OPT_STRING, /* const char * */
    MU_OPT_CHOICE, /* const char *, one of choices ("a|b|c") */
    MU_OPT_LIST,   /* mu_str_list_t: repeatable, and comma-separated values split */
} mu_opt_type_t;

typedef struct mu_str_list {
    int count;
    const char *item[MU_LIST_MAX];
} mu_str_list_t;

typedef struct mu_option {
    const char *name; /* long option name, without "--" */
    const char *env;  /* environment variable, or NULL */
    mu_opt_type_t type;
    const char *metavar;
    const char *default_value; /* as it would be typed; NULL for none */
    double min, max;           /* MU_OPT_INT / MU_OPT_DOUBLE */
    const char *choices;       /* MU_OPT_CHOICE */
    const char *help;
    size_t offset; /* of the field in the settings struct */
} mu_option_t;

typedef struct mu_command_spec {
    const char *name;    /* "orth" */
    const char *usage;   /* "IN.npy OUT.npy [options]" */
    const char *summary; /* one paragraph */
    int min_positional, max_positional;
    const mu_option_t *options;
    int option_count;
} mu_command_spec_t;

typedef struct mu_parsed {
    int positional_count;
    const char *positional[MU_POSITIONAL_MAX];
    bool help; /* --help was given: print help, exit 0 */
    /* Split list items live here, so settings stay valid as long as this struct does. */
    char storage[MU_PARSED_STORAGE];
    size_t storage_used;
} mu_parsed_t;

/* Fills settings from defaults, the environment and argv (argv[0] is the subcommand name).
 * String settings point into argv, the environment or parsed->storage. */
mu_status_t mu_options_parse(const mu_command_spec_t *spec, int argc, char **argv, void *settings,
                             mu_parsed_t *parsed);

void mu_options_print_help(const mu_command_spec_t *spec, FILE *out);

/* One line per setting: "name = value". */
void mu_options_dump(const mu_command_spec_t *spec, const void *settings, FILE *out);

#endif
