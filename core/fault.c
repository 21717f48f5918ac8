#include "core/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

bool mu_faults_armed = false;

static mu_fault_t table[MU_FAULTS_MAX];
static int table_count;

static const char *const kind_names[MU_FAULT_KINDS] = {
    [MU_FAULT_NAN_GRAD] = "nan-grad",
    [MU_FAULT_INF_GRAD] = "inf-grad",
    [MU_FAULT_ZERO_GRAD] = "zero-grad",
    [MU_FAULT_ILLCOND] = "illcond",
    [MU_FAULT_BITFLIP] = "bitflip",
    [MU_FAULT_STALL] = "stall",
    [MU_FAULT_KILL] = "kill",
    [MU_FAULT_TRAINER_KILL] = "trainer-kill",
    [MU_FAULT_BAD_MESSAGE] = "bad-message",
    [MU_FAULT_DISK_FULL] = "disk-full",
    [MU_FAULT_SDC] = "sdc",
    [MU_FAULT_FALLBACK_NOMEM] = "fallback-nomem",
    [MU_FAULT_BAD_ROOT] = "bad-root",
};

/* "nan-grad, inf-grad, ... or bad-root", for messages. */
static void kind_list(char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < MU_FAULT_KINDS && used < len; k++)
        used += (size_t)snprintf(out + used, len - used, "%s%s",
                                 k == 0                    ? ""
                                 : k == MU_FAULT_KINDS - 1 ? " or "
                                                           : ", ",
                                 kind_names[k]);
}

const char *mu_fault_kind_name(mu_fault_kind_t kind)
{
    return kind >= 0 && kind < MU_FAULT_KINDS ? kind_names[kind] : "?";
}

static mu_status_t parse_number(const char *item, const char *key, const char *text, long min,
                                long *out)
{
    char *end;
    errno = 0;
    const long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min)
        return mu_error(MU_ERR_INVALID, "--inject %s: %s=%s is not an integer >= %ld", item, key,
                        text, min);
    *out = v;
    return MU_OK;
}

static mu_status_t parse_key(const char *item, char *pair, mu_fault_t *f)
{
    char *eq = strchr(pair, '=');
    if (!eq)
        return mu_error(MU_ERR_INVALID, "--inject %s: '%s' is not key=value", item, pair);
    *eq = '\0';
    const char *value = eq + 1;
    long v = 0;
    if (strcmp(pair, "param") == 0) {
        if (strlen(value) >= sizeof f->param || !*value)
            return mu_error(MU_ERR_INVALID, "--inject %s: bad param name", item);
        strcpy(f->param, value);
        return MU_OK;
    }
    if (strcmp(pair, "rank") == 0) {
        MU_CHECK(parse_number(item, pair, value, 0, &v));
        f->rank = (int)v;
    } else if (strcmp(pair, "step") == 0) {
        MU_CHECK(parse_number(item, pair, value, 1, &f->step));
    } else if (strcmp(pair, "ms") == 0) {
        MU_CHECK(parse_number(item, pair, value, 0, &f->ms));
    } else if (strcmp(pair, "times") == 0) {
        MU_CHECK(parse_number(item, pair, value, 1, &f->times));
    } else {
        return mu_error(MU_ERR_INVALID,
                        "--inject %s: unknown key '%s' (rank, step, param, ms or times)", item,
                        pair);
    }
    return MU_OK;
}

/* One item: KIND[:key=value]... */
static mu_status_t parse_item(char *item, mu_fault_t *f)
{
    char original[256];
    snprintf(original, sizeof original, "%s", item);
    *f = (mu_fault_t){.rank = -1, .times = -1, .ms = 1000};
    char *save = NULL, *kind = strtok_r(item, ":", &save);
    int k = 0;
    while (k < MU_FAULT_KINDS && (!kind || strcmp(kind, kind_names[k]) != 0))
        k++;
    if (k == MU_FAULT_KINDS) {
        char kinds[256];
        kind_list(kinds, sizeof kinds);
        return mu_error(MU_ERR_INVALID, "--inject %s: unknown fault '%s' (%s)", original,
                        kind ? kind : "", kinds);
    }
    f->kind = (mu_fault_kind_t)k;
    /* Faults of an event fire once unless told; faults of a gradient at every match. */
    if (k == MU_FAULT_BITFLIP || k == MU_FAULT_STALL || k == MU_FAULT_KILL ||
        k == MU_FAULT_TRAINER_KILL || k == MU_FAULT_BAD_MESSAGE || k == MU_FAULT_FALLBACK_NOMEM)
        f->times = 1;
    for (char *pair; (pair = strtok_r(NULL, ":", &save));)
        MU_CHECK(parse_key(original, pair, f));
    return MU_OK;
}

mu_status_t mu_faults_parse(const char *spec)
{
    mu_faults_clear();
    char copy[1024];
    if (!spec || strlen(spec) >= sizeof copy)
        return mu_error(MU_ERR_INVALID, "--inject: the specification is missing or too long");
    strcpy(copy, spec);
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (table_count == MU_FAULTS_MAX)
            return mu_error(MU_ERR_INVALID, "--inject: more than %d faults", MU_FAULTS_MAX);
        mu_status_t status = parse_item(item, &table[table_count]);
        if (status != MU_OK) {
            mu_faults_clear();
            return status;
        }
        table_count++;
    }
    mu_faults_armed = table_count > 0;
    return MU_OK;
}

void mu_faults_clear(void)
{
    table_count = 0;
    mu_faults_armed = false;
}

const mu_fault_t *mu_fault_fire_slow(mu_fault_kind_t kind, int rank, long step, const char *param)
{
    for (int i = 0; i < table_count; i++) {
        mu_fault_t *f = &table[i];
        if (f->kind != kind || f->times == 0 || (f->rank >= 0 && f->rank != rank) ||
            (f->step != 0 && f->step != step) ||
            (param && f->param[0] && strcmp(param, f->param) != 0))
            continue;
        if (f->times > 0)
            f->times--;
        MU_LOG(MU_LOG_WARN, MU_SUB_CORE, "injecting %s on rank %d at step %ld%s%s",
               kind_names[kind], rank, step, param ? " in " : "", param ? param : "");
        return f;
    }
    return NULL;
}

int mu_faults_count(void)
{
    return table_count;
}

mu_fault_t *mu_fault_at(int index)
{
    return index >= 0 && index < table_count ? &table[index] : NULL;
}
