/*
 * mlp_trainer: an example trainer for muond (libmuond-client, libc and libm only).
 *
 * A 64 -> 256 -> 256 -> 10 tanh MLP regresses a fixed random "teacher" network of the same
 * shape on synthetic inputs. P trainers (one per muond rank) each take their slice of every
 * global batch and hand muond the gradient of their slice's mean loss, in local gradient mode;
 * muond averages them, so the update follows the gradient of the global batch's loss. Rank 0
 * also reports the loss on a fixed held-out set, the same on every rank because the weights are
 * replicated.
 *
 *   mlp_trainer [--rank R] [--steps N] [--batch B] [--seed S] [--csv FILE] [--socket PATH]
 *
 * R defaults to the rank srun or mpiexec gave this process (muond_env_rank), so that a trainer
 * step launched with the daemon's task layout pairs each trainer with the muond rank beside it.
 *
 * The layout's digest comes from MUOND_LAYOUT_DIGEST (`muond check --layout F` prints it).
 *
 * With host shared memory (the default) the network computes in place in the region. When the
 * daemon shares GPU memory (muond run --trainer-memory device) the arithmetic stays on the
 * CPU, on host copies: gradients go up with muond_copy before each step and the weights come
 * back after it.
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muond_client.h"

enum { IN = 64, HIDDEN = 256, OUT = 10, EVAL_SAMPLES = 1024 };
static const uint64_t TEACHER_SEED = 1234, STUDENT_SEED = 42, EVAL_SEED = 777;

typedef struct layer {
    int in, out;
    float *w, *b;   /* out x in, out */
    float *gw, *gb; /* gradients (NULL for the teacher) */
} layer_t;

typedef struct net {
    layer_t l[3];
} net_t;

/* ---- deterministic random numbers (splitmix64: the example stays libc only) ----------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Uniform in (-1, 1) from (seed, a, b). */
static double uniform(uint64_t seed, uint64_t a, uint64_t b)
{
    const uint64_t bits = mix(mix(mix(seed) ^ a) ^ b) >> 11;
    return 2.0 * (((double)bits + 0.5) * 0x1.0p-53) - 1.0;
}

/* A standard-normal-ish input: sum of 4 uniforms, scaled to unit variance. */
static float input_value(uint64_t seed, uint64_t sample, int k)
{
    double s = 0.0;
    for (int i = 0; i < 4; i++)
        s += uniform(seed, sample, (uint64_t)(4 * k + i));
    return (float)(s * sqrt(3.0) / 2.0);
}

/* ---- the network ------------------------------------------------------------------------ */

static void init_layer(layer_t *l, uint64_t seed, int index, double gain)
{
    const double bound = gain / sqrt((double)l->in);
    for (int i = 0; i < l->out * l->in; i++)
        l->w[i] = (float)(bound * uniform(seed, (uint64_t)index, (uint64_t)i));
    for (int i = 0; i < l->out; i++)
        l->b[i] = 0.0f;
}

static void forward_layer(const layer_t *l, const float *x, float *y, int activate)
{
    for (int o = 0; o < l->out; o++) {
        float s = l->b[o];
        const float *w = l->w + o * l->in;
        for (int i = 0; i < l->in; i++)
            s += w[i] * x[i];
        y[o] = activate ? tanhf(s) : s;
    }
}

typedef struct activations {
    float x[IN], h1[HIDDEN], h2[HIDDEN], y[OUT];
} activations_t;

static void forward(const net_t *n, activations_t *a)
{
    forward_layer(&n->l[0], a->x, a->h1, 1);
    forward_layer(&n->l[1], a->h1, a->h2, 1);
    forward_layer(&n->l[2], a->h2, a->y, 0);
}

/* Accumulates dL/dparams for one sample; dy = dL/dy. */
static void backward(net_t *n, const activations_t *a, const float *dy)
{
    float d2[HIDDEN], d1[HIDDEN];
    const float *inputs[3] = {a->x, a->h1, a->h2};
    const float *douts[3] = {d1, d2, dy};
    for (int i = 0; i < HIDDEN; i++) { /* through layer 3 into h2, then tanh' */
        float s = 0.0f;
        for (int o = 0; o < OUT; o++)
            s += n->l[2].w[o * HIDDEN + i] * dy[o];
        d2[i] = s * (1.0f - a->h2[i] * a->h2[i]);
    }
    for (int i = 0; i < HIDDEN; i++) {
        float s = 0.0f;
        for (int o = 0; o < HIDDEN; o++)
            s += n->l[1].w[o * HIDDEN + i] * d2[o];
        d1[i] = s * (1.0f - a->h1[i] * a->h1[i]);
    }
    for (int k = 0; k < 3; k++) {
        layer_t *l = &n->l[k];
        for (int o = 0; o < l->out; o++) {
            l->gb[o] += douts[k][o];
            for (int i = 0; i < l->in; i++)
                l->gw[o * l->in + i] += douts[k][o] * inputs[k][i];
        }
    }
}

/* Mean squared error over a batch slice; gradients of that mean are left in the student. */
static double train_slice(net_t *student, const net_t *teacher, long step, long first, long count,
                          uint64_t seed)
{
    for (int k = 0; k < 3; k++) {
        memset(student->l[k].gw, 0, sizeof(float) * (size_t)(student->l[k].out * student->l[k].in));
        memset(student->l[k].gb, 0, sizeof(float) * (size_t)student->l[k].out);
    }
    double loss = 0.0;
    const float scale = 2.0f / (float)(count * OUT);
    for (long s = first; s < first + count; s++) {
        activations_t a, t;
        for (int k = 0; k < IN; k++)
            a.x[k] = t.x[k] = input_value(seed, (uint64_t)(step * 1000003 + s), k);
        forward(teacher, &t);
        forward(student, &a);
        float dy[OUT];
        for (int o = 0; o < OUT; o++) {
            const float e = a.y[o] - t.y[o];
            loss += (double)e * e;
            dy[o] = scale * e;
        }
        backward(student, &a, dy);
    }
    return loss / (double)(count * OUT);
}

static double eval_loss(const net_t *student, const net_t *teacher)
{
    double loss = 0.0;
    for (long s = 0; s < EVAL_SAMPLES; s++) {
        activations_t a, t;
        for (int k = 0; k < IN; k++)
            a.x[k] = t.x[k] = input_value(EVAL_SEED, (uint64_t)s, k);
        forward(teacher, &t);
        forward(student, &a);
        for (int o = 0; o < OUT; o++)
            loss += (double)(a.y[o] - t.y[o]) * (a.y[o] - t.y[o]);
    }
    return loss / (double)(EVAL_SAMPLES * OUT);
}

/* ---- wiring the student to muond's shared memory ---------------------------------------- */

static const char *const weight_names[3] = {"l1.weight", "l2.weight", "l3.weight"};
static const char *const bias_names[3] = {"l1.bias", "l2.bias", "l3.bias"};
static const int dims[4] = {IN, HIDDEN, HIDDEN, OUT};

/* The student's 12 arrays as the daemon shares them; with device memory the net points at
 * host copies instead. */
typedef struct shared_arrays {
    float *region[3][4]; /* per layer: w, b, gw, gb in the shared region */
    size_t bytes[3][4];
    bool copies; /* the net holds host copies (device memory) */
} shared_arrays_t;

static float **array_of(layer_t *l, int which)
{
    float **fields[4] = {&l->w, &l->b, &l->gw, &l->gb};
    return fields[which];
}

/* Device memory: host copies for the net, the region's pointers kept for the transfers. */
static int make_copies(net_t *n, shared_arrays_t *sh)
{
    sh->copies = true;
    for (int k = 0; k < 3; k++)
        for (int a = 0; a < 4; a++) { /* every field leaves the region before any allocation */
            float **field = array_of(&n->l[k], a);
            sh->region[k][a] = *field;
            sh->bytes[k][a] = (size_t)(a % 2 == 0 ? dims[k] * dims[k + 1] : dims[k + 1]) * 4;
            *field = NULL;
        }
    for (int k = 0; k < 3; k++)
        for (int a = 0; a < 4; a++)
            if (!(*array_of(&n->l[k], a) = calloc(1, sh->bytes[k][a]))) {
                fprintf(stderr, "mlp_trainer: out of memory\n");
                return -1;
            }
    return 0;
}

/* Moves the weights (arrays 0, 1) or the gradients (2, 3) between the net and the region. */
static int transfer(muond_client_t *c, net_t *n, const shared_arrays_t *sh, bool gradients,
                    bool to_daemon)
{
    for (int k = 0; sh->copies && k < 3; k++)
        for (int a = gradients ? 2 : 0; a < (gradients ? 4 : 2); a++) {
            float *mine = *array_of(&n->l[k], a), *theirs = sh->region[k][a];
            if (muond_copy(c, to_daemon ? theirs : mine, to_daemon ? mine : theirs,
                           sh->bytes[k][a]) != MUOND_OK) {
                fprintf(stderr, "mlp_trainer: %s\n", muond_client_error(c));
                return -1;
            }
        }
    return 0;
}

static void free_copies(net_t *n, shared_arrays_t *sh)
{
    for (int k = 0; sh->copies && k < 3; k++)
        for (int a = 0; a < 4; a++)
            free(*array_of(&n->l[k], a));
}

static int bind_student(muond_client_t *c, net_t *n, shared_arrays_t *sh)
{
    *sh = (shared_arrays_t){.copies = false};
    for (int k = 0; k < 3; k++) {
        muond_param_t w, b;
        if (muond_param(c, weight_names[k], &w) != MUOND_OK ||
            muond_param(c, bias_names[k], &b) != MUOND_OK) {
            fprintf(stderr, "mlp_trainer: %s\n", muond_client_error(c));
            return -1;
        }
        if (w.rows != dims[k + 1] || w.cols != dims[k] || b.rows != dims[k + 1] ||
            w.row_begin != 0 || w.row_end != w.rows) {
            fprintf(stderr, "mlp_trainer: the layout's %s is not %dx%d in local mode\n",
                    weight_names[k], dims[k + 1], dims[k]);
            return -1;
        }
        n->l[k] = (layer_t){dims[k], dims[k + 1], w.weights, b.weights, w.grads, b.grads};
    }
    return muond_on_device(c) ? make_copies(n, sh) : 0;
}

static void make_teacher(net_t *t)
{
    for (int k = 0; k < 3; k++) {
        t->l[k] = (layer_t){dims[k], dims[k + 1], NULL, NULL, NULL, NULL};
        t->l[k].w = calloc((size_t)(dims[k] * dims[k + 1]), sizeof(float));
        t->l[k].b = calloc((size_t)dims[k + 1], sizeof(float));
        init_layer(&t->l[k], TEACHER_SEED, k, 2.0); /* a teacher with some curvature */
    }
}

typedef struct settings {
    int rank;
    long steps, batch;
    uint64_t seed;
    const char *csv, *socket;
} settings_t;

static int parse(int argc, char **argv, settings_t *s)
{
    static const struct option options[] = {
        {"rank", required_argument, NULL, 'r'},  {"steps", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'}, {"seed", required_argument, NULL, 's'},
        {"csv", required_argument, NULL, 'c'},   {"socket", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},        {0, 0, 0, 0}};
    *s = (settings_t){.rank = -1, .steps = 200, .batch = 512, .seed = 1};
    for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        switch (c) {
        case 'r':
            s->rank = atoi(optarg);
            break;
        case 'n':
            s->steps = atol(optarg);
            break;
        case 'b':
            s->batch = atol(optarg);
            break;
        case 's':
            s->seed = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            s->csv = optarg;
            break;
        case 'p':
            s->socket = optarg;
            break;
        default:
            fprintf(stderr, "usage: mlp_trainer [--rank R] [--steps N] [--batch B] [--seed S] "
                            "[--csv FILE] [--socket PATH]\n");
            return c == 'h' ? 1 : 2;
        }
    }
    if (s->rank < 0)
        s->rank = muond_env_rank();
    if (s->rank < 0 || s->steps < 1 || s->batch < 1) {
        fprintf(stderr, "mlp_trainer: --rank R >= 0 is required outside srun or mpiexec; steps "
                        "and batch must be >= 1\n");
        return 2;
    }
    return 0;
}

/* The run: initialize the student in shared memory, then step. */
static int train(muond_client_t *c, const settings_t *s, FILE *csv)
{
    net_t student, teacher;
    shared_arrays_t sh;
    if (bind_student(c, &student, &sh) != 0) {
        free_copies(&student, &sh);
        return 1;
    }
    make_teacher(&teacher);
    int code = 0;
    if (muond_steps_done(c) == 0) { /* a fresh run: every replica starts from the same weights */
        for (int k = 0; k < 3; k++)
            init_layer(&student.l[k], STUDENT_SEED, k, 1.0);
        code = transfer(c, &student, &sh, false, true) != 0;
    } else {
        code = transfer(c, &student, &sh, false, false) != 0;
    }
    const int ranks = muond_ranks(c);
    const long per_rank = s->batch / ranks, first = per_rank * s->rank;
    for (long step = muond_steps_done(c) + 1; code == 0 && step <= s->steps; step++) {
        const double loss = train_slice(&student, &teacher, step, first, per_rank, s->seed);
        muond_step_result_t r;
        if (transfer(c, &student, &sh, true, true) != 0) {
            code = 1;
            break;
        }
        if (muond_step(c, &r) != MUOND_OK) {
            fprintf(stderr, "mlp_trainer (rank %d): %s\n", s->rank, muond_client_error(c));
            code = 1;
            break;
        }
        if (transfer(c, &student, &sh, false, false) != 0) {
            code = 1;
            break;
        }
        if (s->rank == 0) {
            const double eval = eval_loss(&student, &teacher);
            printf("step %ld train %.6f eval %.6f%s\n", step, loss, eval,
                   r.status == 1 ? " (skipped: non-finite gradients)" : "");
            fflush(stdout);
            if (csv)
                fprintf(csv, "%ld,%.8f,%.8f\n", step, loss, eval);
        }
    }
    for (int k = 0; k < 3; k++) {
        free(teacher.l[k].w);
        free(teacher.l[k].b);
    }
    free_copies(&student, &sh);
    return code;
}

int main(int argc, char **argv)
{
    settings_t s;
    const int parsed = parse(argc, argv, &s);
    if (parsed != 0)
        return parsed == 1 ? 0 : 2;
    muond_client_options_t o = {.socket_path = s.socket, .rank = s.rank};
    muond_client_t *c = NULL;
    char err[512];
    if (muond_connect(&o, &c, err, sizeof err) != MUOND_OK) {
        fprintf(stderr, "mlp_trainer (rank %d): %s\n", s.rank, err);
        return 1;
    }
    FILE *csv = NULL;
    if (s.csv && s.rank == 0 && !(csv = fopen(s.csv, "w"))) {
        fprintf(stderr, "mlp_trainer: cannot write %s\n", s.csv);
        muond_close(&c);
        return 2;
    }
    if (csv)
        fprintf(csv, "step,train_loss,eval_loss\n");
    const int code = train(c, &s, csv);
    if (csv)
        fclose(csv);
    muond_close(&c);
    return code;
}
