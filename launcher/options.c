#include "launcher/options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { HELP_OPTION = 1000 }; /* getopt_long value for --help, outside the table's indices */

static void *field(void *settings, const mu_option_t *opt)
{
    return (char *)settings + opt->offset;
}

static mu_status_t parse_long(const mu_option_t *opt, const char *text, const char *source,
                              long *out)
{
    char *end;
    errno = 0;
    const long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return mu_error(MU_ERR_INVALID, "%s: '%s' is not an integer", source, text);
    if ((double)v < opt->min || (double)v > opt->max)
        return mu_error(MU_ERR_INVALID, "%s: %ld is outside [%.17g, %.17g]", source, v, opt->min,
                        opt->max);
    *out = v;
    return MU_OK;
}

static mu_status_t parse_double(const mu_option_t *opt, const char *text, const char *source,
                                double *out)
{
    char *end;
    errno = 0;
    const double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v))
        return mu_error(MU_ERR_INVALID, "%s: '%s' is not a finite number", source, text);
    if (v < opt->min || v > opt->max)
        return mu_error(MU_ERR_INVALID, "%s: %g is outside [%.17g, %.17g]", source, v, opt->min,
                        opt->max);
    *out = v;
    return MU_OK;
}

static mu_status_t check_choice(const mu_option_t *opt, const char *text, const char *source)
{
    const size_t len = strlen(text);
    for (const char *c = opt->choices; *c;) {
        const size_t n = strcspn(c, "|");
        if (n == len && strncmp(c, text, n) == 0)
            return MU_OK;
        c += n + (c[n] == '|');
    }
    return mu_error(MU_ERR_INVALID, "%s: '%s' is not one of %s", source, text, opt->choices);
}

static mu_status_t append_items(mu_str_list_t *list, const char *text, const char *source,
                                mu_parsed_t *parsed)
{
    for (const char *p = text; *p;) {
        const size_t n = strcspn(p, ",");
        if (n > 0) {
            if (list->count >= MU_LIST_MAX)
                return mu_error(MU_ERR_INVALID, "%s: more than %d values", source, MU_LIST_MAX);
            if (parsed->storage_used + n + 1 > sizeof parsed->storage)
                return mu_error(MU_ERR_INVALID, "%s: values too long", source);
            char *copy = parsed->storage + parsed->storage_used;
            memcpy(copy, p, n);
            copy[n] = '\0';
            parsed->storage_used += n + 1;
            list->item[list->count++] = copy;
        }
        p += n + (p[n] == ',');
    }
    return MU_OK;
}

/* Stores one textual value; `source` names it in errors ("--iters", "MUOND_ITERS"). */
static mu_status_t set_value(const mu_option_t *opt, const char *text, const char *source,
                             void *settings, mu_parsed_t *parsed)
{
    void *dst = field(settings, opt);
    switch (opt->type) {
    case MU_OPT_FLAG:
        *(bool *)dst =
            !(strcmp(text, "0") == 0 || strcmp(text, "false") == 0 || strcmp(text, "no") == 0);
        return MU_OK;
    case MU_OPT_INT:
        return parse_long(opt, text, source, (long *)dst);
    case MU_OPT_DOUBLE:
        return parse_double(opt, text, source, (double *)dst);
    case MU_OPT_CHOICE:
        MU_CHECK(check_choice(opt, text, source));
        *(const char **)dst = text;
        return MU_OK;
    case MU_OPT_STRING:
        *(const char **)dst = text;
        return MU_OK;
    case MU_OPT_LIST:
        return append_items((mu_str_list_t *)dst, text, source, parsed);
    }
    return mu_error(MU_ERR_INVALID, "%s: unknown option type", source);
}

static mu_status_t apply_defaults_and_env(const mu_command_spec_t *spec, void *settings,
                                          mu_parsed_t *parsed)
{
    for (int i = 0; i < spec->option_count; i++) {
        const mu_option_t *opt = &spec->options[i];
        const char *env = opt->env ? getenv(opt->env) : NULL;
        if (env && *env) {
            if (opt->type == MU_OPT_LIST)
                ((mu_str_list_t *)field(settings, opt))->count = 0;
            MU_CHECK(set_value(opt, env, opt->env, settings, parsed));
        } else if (opt->default_value) {
            MU_CHECK(set_value(opt, opt->default_value, opt->name, settings, parsed));
        }
    }
    return MU_OK;
}

/* A list given on the command line replaces its default instead of extending it. */
static void clear_lists_given(const mu_command_spec_t *spec, int argc, char **argv, void *settings)
{
    for (int i = 0; i < spec->option_count; i++) {
        const mu_option_t *opt = &spec->options[i];
        if (opt->type != MU_OPT_LIST)
            continue;
        const size_t len = strlen(opt->name);
        for (int a = 1; a < argc; a++)
            if (strncmp(argv[a], "--", 2) == 0 && strncmp(argv[a] + 2, opt->name, len) == 0 &&
                (argv[a][2 + len] == '\0' || argv[a][2 + len] == '='))
                ((mu_str_list_t *)field(settings, opt))->count = 0;
    }
}

static void build_long_options(const mu_command_spec_t *spec, struct option *longopts)
{
    for (int i = 0; i < spec->option_count; i++) {
        const mu_option_t *opt = &spec->options[i];
        longopts[i] = (struct option){
            opt->name, opt->type == MU_OPT_FLAG ? no_argument : required_argument, NULL, i};
    }
    longopts[spec->option_count] = (struct option){"help", no_argument, NULL, HELP_OPTION};
    longopts[spec->option_count + 1] = (struct option){0};
}

static mu_status_t parse_argv(const mu_command_spec_t *spec, int argc, char **argv, void *settings,
                              mu_parsed_t *parsed, struct option *longopts)
{
    opterr = 0;
    optind = 0; /* glibc: 0 restarts the scan from scratch */
    for (;;) {
        int index = -1;
        const int c = getopt_long(argc, argv, "h", longopts, &index);
        if (c == -1)
            break;
        if (c == HELP_OPTION || c == 'h') {
            parsed->help = true;
            return MU_OK;
        }
        if (c == '?' || c == ':')
            return mu_error(MU_ERR_INVALID, "%s: unknown option or missing value near '%s'",
                            spec->name, argv[optind - 1]);
        const mu_option_t *opt = &spec->options[c];
        char source[80];
        snprintf(source, sizeof source, "--%s", opt->name);
        MU_CHECK(set_value(opt, opt->type == MU_OPT_FLAG ? "1" : optarg, source, settings, parsed));
    }
    for (int a = optind; a < argc; a++) {
        if (parsed->positional_count >= MU_POSITIONAL_MAX)
            return mu_error(MU_ERR_INVALID, "%s: too many arguments", spec->name);
        parsed->positional[parsed->positional_count++] = argv[a];
    }
    return MU_OK;
}

mu_status_t mu_options_parse(const mu_command_spec_t *spec, int argc, char **argv, void *settings,
                             mu_parsed_t *parsed)
{
    memset(parsed, 0, sizeof *parsed);
    MU_CHECK(apply_defaults_and_env(spec, settings, parsed));
    clear_lists_given(spec, argc, argv, settings);
    struct option *longopts = calloc((size_t)spec->option_count + 2, sizeof *longopts);
    if (!longopts)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the option table");
    build_long_options(spec, longopts);
    const mu_status_t status = parse_argv(spec, argc, argv, settings, parsed, longopts);
    free(longopts);
    MU_CHECK(status);
    if (!parsed->help && (parsed->positional_count < spec->min_positional ||
                          parsed->positional_count > spec->max_positional))
        return mu_error(MU_ERR_INVALID, "%s: expected %s (see 'muond %s --help')", spec->name,
                        spec->usage, spec->name);
    return MU_OK;
}

static void format_value(const mu_option_t *opt, const void *settings, char *out, size_t len)
{
    const void *src = (const char *)settings + opt->offset;
    switch (opt->type) {
    case MU_OPT_FLAG:
        snprintf(out, len, "%s", *(const bool *)src ? "true" : "false");
        break;
    case MU_OPT_INT:
        snprintf(out, len, "%ld", *(const long *)src);
        break;
    case MU_OPT_DOUBLE:
        snprintf(out, len, "%.17g", *(const double *)src);
        break;
    case MU_OPT_STRING:
    case MU_OPT_CHOICE:
        snprintf(out, len, "%s", *(const char *const *)src ? *(const char *const *)src : "");
        break;
    case MU_OPT_LIST: {
        const mu_str_list_t *list = src;
        size_t used = 0;
        out[0] = '\0';
        for (int i = 0; i < list->count && used < len; i++)
            used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", list->item[i]);
        break;
    }
    }
}

void mu_options_dump(const mu_command_spec_t *spec, const void *settings, FILE *out)
{
    for (int i = 0; i < spec->option_count; i++) {
        char value[512];
        format_value(&spec->options[i], settings, value, sizeof value);
        fprintf(out, "  %-14s = %s\n", spec->options[i].name, value);
    }
}

void mu_options_print_help(const mu_command_spec_t *spec, FILE *out)
{
    fprintf(out, "usage: muond %s %s\n\n%s\n\noptions:\n", spec->name, spec->usage, spec->summary);
    for (int i = 0; i < spec->option_count; i++) {
        const mu_option_t *opt = &spec->options[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s%s", opt->name, opt->metavar ? " " : "",
                 opt->metavar ? opt->metavar : "");
        fprintf(out, "  %-24s %s", flag, opt->help);
        if (opt->type == MU_OPT_CHOICE)
            fprintf(out, " (%s)", opt->choices);
        if (opt->type == MU_OPT_INT || opt->type == MU_OPT_DOUBLE)
            fprintf(out, " [%g..%g]", opt->min, opt->max);
        if (opt->default_value)
            fprintf(out, " (default %s)", opt->default_value);
        if (opt->env)
            fprintf(out, " [env %s]", opt->env);
        fputc('\n', out);
    }
    fprintf(out, "  %-24s %s\n", "--help", "show this help and exit");
}
