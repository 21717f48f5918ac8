#include "core/knobs.h"

#include <stdlib.h>
#include <string.h>

#define MU_KNOB_ROW_(id, env, values, fallback, help)                                              \
    [MU_KNOB_##id] = {env, values, fallback, help},
static const mu_knob_t knobs[MU_KNOB_COUNT] = {MU_KNOB_TABLE(MU_KNOB_ROW_)};
#undef MU_KNOB_ROW_

const mu_knob_t *mu_knob_info(mu_knob_id_t id)
{
    return &knobs[id];
}

const char *mu_knob(mu_knob_id_t id)
{
    const char *value = getenv(knobs[id].env);
    return value && *value ? value : NULL;
}

enum { HELP_WIDTH = 96, HELP_INDENT = 6 };

/* text as lines of at most HELP_WIDTH columns, each indented by HELP_INDENT. */
static void print_wrapped(FILE *out, const char *text)
{
    const char *line = text;
    while (*line) {
        const int room = HELP_WIDTH - HELP_INDENT;
        int cut = (int)strlen(line);
        if (cut > room) {
            cut = room;
            while (cut > 0 && line[cut] != ' ')
                cut--;
            if (cut == 0) /* one word longer than a line: it gets the line */
                cut = (int)strcspn(line, " ");
        }
        fprintf(out, "%*s%.*s\n", HELP_INDENT, "", cut, line);
        line += cut;
        while (*line == ' ')
            line++;
    }
}

void mu_knobs_print_help(FILE *out)
{
    for (int i = 0; i < MU_KNOB_COUNT; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s (default: %s)", knobs[i].help, knobs[i].fallback);
        fprintf(out, "  %s=%s\n", knobs[i].env, knobs[i].values);
        print_wrapped(out, text);
    }
}

void mu_knobs_dump(FILE *out)
{
    for (int i = 0; i < MU_KNOB_COUNT; i++) {
        const char *value = mu_knob((mu_knob_id_t)i);
        if (value)
            fprintf(out, "  %-14s = %s\n", knobs[i].env, value);
    }
}
